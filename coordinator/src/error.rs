//! Typed errors of the coordinator library: spec problems (with the key and its line), I/O, tables.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
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
}

impl CoordError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoordError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn table(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        CoordError::Table {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, CoordError>;
