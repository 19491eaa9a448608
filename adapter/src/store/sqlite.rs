//! SQLite through sqlx (the embedded default): WAL mode, migrations at start.

use std::collections::HashMap;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{AdminStats, RequestRecord, StoreError, operation_names};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const DAY_MS: i64 = 86_400_000;

/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn connect(url: &str, min: u32, max: u32) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .min_connections(min)
            .max_connections(max)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub async fn record(&self, record: &RequestRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, username, first_seen, last_seen, requests) VALUES (?1, ?2, ?3, ?3, 1)
             ON CONFLICT (id) DO UPDATE SET username = COALESCE(?2, username), last_seen = ?3,
             requests = requests + 1",
        )
        .bind(record.user_id as i64)
        .bind(&record.username)
        .bind(record.at)
        .execute(&mut *tx)
        .await?;
        let input = record.input.unwrap_or_default();
        let output = record.output.unwrap_or_default();
        sqlx::query(
            "INSERT INTO requests (at, user_id, chat_id, pipeline, input_bytes, input_width,
             input_height, output_bytes, output_width, output_height, queue_ms, download_ms,
             engine_ms, upload_ms, total_ms, backend, cache_hit, delivery, outcome, error_kind)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(record.at)
        .bind(record.user_id as i64)
        .bind(record.chat_id)
        .bind(&record.pipeline)
        .bind(record.input.map(|_| input.bytes as i64))
        .bind(record.input.map(|_| input.width))
        .bind(record.input.map(|_| input.height))
        .bind(record.output.map(|_| output.bytes as i64))
        .bind(record.output.map(|_| output.width))
        .bind(record.output.map(|_| output.height))
        .bind(record.queue_ms)
        .bind(record.download_ms)
        .bind(record.engine_ms)
        .bind(record.upload_ms)
        .bind(record.total_ms)
        .bind(record.backend)
        .bind(record.cache_hit)
        .bind(record.delivery)
        .bind(if record.error_kind.is_some() {
            "error"
        } else {
            "ok"
        })
        .bind(&record.error_kind)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Users, requests today (since `now_ms` minus 24 h) and in total, top operations,
    /// errors by kind.
    pub async fn admin_stats(&self, now_ms: i64) -> Result<AdminStats, StoreError> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        let requests_total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
            .fetch_one(&self.pool)
            .await?;
        let requests_today: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE at >= ?")
            .bind(now_ms - DAY_MS)
            .fetch_one(&self.pool)
            .await?;
        let mut operations: HashMap<String, u64> = HashMap::new();
        let rows = sqlx::query(
            "SELECT pipeline, COUNT(*) AS n FROM requests WHERE outcome = 'ok' GROUP BY pipeline",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let pipeline: String = row.try_get("pipeline")?;
            let count: i64 = row.try_get("n")?;
            for name in operation_names(&pipeline) {
                *operations.entry(name.to_string()).or_default() += count as u64;
            }
        }
        let errors = sqlx::query(
            "SELECT error_kind, COUNT(*) AS n FROM requests WHERE error_kind IS NOT NULL
             GROUP BY error_kind ORDER BY n DESC, error_kind",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok((
                row.try_get("error_kind")?,
                row.try_get::<i64, _>("n")? as u64,
            ))
        })
        .collect::<Result<Vec<(String, u64)>, sqlx::Error>>()?;
        let mut top_operations: Vec<(String, u64)> = operations.into_iter().collect();
        top_operations.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top_operations.truncate(10);
        Ok(AdminStats {
            users: users as u64,
            requests_today: requests_today as u64,
            requests_total: requests_total as u64,
            top_operations,
            errors_by_kind: errors,
        })
    }

    /// A round trip for /health.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits for writes in progress and closes the connections (WAL is checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Dimensions;

    #[tokio::test]
    async fn records_survive_reopening_and_feed_admin_stats() {
        let dir = std::env::temp_dir().join(format!("prism-bot-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("store.sqlite").display());
        let now = 1_800_000_000_000;
        {
            let store = SqliteStore::connect(&url, 1, 2).await.expect("open");
            let ok = RequestRecord {
                at: now,
                user_id: 7,
                username: Some("ann".into()),
                chat_id: 7,
                pipeline: "fit:800x800|gray|jpeg:85".into(),
                input: Some(Dimensions {
                    bytes: 1000,
                    width: 1280,
                    height: 960,
                }),
                total_ms: 12.5,
                backend: "cpu",
                ..RequestRecord::default()
            };
            store.record(&ok).await.expect("insert");
            store
                .record(&RequestRecord {
                    at: now - 2 * DAY_MS,
                    ..ok.clone()
                })
                .await
                .expect("insert");
            let failed = RequestRecord {
                user_id: 8,
                error_kind: Some("malformed".into()),
                ..ok.clone()
            };
            store.record(&failed).await.expect("insert");
            store.close().await;
        }
        let store = SqliteStore::connect(&url, 1, 2).await.expect("reopen");
        let stats = store.admin_stats(now).await.expect("stats");
        assert_eq!(
            (stats.users, stats.requests_total, stats.requests_today),
            (2, 3, 2)
        );
        assert_eq!(stats.errors_by_kind, vec![("malformed".to_string(), 1)]);
        assert_eq!(stats.top_operations[0].1, 2);
        assert!(stats.top_operations.iter().any(|(name, _)| name == "gray"));
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }
}
