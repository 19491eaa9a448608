//! The bot's records: users and every request, from which /admin_stats is computed.
//! SQLite (embedded default) or PostgreSQL, chosen by the URL; [`Recorder`] writes them off
//! the reply path.

mod dead_letter;
mod intake_queue;
mod postgres;
mod recorder;
mod spill;
mod sql;
mod sqlite;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use intake_queue::{IntakeQueue, QueuedUpdate};
pub use postgres::PostgresStore;
pub use recorder::{OnSafe, Recorder, RecorderSettings, RecorderStats};
pub use sqlite::SqliteStore;

/// One answered (or refused) request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Unique per record (see [`new_record_id`]); writes are idempotent on it.
    /// [`Recorder::record`] fills it in when empty.
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub user_id: u64,
    pub username: Option<String>,
    pub chat_id: i64,
    pub pipeline: String,
    pub input: Option<Dimensions>,
    pub output: Option<Dimensions>,
    pub queue_ms: Option<f64>,
    pub download_ms: Option<f64>,
    pub engine_ms: Option<f64>,
    pub upload_ms: Option<f64>,
    pub total_ms: f64,
    pub backend: String,
    pub cache_hit: bool,
    pub delivery: Option<String>,
    /// `None` when the request succeeded.
    pub error_kind: Option<String>,
}

impl RequestRecord {
    /// Turned away before any work (rate limit, full queue): the first records a full spill
    /// file keeps only as a count.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.error_kind.as_deref(),
            Some("rate_limited" | "queue_full")
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimensions {
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// What /admin_stats shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminStats {
    pub users: u64,
    pub requests_today: u64,
    pub requests_total: u64,
    /// Operation name → requests that used it, most used first.
    pub top_operations: Vec<(String, u64)>,
    /// Error kind → count, most frequent first.
    pub errors_by_kind: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    // The URL itself is not repeated: it may hold a password.
    #[error("unsupported database URL: expected sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl,
}

impl StoreError {
    /// The database answered and refused what was asked (a constraint, a bad value): the
    /// same records sent again would be refused again.
    pub fn is_refusal(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(_))) && !self.is_unreachable()
    }

    /// The server could not be reached (as opposed to refusing what was asked).
    pub fn is_unreachable(&self) -> bool {
        let error = match self {
            StoreError::Database(error)
            | StoreError::Migration(sqlx::migrate::MigrateError::Execute(error))
            | StoreError::Migration(sqlx::migrate::MigrateError::ExecuteMigration(error, _)) => {
                error
            }
            _ => return false,
        };
        match error {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
            // PostgreSQL's connection exceptions (08...), starting up or shutting down (57P0x),
            // too many connections (53300): the server is there but cannot serve yet.
            sqlx::Error::Database(error) => error.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P0") || code == "53300"
            }),
            _ => false,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `sqlite://PATH?mode=rwc` or `postgres://...`.
    pub url: String,
    /// PostgreSQL only: serves /admin_stats.
    pub replica_url: Option<String>,
    pub pool_min: u32,
    pub pool_max: u32,
}

/// Cheap to clone: clones share the connection pools.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens the primary (and replica, PostgreSQL only) and runs that backend's migrations.
    /// SQLite fails here when the file cannot be opened; PostgreSQL starts even when the
    /// server is down (see [`PostgresStore::connect`]).
    pub async fn connect(settings: &StoreSettings) -> Result<Store, StoreError> {
        let url = settings.url.as_str();
        if url.starts_with("sqlite:") {
            if settings.replica_url.is_some() {
                tracing::warn!("a database replica is only used with PostgreSQL; ignored");
            }
            let store = SqliteStore::connect(url, settings.pool_min, settings.pool_max).await?;
            Ok(Store::Sqlite(store))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PostgresStore::connect(settings).await?))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Writes `records` in one transaction, skipping those whose id is already stored: a
    /// batch retried after an unknown commit outcome never writes a record (or bumps
    /// `users.requests`) twice.
    pub async fn record_batch(&self, records: &[RequestRecord]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.sql.record_batch(records).await,
            Store::Postgres(store) => store.record_batch(records).await,
        }
    }

    /// Users, requests today (since `now_ms` minus 24 h) and in total, top operations,
    /// errors by kind; from the replica when one is configured.
    pub async fn admin_stats(&self, now_ms: i64) -> Result<AdminStats, StoreError> {
        match self {
            Store::Sqlite(store) => store.sql.admin_stats(now_ms).await,
            Store::Postgres(store) => store.admin_stats(now_ms).await,
        }
    }

    /// A round trip to the primary, for /health.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.sql.ping().await,
            Store::Postgres(store) => store.ping().await,
        }
    }

    /// Retention: deletes requests recorded before `cutoff_ms`; returns how many.
    /// Users are kept (their count is "users seen").
    pub async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(store) => store.sql.delete_older_than(cutoff_ms).await,
            Store::Postgres(store) => store.delete_older_than(cutoff_ms).await,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Waits for writes in progress and closes the connections.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(store) => store.close().await,
            Store::Postgres(store) => store.close().await,
        }
    }

    #[cfg(test)]
    pub(crate) fn faults(&self) -> &sql::Faults {
        match self {
            Store::Sqlite(store) => &store.sql.faults,
            Store::Postgres(store) => store.faults(),
        }
    }
}

/// A unique id for a new record: `INSTANCE-START-N`, where START is this process's start
/// time in nanoseconds (a restarted instance never reuses an id) and N counts up.
pub fn new_record_id(instance: &str) -> String {
    static START: OnceLock<u128> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{instance}-{start:x}-{n}")
}

/// Operation names of a canonical pipeline, without the output settings:
/// `fit:800x800|gray|jpeg:85` → fit, gray.
pub(crate) fn operation_names(pipeline: &str) -> impl Iterator<Item = &str> {
    pipeline
        .split('|')
        .map(|step| step.split(':').next().unwrap_or_default().trim())
        .filter(|name| !name.is_empty() && !prism_engine::pipeline::is_setting_step(name))
}
