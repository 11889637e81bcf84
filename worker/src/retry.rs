//! Calling a coordinator that may be away: which errors are fatal and which transient, backoff
//! between tries, and which retries are logged aloud.

use std::future::Future;
use std::time::Duration;
use tonic::Code;

/// Errors after which retrying cannot help.
pub fn is_fatal(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unauthenticated | Code::PermissionDenied | Code::FailedPrecondition
    )
}

/// Errors that mean the coordinator is away (restarting, network): retry with backoff.
pub fn is_transient(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
    )
}

/// Whether the `tries`-th retry of something is logged at warn: the first and every tenth (a
/// coordinator that stays away is news; every retry would drown the log).
pub fn said_aloud(tries: u32) -> bool {
    tries == 1 || tries.is_multiple_of(10)
}

/// Exponential backoff from 100 ms to 5 s.
pub struct Backoff(pub Duration);

impl Backoff {
    pub fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// Calls `call` until it answers or fails for good: transient errors (the coordinator restarting)
/// are retried with backoff, `tries` calls in all.
pub async fn with_retries<T, F, Fut>(tries: usize, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut backoff = Backoff::new();
    let mut tried = 1;
    loop {
        match call().await {
            Err(s) if is_transient(&s) && tried < tries => backoff.wait().await,
            out => return out,
        }
        tried += 1;
    }
}
