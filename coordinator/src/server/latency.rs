//! Latency of the scheduler's calls, as a histogram of fixed logarithmic buckets (5% wide, 1 µs
//! to ~17 min): recording is one atomic add, quantiles are read at any time (the benchmark's
//! p50/p99 lease latency).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// 1.05^420 ≈ 8e8 µs.
const BUCKETS: usize = 420;
const GROWTH: f64 = 1.05;

pub struct LatencyLog {
    counts: Vec<AtomicU64>,
}

impl Default for LatencyLog {
    fn default() -> Self {
        LatencyLog {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyLog {
    pub fn record(&self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        let b = if us <= 1.0 {
            0
        } else {
            ((us.ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
        };
        self.counts[b].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls recorded so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0–1) from above, within 5%; None before any call.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Duration::from_secs_f64(GROWTH.powi(b as i32) * 1e-6));
            }
        }
        None
    }

    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_five_percent() {
        let log = LatencyLog::default();
        assert_eq!(log.quantile(0.5), None);
        for ms in 1..=100u64 {
            log.record(Duration::from_millis(ms));
        }
        let p50 = log.quantile(0.5).unwrap().as_secs_f64() * 1e3;
        let p99 = log.quantile(0.99).unwrap().as_secs_f64() * 1e3;
        assert!((50.0..=52.5).contains(&p50), "{p50}");
        assert!((99.0..=104.0).contains(&p99), "{p99}");
        assert_eq!(log.count(), 100);
    }
}
