//! The local durable queue of accepted updates: one SQLite file (INTAKE_QUEUE_PATH) that an
//! update is written to before Telegram is told it arrived (webhook 200, or the polling offset
//! moving past it), and deleted from once it is answered and its record is safe. It holds every
//! update of an instance without Redis, and those accepted while Redis fails; at start an
//! instance takes up what its previous run left.
//!
//! Each row keeps the update's JSON and, once Telegram accepted the reply, the request's record:
//! a run that stops between the reply and the acknowledgement then records the request again
//! (the record's id makes that idempotent) instead of replying twice.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreError;

/// One queued update.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedUpdate {
    /// The row's id (its place in the queue).
    pub id: i64,
    pub update_id: u32,
    /// The update as Telegram sent it (JSON).
    pub update: String,
    /// Unix milliseconds when it was accepted.
    pub accepted_at: i64,
    /// The request's record (JSON) once Telegram accepted the reply.
    pub replied: Option<String>,
}

/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct IntakeQueue {
    pool: SqlitePool,
}

impl IntakeQueue {
    /// Opens (creating if needed) the queue file. `synchronous=FULL`: an accepted update must
    /// survive the machine losing power, not only the process being killed.
    pub async fn open(path: &Path) -> Result<IntakeQueue, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS intake (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                update_id INTEGER NOT NULL UNIQUE,
                body TEXT NOT NULL,
                accepted_at INTEGER NOT NULL,
                replied TEXT
            )",
        )
        .execute(&pool)
        .await?;
        Ok(IntakeQueue { pool })
    }

    /// Adds an update; false when it is queued already (Telegram delivered it again).
    pub async fn push(
        &self,
        update_id: u32,
        update: &str,
        accepted_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO intake (update_id, body, accepted_at) VALUES (?, ?, ?)
             ON CONFLICT (update_id) DO NOTHING",
        )
        .bind(i64::from(update_id))
        .bind(update)
        .bind(accepted_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Up to `limit` updates in queue order, after the row `after` (0: from the start).
    pub async fn after(&self, after: i64, limit: usize) -> Result<Vec<QueuedUpdate>, StoreError> {
        let rows: Vec<(i64, i64, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, update_id, body, accepted_at, replied FROM intake
             WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, update_id, update, accepted_at, replied)| QueuedUpdate {
                    id,
                    update_id: u32::try_from(update_id).unwrap_or_default(),
                    update,
                    accepted_at,
                    replied,
                },
            )
            .collect())
    }

    /// Keeps the record of a request whose reply Telegram accepted.
    pub async fn mark_replied(&self, id: i64, record: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE intake SET replied = ? WHERE id = ?")
            .bind(record)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes an answered update.
    pub async fn remove(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM intake WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Updates queued, and the id of the last (0 when empty): what an earlier run left.
    pub async fn last(&self) -> Result<(u64, i64), StoreError> {
        let (count, last): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MAX(id) FROM intake")
                .fetch_one(&self.pool)
                .await?;
        Ok((u64::try_from(count).unwrap_or(0), last.unwrap_or(0)))
    }

    /// Updates queued, and when the oldest was accepted (Unix milliseconds).
    pub async fn backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let (count, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(accepted_at) FROM intake")
                .fetch_one(&self.pool)
                .await?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn updates_survive_reopening_until_removed_and_keep_their_reply_record() {
        let dir = std::env::temp_dir().join(format!("prism-intake-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("intake.sqlite");
        let _ = std::fs::remove_file(&path);
        {
            let queue = IntakeQueue::open(&path).await.expect("open");
            assert!(
                queue
                    .push(7, "{\"update_id\":7}", 1_000)
                    .await
                    .expect("push")
            );
            assert!(
                queue
                    .push(9, "{\"update_id\":9}", 2_000)
                    .await
                    .expect("push")
            );
            // Delivered again: queued once.
            assert!(
                !queue
                    .push(7, "{\"update_id\":7}", 3_000)
                    .await
                    .expect("push")
            );
            queue.close().await;
        }
        let queue = IntakeQueue::open(&path).await.expect("reopen");
        let queued = queue.after(0, 10).await.expect("read");
        assert_eq!(
            queued.iter().map(|q| q.update_id).collect::<Vec<_>>(),
            [7, 9]
        );
        assert_eq!(queue.backlog().await.expect("backlog"), (2, Some(1_000)));
        assert_eq!(queue.last().await.expect("last"), (2, queued[1].id));
        queue
            .mark_replied(queued[0].id, "{\"id\":\"update-7\"}")
            .await
            .expect("mark");
        let later = queue.after(queued[0].id, 10).await.expect("read");
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].update_id, 9);
        let first = queue.after(0, 1).await.expect("read");
        assert_eq!(first[0].replied.as_deref(), Some("{\"id\":\"update-7\"}"));
        queue.remove(queued[0].id).await.expect("remove");
        queue.remove(queued[1].id).await.expect("remove");
        assert_eq!(queue.backlog().await.expect("backlog"), (0, None));
        queue.close().await;
        std::fs::remove_dir_all(dir).ok();
    }
}
