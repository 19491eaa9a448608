//! The engine's typed errors. Every failure says which of eight kinds it is, so callers
//! (the CLI, the bot's metrics) can react without parsing messages.

use crate::format::ImageFormat;

/// Everything that can go wrong while probing, decoding, transforming or encoding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes claim to be a known format but are broken (truncated, corrupt, inconsistent).
    #[error("malformed {format} input: {reason}")]
    Malformed { format: ImageFormat, reason: String },
    /// The bytes are not a format the engine reads, or use a feature it does not support.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// The input or a result would exceed a configured limit; nothing was allocated for it.
    #[error("limits exceeded: {0}")]
    Limits(String),
    /// The pipeline text or its arguments are invalid, or do not fit this image.
    #[error("bad pipeline: {0}")]
    Pipeline(#[from] PipelineError),
    /// The queue and the running slots are full; retry later. Says how busy it was.
    #[error("overloaded: {queued} jobs queued, {running} running")]
    Overloaded { queued: usize, running: usize },
    /// The engine is shutting down and takes no more work (or dropped this queued job).
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// An engine setting is invalid.
    #[error("bad engine configuration: {0}")]
    Config(String),
    /// A bug or an unexpected failure inside the engine (including a caught panic).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The kind of an [`Error`], for counters and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Malformed,
    Unsupported,
    Limits,
    Pipeline,
    Overloaded,
    ShuttingDown,
    Config,
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Malformed { .. } => ErrorKind::Malformed,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Limits(_) => ErrorKind::Limits,
            Error::Pipeline(_) => ErrorKind::Pipeline,
            Error::Overloaded { .. } => ErrorKind::Overloaded,
            Error::ShuttingDown => ErrorKind::ShuttingDown,
            Error::Config(_) => ErrorKind::Config,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn malformed(format: ImageFormat, reason: impl std::fmt::Display) -> Self {
        Error::Malformed {
            format,
            reason: reason.to_string(),
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Limits => "limits",
            ErrorKind::Pipeline => "pipeline",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::Config => "config",
            ErrorKind::Internal => "internal",
        })
    }
}

/// A pipeline that cannot run: it points at the offending step (1-based) and its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} `{text}`: {reason}")]
pub struct PipelineError {
    /// 1-based position of the step in the pipeline text (0 when it is not about one step).
    pub step: usize,
    /// The step's text as written (or as serialised, for pipelines built in code).
    pub text: String,
    /// What is wrong and, where it helps, what would be right.
    pub reason: String,
}

impl PipelineError {
    pub(crate) fn new(step: usize, text: impl Into<String>, reason: impl Into<String>) -> Self {
        PipelineError {
            step,
            text: text.into(),
            reason: reason.into(),
        }
    }
}
