//! The queries both backends run, written once: the SQL uses `$N` placeholders and
//! `ON CONFLICT`, which SQLite and PostgreSQL both accept, and is generic over the driver.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::{AdminStats, RequestRecord, StoreError, operation_names};

const DAY_MS: i64 = 86_400_000;
/// Retention deletes in slices, so no statement holds the write lock for long.
const DELETE_SLICE: u64 = 5_000;

/// Request first: `users.requests` is bumped only when the request row was new.
const INSERT_REQUEST: &str = "INSERT INTO requests (record_id, at, user_id, chat_id, pipeline,
    input_bytes, input_width, input_height, output_bytes, output_width, output_height,
    queue_ms, download_ms, engine_ms, upload_ms, total_ms, backend, cache_hit, delivery,
    outcome, error_kind)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
    $19, $20, $21)
    ON CONFLICT (record_id) DO NOTHING";

/// Batches and replays may arrive out of order: first/last seen only ever widen.
const UPSERT_USER: &str = "INSERT INTO users (id, username, first_seen, last_seen, requests)
    VALUES ($1, $2, $3, $3, 1)
    ON CONFLICT (id) DO UPDATE SET
    username = COALESCE(excluded.username, users.username),
    first_seen = CASE WHEN excluded.first_seen < users.first_seen
        THEN excluded.first_seen ELSE users.first_seen END,
    last_seen = CASE WHEN excluded.last_seen > users.last_seen
        THEN excluded.last_seen ELSE users.last_seen END,
    requests = users.requests + 1";

const DELETE_OLDER: &str = "DELETE FROM requests WHERE id IN
    (SELECT id FROM requests WHERE at < $1 LIMIT $2)";

/// Rows changed by a statement (the driver's result types share no trait for it).
pub(super) trait RowsAffected {
    fn rows(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// One pool and the queries on it. Cheap to clone.
pub(super) struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
    #[cfg(test)]
    pub(super) faults: std::sync::Arc<Faults>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            #[cfg(test)]
            faults: self.faults.clone(),
        }
    }
}

impl<DB: Database> SqlStore<DB> {
    pub(super) fn new(pool: Pool<DB>) -> Self {
        SqlStore {
            pool,
            #[cfg(test)]
            faults: Default::default(),
        }
    }
}

impl<DB> SqlStore<DB>
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    pub(super) async fn record_batch(&self, records: &[RequestRecord]) -> Result<(), StoreError> {
        #[cfg(test)]
        self.faults.before_write()?;
        let mut tx = self.pool.begin().await?;
        for record in records {
            let input = record.input.unwrap_or_default();
            let output = record.output.unwrap_or_default();
            let inserted = sqlx::query(INSERT_REQUEST)
                .bind(record.id.clone())
                .bind(record.at)
                .bind(record.user_id as i64)
                .bind(record.chat_id)
                .bind(record.pipeline.clone())
                .bind(record.input.map(|_| input.bytes as i64))
                .bind(record.input.map(|_| i64::from(input.width)))
                .bind(record.input.map(|_| i64::from(input.height)))
                .bind(record.output.map(|_| output.bytes as i64))
                .bind(record.output.map(|_| i64::from(output.width)))
                .bind(record.output.map(|_| i64::from(output.height)))
                .bind(record.queue_ms)
                .bind(record.download_ms)
                .bind(record.engine_ms)
                .bind(record.upload_ms)
                .bind(record.total_ms)
                .bind(record.backend.clone())
                .bind(record.cache_hit)
                .bind(record.delivery.clone())
                .bind(
                    if record.error_kind.is_some() {
                        "error"
                    } else {
                        "ok"
                    }
                    .to_string(),
                )
                .bind(record.error_kind.clone())
                .execute(&mut *tx)
                .await?
                .rows();
            if inserted == 0 {
                continue; // written by an earlier try of this record
            }
            sqlx::query(UPSERT_USER)
                .bind(record.user_id as i64)
                .bind(record.username.clone())
                .bind(record.at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        #[cfg(test)]
        self.faults.after_commit()?;
        Ok(())
    }

    pub(super) async fn admin_stats(&self, now_ms: i64) -> Result<AdminStats, StoreError> {
        let users = self.count("SELECT COUNT(*) FROM users", None).await?;
        let requests_total = self.count("SELECT COUNT(*) FROM requests", None).await?;
        let requests_today = self
            .count(
                "SELECT COUNT(*) FROM requests WHERE at >= $1",
                Some(now_ms - DAY_MS),
            )
            .await?;
        let pipelines = self
            .counts_by(
                "SELECT pipeline, COUNT(*) FROM requests WHERE outcome = 'ok' GROUP BY pipeline",
            )
            .await?;
        let errors = self
            .counts_by(
                "SELECT error_kind, COUNT(*) FROM requests WHERE error_kind IS NOT NULL
                 GROUP BY error_kind",
            )
            .await?;
        Ok(AdminStats {
            users,
            requests_today,
            requests_total,
            top_operations: top_operations(pipelines),
            errors_by_kind: most_first(errors),
        })
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let rows = sqlx::query(DELETE_OLDER)
                .bind(cutoff_ms)
                .bind(DELETE_SLICE as i64)
                .execute(&self.pool)
                .await?
                .rows();
            deleted += rows;
            if rows < DELETE_SLICE {
                return Ok(deleted);
            }
        }
    }

    async fn count(&self, sql: &'static str, arg: Option<i64>) -> Result<u64, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        let row = query.fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0usize)?.max(0) as u64)
    }

    /// `SELECT key, COUNT(*) ... GROUP BY key` as pairs.
    async fn counts_by(&self, sql: &'static str) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let key: String = row.try_get(0usize)?;
                let count: i64 = row.try_get(1usize)?;
                Ok((key, count.max(0) as u64))
            })
            .collect()
    }
}

/// The ten most used operations from request counts per pipeline.
fn top_operations(pipelines: Vec<(String, u64)>) -> Vec<(String, u64)> {
    let mut operations: HashMap<String, u64> = HashMap::new();
    for (pipeline, count) in &pipelines {
        for name in operation_names(pipeline) {
            *operations.entry(name.to_string()).or_default() += count;
        }
    }
    let mut top = most_first(operations.into_iter().collect());
    top.truncate(10);
    top
}

/// Highest count first, then by name (sorted here, not in SQL: collations differ).
fn most_first(mut counts: Vec<(String, u64)>) -> Vec<(String, u64)> {
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// Test hooks: make writes fail before touching the database, or after their commit (an
/// acknowledgement lost on the way back).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) fail_writes: std::sync::atomic::AtomicBool,
    pub(crate) fail_after_commit: std::sync::atomic::AtomicUsize,
    pub(crate) commits: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl Faults {
    fn before_write(&self) -> Result<(), StoreError> {
        if self.fail_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        Ok(())
    }

    fn after_commit(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.commits.fetch_add(1, SeqCst);
        let armed = self
            .fail_after_commit
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if armed {
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        Ok(())
    }
}
