//! SQLite through sqlx (the embedded default): WAL mode, migrations at start.

use std::str::FromStr;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::sql::SqlStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    pub(super) sql: SqlStore<Sqlite>,
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
        Ok(SqliteStore {
            sql: SqlStore::new(pool),
        })
    }

    /// Waits for writes in progress and closes the connections (WAL is checkpointed).
    pub async fn close(&self) {
        self.sql.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Dimensions, RequestRecord, Store};

    const DAY_MS: i64 = 86_400_000;

    #[tokio::test]
    async fn records_survive_reopening_and_feed_admin_stats() {
        let dir = std::env::temp_dir().join(format!("prism-bot-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("store.sqlite").display());
        let now = 1_800_000_000_000;
        {
            let store = Store::Sqlite(SqliteStore::connect(&url, 1, 2).await.expect("open"));
            let ok = RequestRecord {
                id: "a".into(),
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
                backend: "cpu".into(),
                ..RequestRecord::default()
            };
            let old = RequestRecord {
                id: "b".into(),
                at: now - 2 * DAY_MS,
                ..ok.clone()
            };
            let failed = RequestRecord {
                id: "c".into(),
                user_id: 8,
                error_kind: Some("malformed".into()),
                ..ok.clone()
            };
            store.record_batch(&[ok]).await.expect("insert");
            store.record_batch(&[old, failed]).await.expect("insert");
            store.close().await;
        }
        let store = SqliteStore::connect(&url, 1, 2).await.expect("reopen");
        let stats = store.sql.admin_stats(now).await.expect("stats");
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

    /// A file created before record ids existed (only migration 0001) opens, keeps its rows
    /// and takes new records.
    #[tokio::test]
    async fn a_database_from_before_record_ids_migrates() {
        let dir = std::env::temp_dir().join(format!("prism-bot-store-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("old.sqlite").display());
        {
            let options = SqliteConnectOptions::from_str(&url).expect("url");
            let pool = SqlitePoolOptions::new()
                .connect_with(options)
                .await
                .expect("open");
            let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite"
            )))
            .await
            .expect("migrations");
            migrator.migrations = std::borrow::Cow::Owned(
                migrator
                    .migrations
                    .iter()
                    .filter(|m| m.version == 1)
                    .cloned()
                    .collect(),
            );
            migrator.run(&pool).await.expect("0001");
            sqlx::query(
                "INSERT INTO requests (at, user_id, chat_id, pipeline, total_ms, backend,
                 cache_hit, outcome) VALUES (1, 1, 1, 'gray', 1.0, 'cpu', 0, 'ok')",
            )
            .execute(&pool)
            .await
            .expect("old row");
            pool.close().await;
        }
        let store = Store::Sqlite(SqliteStore::connect(&url, 1, 2).await.expect("migrate"));
        let record = RequestRecord {
            id: "new".into(),
            at: 2,
            pipeline: "gray".into(),
            backend: "cpu".into(),
            ..RequestRecord::default()
        };
        store.record_batch(&[record]).await.expect("insert");
        assert_eq!(store.admin_stats(2).await.expect("stats").requests_total, 2);
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }
}
