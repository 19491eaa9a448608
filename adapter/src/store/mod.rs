//! The bot's records: users and every request, from which /admin_stats is computed.

mod sqlite;

pub use sqlite::SqliteStore as Store;

/// One answered (or refused) request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
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
    pub backend: &'static str,
    pub cache_hit: bool,
    pub delivery: Option<&'static str>,
    /// `None` when the request succeeded.
    pub error_kind: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
}

/// Operation names of a canonical pipeline, without the output settings:
/// `fit:800x800|gray|jpeg:85` → fit, gray.
pub(crate) fn operation_names(pipeline: &str) -> impl Iterator<Item = &str> {
    const OUTPUT_STEPS: &[&str] = &["jpeg", "png", "webp", "auto", "maxkb", "noorient"];
    pipeline
        .split('|')
        .map(|step| step.split(':').next().unwrap_or_default().trim())
        .filter(|name| !name.is_empty() && !OUTPUT_STEPS.contains(name))
}
