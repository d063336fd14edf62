//! The schema and its migrations: `PRAGMA user_version` is the schema version, and each step
//! in [`MIGRATIONS`] takes the database from its index to the next version, in one
//! transaction. A database newer than this binary is refused rather than guessed at.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::Error;

/// The steps, in order: `MIGRATIONS[n]` takes version `n` to `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: event history, one row per event (a Kubernetes Event's uid, or one of the operator's own).
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        event_type TEXT NOT NULL,
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        object_kind TEXT,
        object_namespace TEXT,
        object_name TEXT,
        reason TEXT,
        count INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
     );
     CREATE INDEX events_by_time ON events (last_seen);
     CREATE INDEX events_by_namespace ON events (object_namespace, last_seen);",
    // 2: queries by kind; Assessment runs; the status the operator last published.
    "CREATE INDEX events_by_kind ON events (object_kind, last_seen);
     CREATE TABLE assessment_runs (
        id INTEGER PRIMARY KEY,
        assessment TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at INTEGER,
        finished_at INTEGER NOT NULL,
        message TEXT NOT NULL,
        summary TEXT NOT NULL
     );
     CREATE INDEX runs_by_time ON assessment_runs (finished_at);
     CREATE TABLE status (
        name TEXT PRIMARY KEY,
        json TEXT NOT NULL,
        updated_at INTEGER NOT NULL
     );",
    // 3: the collectors' results (data and the words an upload built from it must not hold).
    "CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        collector TEXT NOT NULL,
        collected_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        words TEXT NOT NULL
     );
     CREATE INDEX collections_by_collector ON collections (collector, collected_at);",
    // 4: AI Conformance readiness self-checks, and each requirement's finding with its evidence.
    "CREATE TABLE ai_conformance_runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        checklist_version TEXT,
        kubernetes_minor TEXT,
        outcome TEXT NOT NULL,
        run_state TEXT NOT NULL,
        trigger TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        error TEXT,
        totals TEXT NOT NULL,
        source_revision TEXT NOT NULL
     );
     CREATE INDEX ai_conformance_runs_by_time ON ai_conformance_runs (finished_at);
     CREATE TABLE ai_conformance_requirements (
        run INTEGER NOT NULL,
        requirement TEXT NOT NULL,
        category TEXT NOT NULL,
        level TEXT NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        rationale TEXT NOT NULL,
        evidence TEXT NOT NULL,
        PRIMARY KEY (run, requirement)
     );",
    // 5: every finding of each Assessment's latest run, and each completed run's outcomes per
    // check (the trend). A run's row exists from its first batch of findings; `completed_at`
    // is set when it finishes. `findings_state`: writing, kept (the Assessment's latest
    // findings), stale (replaced: its findings are being removed), none.
    "CREATE TABLE assessment_history (
        id INTEGER PRIMARY KEY,
        assessment TEXT NOT NULL,
        run_id TEXT NOT NULL UNIQUE,
        started_at INTEGER NOT NULL,
        completed_at INTEGER,
        score INTEGER,
        summary TEXT NOT NULL DEFAULT '{}',
        findings INTEGER NOT NULL DEFAULT 0,
        findings_state TEXT NOT NULL DEFAULT 'writing'
     );
     CREATE INDEX history_by_assessment ON assessment_history (assessment, completed_at);
     CREATE INDEX history_by_time ON assessment_history (completed_at);
     CREATE TABLE assessment_checks (
        run INTEGER NOT NULL,
        check_id TEXT NOT NULL,
        pillar TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        exempted INTEGER NOT NULL,
        PRIMARY KEY (run, check_id)
     ) WITHOUT ROWID;
     CREATE TABLE check_texts (
        check_id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        remediation TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE findings (
        run INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        check_id TEXT NOT NULL,
        pillar TEXT NOT NULL,
        severity TEXT NOT NULL,
        rank INTEGER NOT NULL,
        api_version TEXT NOT NULL,
        kind TEXT NOT NULL,
        namespace TEXT,
        name TEXT NOT NULL,
        container TEXT,
        message TEXT NOT NULL,
        exempted INTEGER NOT NULL,
        PRIMARY KEY (run, seq)
     ) WITHOUT ROWID;",
];

/// The version this binary writes and reads.
pub const CURRENT: u32 = MIGRATIONS.len() as u32;

/// The database's schema version.
pub fn version(conn: &Connection) -> Result<u32, Error> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Brings the database to [`CURRENT`], one step per transaction; returns the version it had.
pub fn migrate(conn: &mut Connection) -> Result<u32, Error> {
    migrate_to(conn, CURRENT)
}

/// Brings the database to `target` (tests start from an older version with it). Each step
/// takes the write lock first and reads the version again under it, so two connections
/// opening a new store at once (the event writer and the collections) migrate it once.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<u32, Error> {
    let from = version(conn)?;
    if from > CURRENT {
        return Err(Error::NewerSchema { found: from, known: CURRENT });
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let step = version(&tx)?;
        if step >= target.min(CURRENT) {
            return Ok(from);
        }
        apply(&tx, step)?;
        tx.commit()?;
    }
}

fn apply(tx: &Transaction<'_>, step: u32) -> Result<(), Error> {
    tx.execute_batch(MIGRATIONS[step as usize])?;
    tx.pragma_update(None, "user_version", step + 1)?;
    Ok(())
}
