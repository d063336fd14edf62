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

/// The watches' backoff: 250 ms doubling to 1 s, ±20 %. kube-runtime's default grows to 30 s,
/// so after an API server outage the operator stayed blind for up to half a minute; with a
/// 1 s cap it writes again within about a second of the server answering, at the cost of one
/// request a second per watch while the server is down.
pub const WATCH: Backoff = Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(1) };

/// One watch's backoff, reporting to the process's [`Outage`].
pub struct WatchBackoff {
    failures: u32,
    outage: Outage,
}

impl WatchBackoff {
    pub fn new(outage: &Outage) -> WatchBackoff {
        WatchBackoff { failures: 0, outage: outage.clone() }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.outage.failed();
        let wait = WATCH.jittered(self.failures, rand::random::<f64>());
        self.failures = self.failures.saturating_add(1);
        Some(wait)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    /// Called on every item the watch yields; after failures it means the server answers again.
    fn reset(&mut self) {
        if self.failures > 0 {
            self.failures = 0;
            self.outage.recovered();
        }
    }
}

/// How long the operator was cut off from the API server: from the first failed watch to the
/// first that answers again, logged once and observed in `kube9_api_outage_seconds`. Every
/// watch that recovers also bumps [`Outage::recoveries`], so the status is looked at again at
/// once (an object deleted while the watches were down leaves no event to react to).
#[derive(Clone)]
pub struct Outage {
    since: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    recoveries: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    metrics: crate::base::metrics::Metrics,
}

impl Outage {
    pub fn new(metrics: crate::base::metrics::Metrics) -> Outage {
        let (recoveries, _) = tokio::sync::watch::channel(0);
        Outage { since: Default::default(), recoveries: std::sync::Arc::new(recoveries), metrics }
    }

    fn failed(&self) {
        if let Ok(mut since) = self.since.lock()
            && since.is_none()
        {
            *since = Some(std::time::Instant::now());
            tracing::warn!("the API server does not answer; watches retry every second");
        }
    }

    fn recovered(&self) {
        let began = self.since.lock().ok().and_then(|mut since| since.take());
        if let Some(began) = began {
            let seconds = began.elapsed().as_secs_f64();
            self.metrics.api_outage(seconds);
            tracing::warn!(cut_off_seconds = format!("{seconds:.1}"), "the API server answers again after an outage");
        }
        self.recoveries.send_modify(|n| *n += 1);
    }

    /// Bumped each time a watch answers again after failing.
    pub fn recoveries(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recoveries.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_backoff_stays_under_a_second_and_reports_the_outage_once() {
        use kube::runtime::utils::Backoff as _;
        let metrics = crate::base::metrics::Metrics::default();
        let outage = Outage::new(metrics.clone());
        let mut recoveries = outage.recoveries();
        let (mut a, mut b) = (WatchBackoff::new(&outage), WatchBackoff::new(&outage));
        let waits: Vec<Duration> = (0..10).map(|_| a.next().unwrap()).collect();
        assert!(waits[0] <= Duration::from_millis(300), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)), "{waits:?}");
        b.next();
        a.reset();
        b.reset();
        assert!(recoveries.has_changed().unwrap());
        assert_eq!(*recoveries.borrow_and_update(), 2);
        assert_eq!(metrics.encode().matches("kube9_api_outages_total 1").count(), 1, "{}", metrics.encode());
        // A reset with no failure before it (every item a watch yields) is not a recovery.
        a.reset();
        assert!(!recoveries.has_changed().unwrap());
    }

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
