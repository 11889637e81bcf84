//! Typed errors of the sweep library (shared by the coordinator and the workers): spec problems
//! (with the key and its line), I/O, tables, models; a failure's kind decides whether it is retried.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A spec refused before any work starts.
    #[error("{file}:{line}: `{key}`: {message}")]
    Spec {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("table {path}: {message}")]
    Table { path: PathBuf, message: String },
    #[error(transparent)]
    Engine(#[from] iscp_engine::EngineError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Something a unit needs is not here (yet): a model, shard or checkpoint artifact.
    #[error("{0}")]
    Missing(String),
    /// A panic inside libtorch or the unit's code, caught so one unit cannot stop a worker.
    #[error("panicked: {0}")]
    Panic(String),
    /// Drawing a picture or rendering the report failed (not the input's fault).
    #[error(transparent)]
    Figure(#[from] iscp_figures::Error),
}

/// Whether a libtorch error is the device running out of memory (CUDA's or the allocator's).
fn is_oom(e: &tch::TchError) -> bool {
    let m = e.to_string();
    m.contains("out of memory") || m.contains("OutOfMemoryError")
}

impl SweepError {
    /// Why a unit that hit this error failed: decides whether another attempt may succeed.
    pub fn reason(&self) -> iscp_proto::v1::FailureReason {
        use iscp_engine::EngineError as E;
        use iscp_proto::v1::FailureReason as R;
        if self.is_out_of_space() {
            // The disk may be freed, or another worker's has room: retried up to the limit.
            return R::Internal;
        }
        match self {
            SweepError::Spec { .. } => R::InvalidInput,
            SweepError::Io { .. } | SweepError::Missing(_) => R::MissingArtifact,
            SweepError::Table { .. } | SweepError::Panic(_) | SweepError::Figure(_) => R::Internal,
            SweepError::Torch(t) | SweepError::Engine(E::Torch(t)) if is_oom(t) => R::OutOfMemory,
            SweepError::Torch(_) | SweepError::Engine(E::Torch(_)) => R::Internal,
            SweepError::Engine(E::Io { .. }) => R::MissingArtifact,
            SweepError::Engine(E::BadFile { .. } | E::Invalid(_) | E::NonFinite(_)) => {
                R::InvalidInput
            }
        }
    }
}

/// Whether an I/O error is a full disk or an exhausted quota.
pub fn io_out_of_space(e: &std::io::Error) -> bool {
    // ENOSPC (28) and EDQUOT (122) on Linux.
    matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// Whether a message (libtorch's, a Parquet writer's, SQLite's) says the disk is full.
pub fn says_out_of_space(message: &str) -> bool {
    message.contains("No space left on device")
        || message.contains("Disk quota exceeded")
        || message.contains("database or disk is full")
}

impl SweepError {
    /// Whether this error is a full disk (or quota) anywhere in its chain: retried as transient a
    /// bounded number of times, never taken for bad input.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            SweepError::Io { source, .. } => io_out_of_space(source),
            SweepError::Engine(iscp_engine::EngineError::Io { source, .. }) => {
                io_out_of_space(source)
            }
            other => says_out_of_space(&other.to_string()),
        }
    }

    /// Names the model a non-finite output came from (other errors pass unchanged).
    pub fn about_model(self, model: &str) -> Self {
        match self {
            SweepError::Engine(iscp_engine::EngineError::NonFinite(m)) => {
                SweepError::Engine(iscp_engine::EngineError::NonFinite(format!("{model}: {m}")))
            }
            other => other,
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SweepError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn table(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        SweepError::Table {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, SweepError>;
