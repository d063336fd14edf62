//! The operator's embedded store: SQLite (bundled, WAL mode) in the data directory. The
//! operator is its one writer ([`Store`]); `kube9-operator query` reads it beside the running
//! operator ([`Reader`], read-only: WAL lets a reader and the writer work at once).
//!
//! What it holds: the event history (one row per event, deduplicated by uid, its count and
//! last-seen time updated in place), the recent Assessment runs, and the status JSON the
//! operator last published. It never grows past its size budget: SQLite's `max_page_count`
//! caps the database file, the WAL is truncated after each checkpoint, and retention removes
//! the oldest rows by age, by row count, and whenever the file nears the cap.

pub mod ai_conformance;
pub mod cli;
mod error;
pub mod findings;
pub mod records;
pub mod replica;
pub mod schema;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub use ai_conformance::{AiRequirementRow, AiRunRow};
pub use error::Error;
use error::{is_corrupt, is_full};
pub use findings::{CheckRow, FindingFilter, FindingRow, FindingsPage, HistoryRow, RunSummary};
pub use records::{EventRow, EventType, Filter, RunRow, Severity};

/// The database's file name inside the data directory.
pub const FILE_NAME: &str = "kube9.db";

/// How much the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The database and its WAL together never take more than this.
    pub max_bytes: u64,
    /// Events whose last occurrence is older than this are removed.
    pub event_max_age: Duration,
    /// At most this many events (the oldest go first).
    pub event_max_rows: u64,
    /// At most this many Assessment runs.
    pub run_max_rows: u64,
    /// Completed runs (their totals and per-check outcomes) older than this leave the history.
    pub history_max_age: Duration,
    /// At most this many completed runs in the history, over every Assessment.
    pub history_max_runs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 192 * 1024 * 1024,
            event_max_age: Duration::from_secs(7 * 86400),
            event_max_rows: 200_000,
            run_max_rows: 500,
            history_max_age: Duration::from_secs(90 * 86400),
            history_max_runs: 5000,
        }
    }
}

/// The smallest size budget: room for the schema, a WAL and a few thousand rows.
pub const MIN_BYTES: u64 = 1024 * 1024;

const PAGE_SIZE: u64 = 4096;

/// One thing to write; the writer groups many into one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Event(EventRow),
    Run(RunRow),
    /// The status JSON (the ConfigMap's `status` key) as published at `at_ms`.
    Status {
        json: String,
        at_ms: i64,
    },
    /// An AI Conformance self-check and its requirements.
    AiConformance {
        run: AiRunRow,
        requirements: Vec<AiRequirementRow>,
    },
    /// An Assessment run starts writing its findings.
    RunBegin {
        assessment: String,
        run_id: String,
        started_at_ms: i64,
    },
    /// A batch of a run's findings.
    RunFindings {
        run_id: String,
        findings: Vec<FindingRow>,
    },
    /// The run completed: its summary joins the history, its findings replace the previous.
    RunFinish(Box<RunSummary>),
    /// The run will not complete: its findings are dropped, the previous ones stay.
    RunAbort {
        run_id: String,
    },
    /// The Assessment was deleted: its findings go (its history stays for its retention).
    AssessmentDeleted {
        assessment: String,
    },
}

impl Write {
    /// About the bytes it adds to a transaction (its text and its index entries).
    fn size(&self) -> usize {
        let text = match self {
            Write::Event(e) => {
                e.uid.len() * 2
                    + e.title.len()
                    + e.description.len()
                    + e.object_kind.as_ref().map_or(0, String::len) * 2
                    + e.object_namespace.as_ref().map_or(0, String::len) * 2
                    + e.object_name.as_ref().map_or(0, String::len)
                    + e.reason.as_ref().map_or(0, String::len)
            }
            Write::Run(r) => r.assessment.len() + r.message.len() + r.summary.len(),
            Write::Status { json, .. } => json.len(),
            Write::AiConformance { run, requirements } => {
                run.run_id.len() + run.totals.len() + requirements.iter().map(AiRequirementRow::size).sum::<usize>()
            }
            Write::RunBegin { assessment, run_id, .. } => assessment.len() + run_id.len() * 2,
            Write::RunFindings { findings, .. } => findings.iter().map(FindingRow::size).sum(),
            Write::RunFinish(run) => run.summary.len() + run.checks.len() * 64,
            Write::RunAbort { .. } => 0,
            Write::AssessmentDeleted { assessment } => assessment.len(),
        };
        text + 128
    }
}

/// One collector's result, as the store keeps it: the data and the words (both JSON text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionRow {
    pub collector: String,
    pub collected_at_ms: i64,
    pub data: String,
    /// A JSON array of the names an upload built from `data` must not contain.
    pub words: String,
}

const LATEST_COLLECTIONS: &str = "SELECT collector, collected_at, data, words FROM collections c
     WHERE id = (SELECT id FROM collections d WHERE d.collector = c.collector
                 ORDER BY collected_at DESC, id DESC LIMIT 1)
     ORDER BY collector";

fn latest_collections(conn: &Connection) -> Result<Vec<CollectionRow>, Error> {
    let mut statement = conn.prepare_cached(LATEST_COLLECTIONS)?;
    let rows = statement.query_map([], |r| {
        Ok(CollectionRow { collector: r.get(0)?, collected_at_ms: r.get(1)?, data: r.get(2)?, words: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every stored collection, newest first: collector, when, and the size of its data.
fn list_collections(conn: &Connection) -> Result<Vec<(String, i64, u64)>, Error> {
    let mut statement = conn
        .prepare("SELECT collector, collected_at, length(data) FROM collections ORDER BY collected_at DESC, id DESC")?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What one retention pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub by_age: u64,
    pub by_rows: u64,
    pub by_size: u64,
}

/// The writer: the operator's one open, writable connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    /// (device, inode) of the file when it was opened: another means it was replaced.
    identity: (u64, u64),
    limits: Limits,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and migrates it to the current schema.
    /// Another connection opening it at the same moment (switching a new file to WAL, or
    /// migrating it) can hold it for an instant without SQLite's busy handler: that is retried.
    pub fn open(dir: &Path, limits: Limits) -> Result<Store, Error> {
        let started = std::time::Instant::now();
        loop {
            match Store::open_once(dir, limits) {
                Err(e) if e.is_busy() && started.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &Path, limits: Limits) -> Result<Store, Error> {
        let path = dir.join(FILE_NAME);
        let fail = |why: String| Error::Open { path: path.display().to_string(), why };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let mut conn = Connection::open(&path).map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| if is_corrupt(&e) { Error::Corrupt(path.display().to_string()) } else { e.into() })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!("WAL mode is refused (journal mode {mode})")));
        }
        // A committed transaction survives a process kill without a sync per commit; a power
        // loss may lose the latest few, never the database.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (main_pages, wal_bytes) = budget(limits.max_bytes);
        conn.pragma_update(None, "max_page_count", main_pages)?;
        conn.pragma_update(None, "journal_size_limit", wal_bytes as i64)?;
        conn.pragma_update(None, "wal_autocheckpoint", (wal_bytes / PAGE_SIZE / 4).max(16) as i64)?;
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
            .map_err(|e| if is_corrupt(&e) { Error::Corrupt(path.display().to_string()) } else { e.into() })?;
        if check != "ok" {
            return Err(Error::Corrupt(path.display().to_string()));
        }
        schema::migrate(&mut conn)?;
        let identity = identity(&path).map_err(|e| fail(e.to_string()))?;
        Ok(Store { conn, path, dir: dir.to_owned(), identity, limits })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything in one transaction, then keeps the row caps. When the size budget is
    /// reached, removes the oldest rows and tries once more.
    pub fn write(&mut self, writes: &[Write]) -> Result<(), Error> {
        // Transactions small enough that the WAL stays within its share of the budget.
        let (_, wal_bytes) = budget(self.limits.max_bytes);
        let most = (wal_bytes / 8) as usize;
        let mut start = 0;
        let mut size = 0;
        for (i, write) in writes.iter().enumerate() {
            size += write.size();
            if size > most && i > start {
                self.write_chunk(&writes[start..i])?;
                start = i;
                size = write.size();
            }
        }
        self.write_chunk(&writes[start..])?;
        let replacing = |w: &Write| {
            matches!(
                w,
                Write::RunFinish(_) | Write::RunAbort { .. } | Write::RunBegin { .. } | Write::AssessmentDeleted { .. }
            )
        };
        if writes.iter().any(replacing) {
            self.remove_stale_findings()?;
        }
        Ok(())
    }

    /// Removes the findings of replaced or dropped runs, a step per transaction.
    fn remove_stale_findings(&mut self) -> Result<u64, Error> {
        let (_, wal_bytes) = budget(self.limits.max_bytes);
        let step = (wal_bytes / 8 / 256).max(64);
        let mut removed = 0;
        while findings::has_stale(&self.conn)? {
            let tx = self.conn.transaction()?;
            removed += findings::remove_stale(&tx, step)?;
            tx.commit()?;
        }
        Ok(removed)
    }

    fn write_chunk(&mut self, writes: &[Write]) -> Result<(), Error> {
        if writes.is_empty() {
            return Ok(());
        }
        match self.write_once(writes) {
            Err(e) if is_full(&e) => {
                self.shrink(0.25)?;
                self.write_once(writes).map_err(|e| if is_full(&e) { Error::Full(self.limits.max_bytes) } else { e })
            }
            other => other,
        }
    }

    fn write_once(&mut self, writes: &[Write]) -> Result<(), Error> {
        let tx = self.conn.transaction()?;
        {
            let mut event = tx.prepare_cached(records::UPSERT_EVENT)?;
            let mut run = tx.prepare_cached(records::INSERT_RUN)?;
            let mut status = tx.prepare_cached(
                "INSERT INTO status (name, json, updated_at) VALUES ('status', ?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
            )?;
            for write in writes {
                match write {
                    Write::Event(row) => {
                        event.execute(row.params())?;
                    }
                    Write::Run(row) => {
                        run.execute(row.params())?;
                    }
                    Write::Status { json, at_ms } => {
                        status.execute(params![json, at_ms])?;
                    }
                    Write::AiConformance { run, requirements } => {
                        ai_conformance::insert(&tx, run, requirements)?;
                    }
                    Write::RunBegin { assessment, run_id, started_at_ms } => {
                        findings::begin(&tx, assessment, run_id, *started_at_ms)?;
                    }
                    Write::RunFindings { run_id, findings: rows } => findings::append(&tx, run_id, rows)?,
                    Write::RunFinish(run) => findings::finish(&tx, run)?,
                    Write::RunAbort { run_id } => findings::abort(&tx, run_id)?,
                    Write::AssessmentDeleted { assessment } => findings::forget(&tx, assessment)?,
                }
            }
            prune_rows(&tx, "events", "last_seen", self.limits.event_max_rows)?;
            prune_rows(&tx, "assessment_runs", "finished_at", self.limits.run_max_rows)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Keeps a collection, and at most `keep` (the newest) of its collector's.
    pub fn put_collection(&mut self, row: &CollectionRow, keep: u64) -> Result<(), Error> {
        let put = |conn: &mut Connection| -> Result<(), Error> {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO collections (collector, collected_at, data, words) VALUES (?1, ?2, ?3, ?4)",
                params![row.collector, row.collected_at_ms, row.data, row.words],
            )?;
            tx.execute(
                "DELETE FROM collections WHERE collector = ?1 AND id NOT IN
                 (SELECT id FROM collections WHERE collector = ?1 ORDER BY collected_at DESC, id DESC LIMIT ?2)",
                params![row.collector, keep.max(1) as i64],
            )?;
            tx.commit()?;
            Ok(())
        };
        match put(&mut self.conn) {
            Err(e) if is_full(&e) => {
                self.shrink(0.25)?;
                put(&mut self.conn).map_err(|e| if is_full(&e) { Error::Full(self.limits.max_bytes) } else { e })
            }
            other => other,
        }
    }

    /// The newest collection of each collector that has one.
    pub fn latest_collections(&self) -> Result<Vec<CollectionRow>, Error> {
        latest_collections(&self.conn)
    }

    /// How many collections are kept, and when the newest was made.
    pub fn collection_summary(&self) -> Result<(u64, Option<i64>), Error> {
        Ok(self.conn.query_row("SELECT count(*), max(collected_at) FROM collections", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?)
    }

    /// Retention: by age and rows, and by size when the file is over 90 % of its cap. Deletes
    /// go in steps small enough for the WAL's share of the budget.
    pub fn maintain(&mut self, now_ms: i64) -> Result<Pruned, Error> {
        let cutoff = now_ms - self.limits.event_max_age.as_millis() as i64;
        let by_age = self.delete_oldest("events", "last_seen", &format!("last_seen < {cutoff}"), u64::MAX)?;
        self.delete_oldest("assessment_runs", "finished_at", &format!("finished_at < {cutoff}"), u64::MAX)?;
        let over = |store: &Store, table: &str, max: u64| -> Result<u64, Error> {
            let rows: i64 = store.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok((rows as u64).saturating_sub(max))
        };
        let n = over(self, "events", self.limits.event_max_rows)?;
        let by_rows = self.delete_oldest("events", "last_seen", "1", n)?;
        let n = over(self, "assessment_runs", self.limits.run_max_rows)?;
        self.delete_oldest("assessment_runs", "finished_at", "1", n)?;
        let history_cutoff = now_ms - self.limits.history_max_age.as_millis() as i64;
        findings::prune(&self.conn, now_ms, history_cutoff, self.limits.history_max_runs)?;
        self.remove_stale_findings()?;
        let by_size = if self.used_fraction()? > 0.9 { self.shrink(0.2)? } else { 0 };
        Ok(Pruned { by_age, by_rows, by_size })
    }

    /// The fraction of the database's page cap in use (freed pages are reused, not counted).
    pub fn used_fraction(&self) -> Result<f64, Error> {
        let (used, max) = self.pages()?;
        Ok(used as f64 / max.max(1) as f64)
    }

    fn pages(&self) -> Result<(u64, u64), Error> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let max: i64 = self.conn.query_row("PRAGMA max_page_count", [], |r| r.get(0))?;
        Ok(((pages - free) as u64, max as u64))
    }

    /// Removes the oldest `fraction` of the events (or of the runs when there are no events).
    fn shrink(&mut self, fraction: f64) -> Result<u64, Error> {
        for (table, time) in [("events", "last_seen"), ("assessment_runs", "finished_at")] {
            let rows: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            if rows > 0 {
                let n = ((rows as f64 * fraction).ceil() as u64).max(1);
                return self.delete_oldest(table, time, "1", n);
            }
        }
        Ok(0)
    }

    /// Deletes up to `most` of the oldest rows matching `condition`, a step per transaction.
    fn delete_oldest(&mut self, table: &str, time: &str, condition: &str, most: u64) -> Result<u64, Error> {
        if most == 0 {
            return Ok(0);
        }
        let (used_pages, _) = self.pages()?;
        let rows: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        let row_bytes = (used_pages * PAGE_SIZE / (rows.max(1) as u64)).max(64);
        let (_, wal_bytes) = budget(self.limits.max_bytes);
        let step = (wal_bytes / 8 / row_bytes).max(8);
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {condition} ORDER BY {time}, id LIMIT ?1)"
        );
        let mut removed = 0;
        while removed < most {
            let n = step.min(most - removed);
            let done = self.conn.execute(&sql, [n as i64])? as u64;
            removed += done;
            if done < n {
                break;
            }
        }
        Ok(removed)
    }

    /// Whether the store can still be written: the file at the path is the one open, and it
    /// and the directory accept writes. A deleted file, a remounted read-only volume or an
    /// immutable file fail here even while the open connection still writes somewhere.
    pub fn check(&self) -> Result<(), Error> {
        let path = self.path.display().to_string();
        match identity(&self.path) {
            Ok(id) if id == self.identity => {}
            _ => return Err(Error::Gone(path)),
        }
        let unwritable =
            |e: std::io::Error| Error::Unwritable { path: self.dir.display().to_string(), why: e.to_string() };
        std::fs::OpenOptions::new().write(true).open(&self.path).map_err(unwritable)?;
        let probe = self.dir.join(".kube9-probe");
        std::fs::write(&probe, b"").map_err(unwritable)?;
        std::fs::remove_file(&probe).map_err(unwritable)?;
        Ok(())
    }
}

/// The database's page cap and the WAL's size limit for a budget: the WAL gets an eighth
/// (between 256 KiB and 8 MiB), its index 32 KiB, the database the rest. The WAL is
/// checkpointed at a quarter of its share and a transaction holds at most an eighth of it
/// (rows and their index entries), so it stays within its share while readers are short.
pub fn budget(max_bytes: u64) -> (u64, u64) {
    let wal = (max_bytes / 8).clamp(256 * 1024, 8 * 1024 * 1024);
    (max_bytes.saturating_sub(wal + SHM_BYTES) / PAGE_SIZE, wal)
}

/// The WAL index file beside the database.
const SHM_BYTES: u64 = 32 * 1024;

/// Keeps at most `max` rows of `table`, removing the oldest by `time`; returns how many went.
fn prune_rows(conn: &Connection, table: &str, time: &str, max: u64) -> Result<u64, Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY {time}, id
         LIMIT max(0, (SELECT count(*) FROM {table}) - ?1))"
    );
    Ok(conn.execute(&sql, [max as i64])? as u64)
}

fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// A read-only view of the store, safe beside the running writer.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens the store in `dir` read-only; it must exist and have the current schema.
    pub fn open(dir: &Path) -> Result<Reader, Error> {
        let path = dir.join(FILE_NAME);
        let fail = |why: String| Error::Open { path: path.display().to_string(), why };
        if !path.exists() {
            return Err(fail("it does not exist (is the operator running with this --data-dir?)".into()));
        }
        let conn =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let version = schema::version(&conn)?;
        if version > schema::CURRENT {
            return Err(Error::NewerSchema { found: version, known: schema::CURRENT });
        }
        if version < schema::CURRENT {
            return Err(fail(format!("its schema is version {version}; the operator migrates it when it starts")));
        }
        Ok(Reader { conn })
    }

    /// Events matching `filter`, newest (by last occurrence) first.
    pub fn events(&self, filter: &Filter) -> Result<Vec<EventRow>, Error> {
        records::list_events(&self.conn, filter)
    }

    /// One event by its id.
    pub fn event(&self, id: i64) -> Result<EventRow, Error> {
        records::get_event(&self.conn, id)?.ok_or(Error::NotFound { what: "event", id: id.to_string() })
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: u32) -> Result<Vec<RunRow>, Error> {
        records::list_runs(&self.conn, limit)
    }

    /// One run by its id.
    pub fn run(&self, id: i64) -> Result<RunRow, Error> {
        records::get_run(&self.conn, id)?.ok_or(Error::NotFound { what: "assessment run", id: id.to_string() })
    }

    /// The status JSON the operator last published, with when.
    pub fn status(&self) -> Result<Option<(String, i64)>, Error> {
        Ok(self
            .conn
            .query_row("SELECT json, updated_at FROM status WHERE name = 'status'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Every stored collection, newest first: collector, when (ms), and its data's size.
    pub fn collections(&self) -> Result<Vec<(String, i64, u64)>, Error> {
        list_collections(&self.conn)
    }

    /// The newest collection of each collector that has one, with its data.
    pub fn latest_collections(&self) -> Result<Vec<CollectionRow>, Error> {
        latest_collections(&self.conn)
    }

    /// The newest AI Conformance self-check.
    pub fn latest_ai_conformance(&self) -> Result<Option<AiRunRow>, Error> {
        ai_conformance::latest(&self.conn)
    }

    /// One AI Conformance self-check by its store id.
    pub fn ai_conformance_run(&self, id: i64) -> Result<AiRunRow, Error> {
        ai_conformance::get(&self.conn, id)?.ok_or(Error::NotFound { what: "AI Conformance run", id: id.to_string() })
    }

    /// The requirements of a self-check (by store id), in the checklist's order.
    pub fn ai_conformance_requirements(&self, run: i64) -> Result<Vec<AiRequirementRow>, Error> {
        ai_conformance::requirements(&self.conn, run)
    }

    /// The findings of an Assessment's latest run that match `filter`.
    pub fn findings(&self, filter: &FindingFilter) -> Result<FindingsPage, Error> {
        findings::list(&self.conn, filter)
    }

    /// Every finding of an Assessment's latest run, namespace by namespace (cluster-scoped
    /// first), each with its remediation, until `each` returns false; returns the run.
    pub fn findings_by_namespace(
        &self,
        assessment: &str,
        each: &mut dyn FnMut(FindingRow, Option<String>) -> bool,
    ) -> Result<HistoryRow, Error> {
        findings::each_by_namespace(&self.conn, assessment, each)
    }

    /// The Assessment's completed runs, newest first (at most `limit`), with their checks.
    pub fn history(&self, assessment: &str, limit: u32) -> Result<Vec<HistoryRow>, Error> {
        findings::history(&self.conn, assessment, limit)
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<u64, Error> {
        Ok(self.conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
    }
}
