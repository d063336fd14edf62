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

/// A watch's backoff while the API server is away (or not yet known to answer): 250 ms doubling
/// to 1 s, ±20 %. kube-runtime's default grows to 30 s, so after an API server outage the
/// operator stayed blind for up to half a minute; with a 1 s cap a watch is back within about a
/// second of the server answering, at the cost of one request a second per watch while the
/// server is down.
pub const WATCH: Backoff = Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(1) };

/// A watch's backoff while the server answers and the watch still fails: its own failure (a CRD
/// removed, a permission taken away). Quick at first, since a restarted server answers 410 "too
/// old resource version" for a few seconds, then slower, so that a watch that fails for good
/// costs a request every five minutes, not every second.
pub const OWN_FAILURE: Backoff = Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(300) };

/// One watch's backoff, reporting to the process's [`Outage`] and asking it whether the server
/// answers: while it does not, [`WATCH`]; once the server has answered since this watch last
/// failed, the failure is the watch's own and the wait grows along [`OWN_FAILURE`].
pub struct WatchBackoff {
    failures: u32,
    /// Failures in a row while the server answered.
    own: u32,
    /// [`Outage::ready_answers`] when this watch last failed.
    answers_seen: u64,
    outage: Outage,
}

impl WatchBackoff {
    pub fn new(outage: &Outage) -> WatchBackoff {
        WatchBackoff { failures: 0, own: 0, answers_seen: 0, outage: outage.clone() }
    }

    /// The wait after this failure, with `jitter` in [0, 1).
    fn after_failure(&mut self, jitter: f64) -> Duration {
        let answers = self.outage.ready_answers();
        let wait = if self.outage.is_down() {
            // The server is away: its failures say nothing about this watch.
            self.own = 0;
            WATCH.jittered(self.failures, jitter)
        } else if self.failures > 0 && answers > self.answers_seen {
            let wait = OWN_FAILURE.jittered(self.own, jitter);
            self.own = self.own.saturating_add(1);
            wait
        } else {
            // Not known yet whether the server answers: /readyz is being asked.
            WATCH.jittered(self.failures, jitter)
        };
        self.answers_seen = answers;
        self.failures = self.failures.saturating_add(1);
        wait
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.outage.failed();
        Some(self.after_failure(rand::random::<f64>()))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    /// Called on every item the watch yields; after failures the watch works again.
    fn reset(&mut self) {
        if self.failures > 0 {
            self.failures = 0;
            self.own = 0;
            self.outage.recoveries.send_modify(|n| *n += 1);
        }
    }
}

/// The backoff a kube `Controller` puts on its triggers: none. The Controller backs off the
/// merged stream of its watches again, by default along client-go's 800 ms doubling to 30 s, on
/// top of each watch's own [`WatchBackoff`]; after a 30 s outage that second wait held the
/// Assessment controller's watch 5.8, 9.3 and then 22 s apart, and a new Assessment waited for
/// it. Every watch given to a Controller here backs off on its own, so the Controller need not.
pub struct Triggers;

impl Iterator for Triggers {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for Triggers {
    fn reset(&mut self) {}
}

/// How often the API server is asked whether it is ready while it does not answer.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How long the operator was cut off from the API server. A failed watch is not enough to say
/// so (after a restart watches fail for a few seconds with "too old resource version" from a
/// server that answers, and a quiet watch that resumes yields nothing to show it works), so a
/// failure makes [`Outage::report`] ask the server's `/readyz`: if it answers, that was the
/// watch's own error; if not, the outage lasts from that first failure until `/readyz`
/// answers ok, and is logged once and counted in `kube9_api_outages_total` and
/// `kube9_api_outage_seconds`. Each end of an outage, and every watch that works again, bumps
/// [`Outage::recoveries`], so the status is looked at again at once (an object deleted while
/// the watches were down leaves no event to react to).
#[derive(Clone)]
pub struct Outage {
    /// When a watch first failed since the server last answered.
    first_failure: std::sync::Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    failures: std::sync::Arc<tokio::sync::Notify>,
    recoveries: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Whether `/readyz` failed and has not answered ok since.
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How many times `/readyz` answered ok after a watch failed.
    ready_answers: std::sync::Arc<std::sync::atomic::AtomicU64>,
    metrics: crate::base::metrics::Metrics,
}

impl Outage {
    pub fn new(metrics: crate::base::metrics::Metrics) -> Outage {
        let (recoveries, _) = tokio::sync::watch::channel(0);
        Outage {
            first_failure: Default::default(),
            failures: Default::default(),
            recoveries: std::sync::Arc::new(recoveries),
            down: Default::default(),
            ready_answers: Default::default(),
            metrics,
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn ready_answers(&self) -> u64 {
        self.ready_answers.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn failed(&self) {
        if let Ok(mut first) = self.first_failure.lock() {
            first.get_or_insert_with(tokio::time::Instant::now);
        }
        self.failures.notify_one();
    }

    /// Asks the API server's `/readyz` after each watch failure and times the outages, until
    /// `stop`.
    pub async fn report(self, client: kube::Client, stop: impl Future<Output = ()>) {
        let probe = move || {
            let client = client.clone();
            async move {
                let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else { return false };
                matches!(tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await, Ok(Ok(_)))
            }
        };
        tokio::select! {
            _ = self.watch(probe) => {}
            _ = stop => {}
        }
    }

    /// [`Outage::report`] with the question asked by `ready`.
    async fn watch<F: Future<Output = bool>>(&self, mut ready: impl FnMut() -> F) {
        loop {
            self.failures.notified().await;
            let Some(since) = self.first_failure.lock().ok().and_then(|f| *f) else { continue };
            if !ready().await {
                tracing::warn!("the API server does not answer; watches retry every second");
                self.down.store(true, std::sync::atomic::Ordering::SeqCst);
                while !ready().await {
                    tokio::time::sleep(PROBE_EVERY).await;
                }
                self.down.store(false, std::sync::atomic::Ordering::SeqCst);
                let seconds = since.elapsed().as_secs_f64();
                self.metrics.api_outage(seconds);
                tracing::warn!(
                    cut_off_seconds = format!("{seconds:.1}"),
                    "the API server answers again after an outage"
                );
                self.recoveries.send_modify(|n| *n += 1);
            }
            if let Ok(mut first) = self.first_failure.lock() {
                *first = None;
            }
            self.ready_answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Bumped each time the operator may have missed changes: a watch works again after
    /// failing, or an outage ends.
    pub fn recoveries(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recoveries.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_backoff_stays_under_a_second_and_says_when_a_watch_works_again() {
        use kube::runtime::utils::Backoff as _;
        let outage = Outage::new(crate::base::metrics::Metrics::default());
        let mut recoveries = outage.recoveries();
        let (mut a, mut b) = (WatchBackoff::new(&outage), WatchBackoff::new(&outage));
        let waits: Vec<Duration> = (0..10).map(|_| a.next().unwrap()).collect();
        assert!(waits[0] <= Duration::from_millis(300), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)), "{waits:?}");
        b.next();
        a.reset();
        b.reset();
        assert_eq!(*recoveries.borrow_and_update(), 2, "each watch that works again looks again at once");
        // A reset with no failure before it (every item a watch yields) is not a recovery.
        a.reset();
        assert!(!recoveries.has_changed().unwrap());
    }

    /// `ready` answers from a script: false while the server is down.
    async fn run(outage: &Outage, answers: Vec<bool>) -> Vec<bool> {
        let answers = std::sync::Arc::new(std::sync::Mutex::new(answers.into_iter()));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let ready = || {
            let (answers, asked) = (answers.clone(), asked.clone());
            async move {
                let answer = answers.lock().unwrap().next().unwrap_or(true);
                asked.lock().unwrap().push(answer);
                answer
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), outage.watch(ready)).await;
        asked.lock().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_lasts_from_the_first_failure_until_the_server_is_ready_and_counts_once() {
        let metrics = crate::base::metrics::Metrics::default();
        let outage = Outage::new(metrics.clone());
        let mut recoveries = outage.recoveries();
        let mut watches: Vec<WatchBackoff> = (0..3).map(|_| WatchBackoff::new(&outage)).collect();
        for w in &mut watches {
            w.next();
        }
        // Down for the first 30 questions (a second apart), then ready.
        let asked = run(&outage, [vec![false; 30], vec![true]].concat()).await;
        assert_eq!(asked.len(), 31, "asked once a second until ready, and not again: {asked:?}");
        let text = metrics.encode();
        assert!(text.contains("kube9_api_outages_total 1\n"), "{text}");
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("kube9_api_outage_seconds_sum "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!((29.0..31.0).contains(&sum), "{sum}");
        assert!(recoveries.has_changed().unwrap());
        recoveries.mark_unchanged();
        // After the restart the watches fail again ("too old resource version") from a server
        // that answers: not a second outage.
        for w in &mut watches {
            w.next();
        }
        let asked = run(&outage, vec![true]).await;
        assert_eq!(asked, [true]);
        assert!(metrics.encode().contains("kube9_api_outages_total 1\n"));
        assert!(!recoveries.has_changed().unwrap());
    }

    /// A server down for `down` (offsets from the start of the test), and a watch against it.
    struct Scenario {
        start: tokio::time::Instant,
        down: std::ops::Range<Duration>,
    }

    impl Scenario {
        fn up(&self) -> bool {
            !self.down.contains(&self.start.elapsed())
        }

        /// Runs one watch for `run` with a detector asking this server's `/readyz`, and returns
        /// when it tried (offsets from the start) and whether that try worked. A watch that
        /// `works` holds its connection until the server goes away; one that does not fails
        /// every try (its CRD removed) even while the server answers.
        async fn watch(self, works: bool, run: Duration) -> Vec<(Duration, bool)> {
            use kube::runtime::utils::Backoff as _;
            let scenario = std::sync::Arc::new(self);
            let outage = Outage::new(crate::base::metrics::Metrics::default());
            let detector = {
                let (outage, scenario) = (outage.clone(), scenario.clone());
                tokio::spawn(async move {
                    outage
                        .watch(|| {
                            let up = scenario.up();
                            async move { up }
                        })
                        .await
                })
            };
            let mut backoff = WatchBackoff::new(&outage);
            let mut tries = Vec::new();
            while scenario.start.elapsed() < run {
                let worked = works && scenario.up();
                tries.push((scenario.start.elapsed(), worked));
                if worked {
                    backoff.reset();
                    let now = scenario.start.elapsed();
                    let cut = if scenario.down.start > now { scenario.down.start } else { run };
                    tokio::time::sleep(cut - now).await;
                } else {
                    let wait = backoff.next().unwrap();
                    tokio::time::sleep(wait).await;
                }
                // Lets the detector answer between tries, as it would on a real clock.
                tokio::task::yield_now().await;
            }
            detector.abort();
            tries
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_outage_of_any_length_a_watch_is_back_within_three_seconds_of_readiness() {
        for seconds in [2, 30, 300, 3600] {
            let from = Duration::from_secs(10);
            let until = from + Duration::from_secs(seconds);
            let scenario = Scenario { start: tokio::time::Instant::now(), down: from..until };
            let tries = scenario.watch(true, until + Duration::from_secs(30)).await;
            let back = tries.iter().find(|(at, worked)| *at >= until && *worked).map(|(at, _)| *at - until);
            assert!(
                back.is_some_and(|b| b <= Duration::from_secs(3)),
                "down {seconds} s: back {back:?} after readiness"
            );
            let during = tries.iter().filter(|(at, _)| (from..until).contains(at)).count() as u64;
            assert!(during <= seconds * 2 + 4, "down {seconds} s: {during} tries while down, about one a second");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_fails_while_the_server_answers_retries_quickly_then_every_five_minutes() {
        let start = tokio::time::Instant::now();
        let never = Duration::from_secs(1 << 30);
        let scenario = Scenario { start, down: never..never };
        let hour = Duration::from_secs(3600);
        let tries = scenario.watch(false, hour).await;
        let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].0 - w[0].0).collect();
        // A restarted server answers 410 for a few seconds: the first retries are quick.
        assert!(gaps[..3].iter().all(|g| *g <= Duration::from_millis(1300)), "{gaps:?}");
        // Then the waits grow to about five minutes: not one request a second for an hour.
        assert!(tries.len() < 40, "{} tries in an hour: {gaps:?}", tries.len());
        assert!(gaps.last().is_some_and(|g| *g >= Duration::from_secs(240)), "{gaps:?}");
        assert!(gaps.iter().all(|g| *g <= Duration::from_secs(301)), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_failed_for_good_is_fast_again_once_it_has_worked() {
        use kube::runtime::utils::Backoff as _;
        let outage = Outage::new(crate::base::metrics::Metrics::default());
        let mut backoff = WatchBackoff::new(&outage);
        // The server answered after each failure: the waits grow.
        for _ in 0..12 {
            backoff.after_failure(0.5);
            outage.ready_answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        assert!(backoff.after_failure(0.5) >= Duration::from_secs(60));
        backoff.reset();
        assert!(backoff.after_failure(0.5) <= Duration::from_millis(300));
        // While the server is away the wait stays at a second, however long the watch failed.
        outage.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..50 {
            outage.ready_answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert!(backoff.after_failure(1.0) <= Duration::from_secs(1));
        }
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
