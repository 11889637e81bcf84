//! Panics inside libtorch turned into unit errors, so one bad unit cannot stop a worker.

use crate::Result;

/// Turns a panic inside libtorch code into an error, so one bad unit cannot stop the sweep.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(crate::SweepError::Panic(msg.unwrap_or_default()))
        }
    }
}
