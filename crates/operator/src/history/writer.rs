//! The store's one writer: a thread that owns the SQLite connection, takes writes from a
//! bounded queue, and commits whatever has queued up in one transaction. It keeps retention
//! and checks the store every [`CHECK_EVERY`]; while the store cannot be used it says why on a
//! `watch` channel (the status reconciler shows the operator degraded), logs it, counts it,
//! drops what it cannot write, and tries to open the store again — everything else goes on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube9_store::{Limits, Store, Write};
use tokio::sync::{mpsc, watch};

use crate::base::metrics::Metrics;

/// Writes waiting for the writer; a full queue slows the Events watch rather than growing.
const QUEUE: usize = 2048;
/// Most writes in one transaction.
const MAX_BATCH: usize = 1000;
/// How long the writer waits for more writes after the first, to commit them together.
const LINGER: Duration = Duration::from_millis(50);
/// How often retention runs and the store is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Batches of findings queued or being written at once: a large run waits for the writer
/// rather than holding its findings in the queue.
const FINDING_BATCHES: usize = 4;

#[allow(clippy::large_enum_variant)] // nearly every message is a write
enum Message {
    Write(Write),
    /// A batch of findings, holding its place among the [`FINDING_BATCHES`] until written.
    Batch(Write, tokio::sync::OwnedSemaphorePermit),
    Check,
    /// Answered once everything queued before it has been written (or dropped).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Hands writes to the writer. Cheap to clone; a recorder without a store drops everything.
#[derive(Clone)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Message>>,
    /// The store's directory, for readers of what was written.
    dir: Option<PathBuf>,
    batches: std::sync::Arc<tokio::sync::Semaphore>,
    metrics: Metrics,
}

impl Recorder {
    /// A recorder for an operator without a data directory.
    pub fn disabled(metrics: Metrics) -> Recorder {
        Recorder { tx: None, dir: None, batches: Self::batches(), metrics }
    }

    fn batches() -> std::sync::Arc<tokio::sync::Semaphore> {
        std::sync::Arc::new(tokio::sync::Semaphore::new(FINDING_BATCHES))
    }

    /// Queues a write, waiting while the queue is full (the Events watch).
    pub async fn send(&self, write: Write) {
        if let Some(tx) = &self.tx
            && tx.send(Message::Write(write)).await.is_ok()
        {
            return;
        }
        self.metrics.store_dropped(1);
    }

    /// Waits until every write queued before this call has been committed (or dropped, when
    /// the store cannot be used). False without a store.
    pub async fn flush(&self) -> bool {
        let Some(tx) = &self.tx else { return false };
        let (done, written) = tokio::sync::oneshot::channel();
        tx.send(Message::Flush(done)).await.is_ok() && written.await.is_ok()
    }

    /// A read-only view of the store (None without one).
    pub fn reader(&self) -> Option<Result<kube9_store::Reader, kube9_store::Error>> {
        self.dir.as_deref().map(kube9_store::Reader::open)
    }

    /// Whether there is a store to write to (the operator has a data directory).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Starts writing an Assessment run's findings to the store (see [`RunWriter`]).
    pub async fn begin_run(&self, assessment: &str, run_id: &str, started_at_ms: i64) -> RunWriter {
        let begin = Write::RunBegin { assessment: assessment.to_owned(), run_id: run_id.to_owned(), started_at_ms };
        self.send(begin).await;
        RunWriter { recorder: self.clone(), run_id: run_id.to_owned(), appended: 0 }
    }

    /// Queues a write without waiting: dropped (and counted) when the queue is full. For the
    /// operator's own events, which must never hold up a reconcile.
    pub fn record(&self, write: Write) {
        if let Some(tx) = &self.tx
            && tx.try_send(Message::Write(write)).is_ok()
        {
            return;
        }
        self.metrics.store_dropped(1);
    }
}

/// One Assessment run's findings on their way to the store: appended a batch at a time (the
/// run never converts them all at once), then finished with the run's summary, or aborted.
/// Each write waits while the writer's queue is full, so a large run slows down rather than
/// losing findings or growing the queue; the writer thread does the SQLite work.
pub struct RunWriter {
    recorder: Recorder,
    run_id: String,
    appended: u64,
}

impl RunWriter {
    /// Adds a batch of the run's findings.
    pub async fn append(&mut self, findings: Vec<kube9_store::FindingRow>) {
        if findings.is_empty() {
            return;
        }
        self.appended += findings.len() as u64;
        let write = Write::RunFindings { run_id: self.run_id.clone(), findings };
        let (Some(tx), Ok(permit)) = (&self.recorder.tx, self.recorder.batches.clone().acquire_owned().await) else {
            self.recorder.metrics.store_dropped(1);
            return;
        };
        if tx.send(Message::Batch(write, permit)).await.is_err() {
            self.recorder.metrics.store_dropped(1);
        }
    }

    /// How many findings were appended.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Completes the run: its summary (whose `findings` is set to the count appended) joins the
    /// history, and its findings replace the previous run's once the store holds all of them.
    pub async fn finish(self, mut summary: kube9_store::RunSummary) {
        summary.findings = self.appended;
        self.recorder.send(Write::RunFinish(Box::new(summary))).await;
    }

    /// The run will not complete: its findings are dropped, the previous run's stay.
    pub async fn abort(self) {
        self.recorder.send(Write::RunAbort { run_id: self.run_id }).await;
    }
}

/// Starts the writer thread and its check timer. Returns the recorder and why the store
/// cannot be used (None while it can).
pub fn start(dir: PathBuf, limits: Limits, metrics: Metrics) -> (Recorder, watch::Receiver<Option<String>>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (failure_tx, failure_rx) = watch::channel(None);
    let writer = Writer {
        dir: dir.clone(),
        limits,
        metrics: metrics.clone(),
        store: None,
        failure: failure_tx,
        last_open: None,
    };
    let spawned = std::thread::Builder::new().name("kube9-store".into()).spawn(move || writer.run(rx));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the store's writer thread; no event history is kept");
        return (Recorder::disabled(metrics), failure_rx);
    }
    let ticker = tx.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(CHECK_EVERY);
        loop {
            interval.tick().await;
            if ticker.send(Message::Check).await.is_err() {
                return;
            }
        }
    });
    (Recorder { tx: Some(tx), dir: Some(dir), batches: Recorder::batches(), metrics }, failure_rx)
}

struct Writer {
    dir: PathBuf,
    limits: Limits,
    metrics: Metrics,
    store: Option<Store>,
    failure: watch::Sender<Option<String>>,
    last_open: Option<Instant>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        self.open();
        let mut batch = Vec::with_capacity(64);
        let mut permits = Vec::new();
        let mut flushes = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut check = false;
            let mut take = |message, batch: &mut Vec<Write>| match message {
                Message::Write(w) => batch.push(w),
                Message::Batch(w, permit) => {
                    batch.push(w);
                    permits.push(permit);
                }
                Message::Check => check = true,
                Message::Flush(done) => flushes.push(done),
            };
            take(first, &mut batch);
            if !batch.is_empty() && rx.len() < MAX_BATCH {
                std::thread::sleep(LINGER);
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(message) => take(message, &mut batch),
                    Err(_) => break,
                }
            }
            // The check first: a store found gone is opened anew before these are written.
            if check {
                self.check();
            }
            if !batch.is_empty() {
                self.write(&batch);
                batch.clear();
            }
            permits.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }

    fn open(&mut self) {
        self.last_open = Some(Instant::now());
        match Store::open(&self.dir, self.limits) {
            Ok(store) => {
                tracing::info!(path = %store.path().display(), "store open");
                self.store = Some(store);
                self.healthy();
            }
            Err(e) => self.failed(&e),
        }
    }

    fn write(&mut self, batch: &[Write]) {
        if self.store.is_none() && self.last_open.is_none_or(|t| t.elapsed() >= CHECK_EVERY) {
            self.open();
        }
        let Some(store) = &mut self.store else {
            self.metrics.store_dropped(batch.len() as u64);
            return;
        };
        match store.write(batch) {
            Ok(()) => self.metrics.store_write(batch.len() as u64, None),
            Err(e) => {
                self.metrics.store_write(batch.len() as u64, Some(e.code()));
                self.failed(&e);
            }
        }
    }

    /// Retention and the health check: a store deleted or replaced is opened anew; one that
    /// cannot be written is reported until it can.
    fn check(&mut self) {
        let Some(store) = &mut self.store else {
            self.open();
            return;
        };
        let checked = store.check().and_then(|()| store.maintain(now_ms()));
        match checked {
            Ok(pruned) => {
                if pruned != Default::default() {
                    tracing::debug!(?pruned, "store retention");
                }
                self.healthy();
            }
            Err(e) => {
                let gone = e.code() == "store-gone";
                self.failed(&e);
                if gone {
                    self.store = None;
                    self.open();
                }
            }
        }
    }

    fn healthy(&mut self) {
        let was_failing = self.failure.send_if_modified(|failure| failure.take().is_some());
        if was_failing {
            tracing::info!(dir = %self.dir.display(), "the store works again");
        }
        self.metrics.store_health(None);
    }

    fn failed(&mut self, error: &kube9_store::Error) {
        let message = format!("event history unavailable: {error}");
        self.metrics.store_health(Some(error.code()));
        let changed = self.failure.send_if_modified(|failure| {
            let changed = failure.as_deref() != Some(message.as_str());
            *failure = Some(message.clone());
            changed
        });
        if changed {
            tracing::error!(error = %error, code = error.code(), "the store cannot be used; the operator goes on without it");
        }
    }
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube9_store::{EventRow, Filter, Reader};
    use std::path::Path;

    fn path(dir: &Path) -> PathBuf {
        dir.join(kube9_store::FILE_NAME)
    }

    fn event(uid: &str) -> Write {
        Write::Event(EventRow {
            id: 0,
            uid: uid.into(),
            event_type: "cluster".into(),
            severity: "info".into(),
            title: "t".into(),
            description: "d".into(),
            object_kind: Some("Pod".into()),
            object_namespace: Some("ns".into()),
            object_name: Some("p".into()),
            reason: Some("Pulled".into()),
            count: 1,
            first_seen: now_ms(),
            last_seen: now_ms(),
        })
    }

    fn chattr(path: &Path, flag: &str) {
        assert!(std::process::Command::new("chattr").arg(flag).arg(path).status().unwrap().success());
    }

    async fn wait(rx: &mut watch::Receiver<Option<String>>, failing: bool) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|f| f.is_some() == failing))
            .await
            .expect("the store's state is reported")
            .unwrap()
            .clone()
    }

    /// Waits until the store holds `n` events.
    async fn stored(dir: &Path, n: u64) {
        for _ in 0..100 {
            if Reader::open(dir).and_then(|r| r.event_count()).is_ok_and(|c| c == n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the store never held {n} events");
    }

    #[tokio::test]
    async fn a_read_only_store_is_reported_and_writes_go_on_once_it_recovers() {
        let dir = std::env::temp_dir().join(format!("kube9-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let metrics = Metrics::default();
        let (recorder, mut failure) = start(dir.clone(), Limits::default(), metrics.clone());
        recorder.send(event("a")).await;
        stored(&dir, 1).await;
        chattr(&path(&dir), "+i");
        chattr(&dir, "+i");
        let tx = recorder.tx.clone().unwrap();
        tx.send(Message::Check).await.unwrap();
        let why = wait(&mut failure, true).await.unwrap();
        chattr(&dir, "-i");
        chattr(&path(&dir), "-i");
        assert!(why.contains("cannot be written"), "{why}");
        assert!(metrics.encode().contains("kube9_store_up 0"), "{}", metrics.encode());
        tx.send(Message::Check).await.unwrap();
        assert_eq!(wait(&mut failure, false).await, None);
        recorder.send(event("c")).await;
        stored(&dir, 2).await;
        let reader = Reader::open(&dir).unwrap();
        let uids: Vec<String> =
            reader.events(&Filter { limit: 10, ..Default::default() }).unwrap().into_iter().map(|e| e.uid).collect();
        assert!(uids.contains(&"a".to_owned()) && uids.contains(&"c".to_owned()), "{uids:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_deleted_store_is_reported_and_opened_anew() {
        let dir = std::env::temp_dir().join(format!("kube9-writer-gone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let metrics = Metrics::default();
        let (recorder, mut failure) = start(dir.clone(), Limits::default(), metrics.clone());
        recorder.send(event("a")).await;
        stored(&dir, 1).await;
        std::fs::remove_file(path(&dir)).unwrap();
        recorder.tx.clone().unwrap().send(Message::Check).await.unwrap();
        assert_eq!(wait(&mut failure, false).await, None);
        recorder.send(event("after")).await;
        stored(&dir, 1).await;
        assert!(
            metrics.encode().contains(r#"kube9_store_failures_total{error="store-gone"} 1"#),
            "{}",
            metrics.encode()
        );
        let reader = Reader::open(&dir).unwrap();
        let uids: Vec<String> =
            reader.events(&Filter { limit: 10, ..Default::default() }).unwrap().into_iter().map(|e| e.uid).collect();
        assert_eq!(uids, ["after"], "a new store in its place");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn finding(n: usize) -> kube9_store::FindingRow {
        kube9_store::FindingRow {
            check_id: "security.privileged".into(),
            pillar: "security".into(),
            severity: "critical".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: format!("web-{n}"),
            container: None,
            message: "runs privileged".into(),
            exempted: false,
        }
    }

    #[tokio::test]
    async fn a_run_written_in_batches_replaces_the_previous_once_finished() {
        let dir = std::env::temp_dir().join(format!("kube9-writer-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (recorder, _failure) = start(dir.clone(), Limits::default(), Metrics::default());
        let summary = |run_id: &str| kube9_store::RunSummary {
            run_id: run_id.into(),
            assessment: "nightly".into(),
            started_at: now_ms(),
            completed_at: now_ms(),
            score: 50,
            summary: "{}".into(),
            findings: 0,
            checks: Vec::new(),
        };
        let listed = |dir: &Path| {
            let filter =
                kube9_store::FindingFilter { assessment: "nightly".into(), limit: 100_000, ..Default::default() };
            Reader::open(dir).and_then(|r| r.findings(&filter)).map(|page| (page.run.run_id, page.matching))
        };
        for (run_id, n) in [("nightly-1", 1700), ("nightly-2", 30)] {
            let mut run = recorder.begin_run("nightly", run_id, now_ms()).await;
            let all: Vec<_> = (0..n).map(finding).collect();
            for batch in all.chunks(500) {
                run.append(batch.to_vec()).await;
            }
            assert_eq!(run.appended(), n as u64);
            run.finish(summary(run_id)).await;
            let mut seen = None;
            for _ in 0..100 {
                seen = listed(&dir).ok();
                if seen == Some((run_id.to_owned(), n as u64)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(seen, Some((run_id.to_owned(), n as u64)));
        }
        // An aborted run leaves the previous findings.
        let mut run = recorder.begin_run("nightly", "nightly-3", now_ms()).await;
        run.append(vec![finding(0)]).await;
        run.abort().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(listed(&dir).unwrap(), ("nightly-2".to_owned(), 30));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_disabled_recorder_counts_what_it_drops() {
        let metrics = Metrics::default();
        let recorder = Recorder::disabled(metrics.clone());
        recorder.record(event("a"));
        recorder.send(event("b")).await;
        assert!(metrics.encode().contains(r#"kube9_events_stored_total{outcome="dropped"} 2"#), "{}", metrics.encode());
    }
}
