//! Exponential backoff: initial × 2^n, capped, optionally spread by jitter.

use std::time::Duration;

/// Where a backoff starts and where it stops growing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// initial × 2^`doublings`, capped at `max`.
    pub fn wait(&self, doublings: u32) -> Duration {
        self.initial.saturating_mul(2u32.saturating_pow(doublings.min(20))).min(self.max)
    }

    /// [`Backoff::wait`] spread ±20 % by `jitter` (a number in [0, 1)), still capped, so the
    /// retries of many clusters do not arrive together.
    pub fn jittered(&self, doublings: u32, jitter: f64) -> Duration {
        self.wait(doublings).mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_jitter_spreads_twenty_percent() {
        let b = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(10) };
        let waits: Vec<u64> = (0..6).map(|n| b.wait(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.wait(u32::MAX), Duration::from_secs(10));
        assert_eq!(b.jittered(0, 0.0), Duration::from_millis(800));
        assert_eq!(b.jittered(0, 1.0), Duration::from_millis(1200));
        assert_eq!(b.jittered(5, 1.0), Duration::from_secs(10));
    }
}
