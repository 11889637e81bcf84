//! The engine's typed error: every failure a caller can act on, never a panic on bad input.

use std::path::PathBuf;

/// Errors raised by the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{0}")]
    Invalid(String),
    /// A model's outputs (or a search's mask) hold NaN or Inf: the input cannot be measured.
    #[error("not finite: {0}")]
    NonFinite(String),
}

impl EngineError {
    /// Whether the device ran out of memory (CUDA's caching allocator, or the CPU's): a batch that
    /// fails so is retried in halves.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            EngineError::Torch(t) => {
                let m = t.to_string();
                m.contains("out of memory") || m.contains("can't allocate memory")
            }
            _ => false,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }
    /// A copy for each of the jobs this one error failed together (a batch of searches): the same
    /// variant where the kind decides retrying (out of memory, non-finite), `context` in front.
    pub fn for_each_job(&self, context: &str) -> Self {
        match self {
            EngineError::Torch(t) => {
                EngineError::Torch(tch::TchError::Torch(format!("{context}{t}")))
            }
            EngineError::NonFinite(m) => EngineError::NonFinite(format!("{context}{m}")),
            other => EngineError::Invalid(format!("{context}{other}")),
        }
    }
    pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        EngineError::BadFile {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_memory_errors_are_retried() {
        let torch = |m: &str| EngineError::Torch(tch::TchError::Torch(m.into()));
        assert!(torch("CUDA out of memory.").is_out_of_memory());
        let cpu = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes";
        assert!(torch(cpu).is_out_of_memory());
        assert!(!EngineError::Invalid("out of range".into()).is_out_of_memory());
        assert!(!EngineError::NonFinite("NaN".into()).is_out_of_memory());
    }
}
