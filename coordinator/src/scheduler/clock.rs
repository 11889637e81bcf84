//! The scheduler's notion of time: every call whose outcome depends on it is given the moment it
//! happens, so that the scheduler never reads a clock and its tests move time by hand.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The moment of a scheduler call: a monotonic instant (lease expiries, backoff, workers last
/// seen) and the wall clock in milliseconds since the Unix epoch (what records people read say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    pub unix_ms: i64,
}

impl Now {
    /// This moment, from the system's clocks.
    pub fn system() -> Now {
        Now {
            at: Instant::now(),
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }

    /// The moment `d` after this one (a test clock moving on).
    pub fn after(self, d: Duration) -> Now {
        Now {
            at: self.at + d,
            unix_ms: self.unix_ms.saturating_add(d.as_millis() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_moves_both_clocks_by_the_same_amount() {
        let t = Now::system();
        let later = t.after(Duration::from_millis(1500));
        assert_eq!(later.at - t.at, Duration::from_millis(1500));
        assert_eq!(later.unix_ms - t.unix_ms, 1500);
    }
}
