//! Every finding of each Assessment's latest run, and each completed run's outcomes per check
//! (`kube9-operator query findings`, `query assessments history`).
//!
//! A run is written in steps, so its findings never have to be held at once: [`begin`], then
//! [`append`] once per batch, then [`finish`] with the run's summary. The previous run's
//! findings stay until a run finishes with all of its findings stored; then they are marked
//! stale and removed a step at a time ([`remove_stale`]). A run that fails is [`abort`]ed.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Value, json};

use crate::Error;
use crate::records::rfc3339;

/// The severities, most severe first (a finding's rank is its index).
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// The pillars, in kebab-case as check ids spell them.
pub const PILLARS: [&str; 6] = [
    "security",
    "reliability",
    "performance-efficiency",
    "cost-optimization",
    "operational-excellence",
    "sustainability",
];

/// Runs a history query shows when no limit is given: as many as the Assessment status keeps.
pub const DEFAULT_HISTORY: u32 = 30;

/// Unfinished runs older than this are a process that stopped mid-run: removed.
const UNFINISHED_MAX_AGE_MS: i64 = 24 * 3600 * 1000;

/// One finding of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingRow {
    pub check_id: String,
    /// Kebab-case, one of [`PILLARS`].
    pub pillar: String,
    /// One of [`SEVERITIES`].
    pub severity: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub container: Option<String>,
    pub message: String,
    pub exempted: bool,
}

impl FindingRow {
    pub(crate) fn size(&self) -> usize {
        self.check_id.len()
            + self.api_version.len()
            + self.kind.len()
            + self.namespace.as_ref().map_or(0, String::len)
            + self.name.len()
            + self.container.as_ref().map_or(0, String::len)
            + self.message.len()
            + 48
    }

    /// The finding as the Assessment status shows one (the same keys), with its remediation.
    pub fn to_json(&self, remediation: Option<&str>) -> Value {
        let mut object = json!({"apiVersion": self.api_version, "kind": self.kind, "name": self.name});
        if let Some(ns) = &self.namespace {
            object["namespace"] = json!(ns);
        }
        if let Some(c) = &self.container {
            object["container"] = json!(c);
        }
        let mut finding = json!({
            "checkId": self.check_id,
            "pillar": self.pillar,
            "severity": self.severity,
            "object": object,
            "message": self.message,
            "remediation": remediation,
        });
        if self.exempted {
            finding["exempted"] = json!(true);
        }
        finding
    }
}

/// One check's outcome in a completed run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRow {
    pub check_id: String,
    pub title: String,
    pub pillar: String,
    pub severity: String,
    /// passing, failing, warning or skipped.
    pub state: String,
    pub passed: u32,
    pub failed: u32,
    pub exempted: u32,
    pub remediation: String,
}

impl CheckRow {
    pub fn to_json(&self) -> Value {
        json!({
            "checkId": self.check_id,
            "pillar": self.pillar,
            "severity": self.severity,
            "state": self.state,
            "passed": self.passed,
            "failed": self.failed,
            "exempted": self.exempted,
        })
    }
}

/// What a finished run adds to the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: String,
    pub assessment: String,
    pub started_at: i64,
    pub completed_at: i64,
    pub score: u8,
    /// The run's totals, by outcome, severity and pillar (JSON: `totals`, `bySeverity`, `pillars`).
    pub summary: String,
    /// How many findings the run appended (all of them are stored only if the store has them all).
    pub findings: u64,
    pub checks: Vec<CheckRow>,
}

/// A completed run as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: i64,
    pub assessment: String,
    pub run_id: String,
    pub started_at: i64,
    pub completed_at: i64,
    pub score: Option<u8>,
    pub summary: String,
    pub findings: u64,
    /// Whether this run's findings are the ones stored.
    pub findings_kept: bool,
    /// Its checks' outcomes (empty unless asked for).
    pub checks: Vec<CheckRow>,
}

impl HistoryRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<HistoryRow> {
        Ok(HistoryRow {
            id: row.get(0)?,
            assessment: row.get(1)?,
            run_id: row.get(2)?,
            started_at: row.get(3)?,
            completed_at: row.get(4)?,
            score: row.get(5)?,
            summary: row.get(6)?,
            findings: row.get::<_, i64>(7)? as u64,
            findings_kept: row.get::<_, String>(8)? == "kept",
            checks: Vec::new(),
        })
    }

    /// The run with its totals (and its checks, when read).
    pub fn to_json(&self) -> Value {
        let summary: Value = serde_json::from_str(&self.summary).unwrap_or_else(|_| json!({}));
        let mut run = json!({
            "runId": self.run_id,
            "startedAt": rfc3339(self.started_at),
            "completedAt": rfc3339(self.completed_at),
            "score": self.score,
            "findings": self.findings,
            "totals": summary.get("totals").cloned().unwrap_or(Value::Null),
            "bySeverity": summary.get("bySeverity").cloned().unwrap_or(Value::Null),
            "pillars": summary.get("pillars").cloned().unwrap_or_else(|| json!([])),
        });
        if !self.checks.is_empty() {
            run["checks"] = Value::Array(self.checks.iter().map(CheckRow::to_json).collect());
        }
        run
    }
}

/// Which findings to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub assessment: String,
    pub check: Option<String>,
    pub pillar: Option<String>,
    pub namespace: Option<String>,
    pub severity: Option<String>,
    /// Only findings whose message, object name or namespace contains this text (ASCII letters
    /// in any case).
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// A page of findings: the run they come from, how many match, and the page.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingsPage {
    pub run: HistoryRow,
    /// Findings matching the filter, over every page.
    pub matching: u64,
    /// With each finding's remediation.
    pub findings: Vec<(FindingRow, Option<String>)>,
}

fn rank(severity: &str) -> i64 {
    SEVERITIES.iter().position(|s| *s == severity).unwrap_or(SEVERITIES.len()) as i64
}

/// Starts a run: its row, findings state `writing`. Leftovers of an earlier unfinished run of
/// the same Assessment (a process that stopped mid-run) become stale.
pub(crate) fn begin(tx: &Transaction<'_>, assessment: &str, run_id: &str, started_at: i64) -> Result<(), Error> {
    tx.execute(
        "UPDATE assessment_history SET findings_state = 'stale'
         WHERE assessment = ?1 AND completed_at IS NULL AND run_id != ?2",
        params![assessment, run_id],
    )?;
    tx.execute(
        "INSERT INTO assessment_history (assessment, run_id, started_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(run_id) DO NOTHING",
        params![assessment, run_id, started_at],
    )?;
    Ok(())
}

fn writing(tx: &Transaction<'_>, run_id: &str) -> Result<Option<i64>, Error> {
    Ok(tx
        .query_row(
            "SELECT id FROM assessment_history WHERE run_id = ?1 AND findings_state = 'writing'",
            [run_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Adds a batch of a run's findings; a batch for a run not being written (its store replaced
/// meanwhile, or never begun) is dropped: the run will be found incomplete when it finishes.
pub(crate) fn append(tx: &Transaction<'_>, run_id: &str, findings: &[FindingRow]) -> Result<(), Error> {
    let Some(run) = writing(tx, run_id)? else { return Ok(()) };
    let next: i64 =
        tx.query_row("SELECT coalesce(max(seq), -1) + 1 FROM findings WHERE run = ?1", [run], |r| r.get(0))?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO findings (run, seq, check_id, pillar, severity, rank, api_version, kind, namespace, name,
            container, message, exempted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for (i, f) in findings.iter().enumerate() {
        insert.execute(params![
            run,
            next + i as i64,
            f.check_id,
            f.pillar,
            f.severity,
            rank(&f.severity),
            f.api_version,
            f.kind,
            f.namespace,
            f.name,
            f.container,
            f.message,
            f.exempted,
        ])?;
    }
    Ok(())
}

/// Completes a run: its summary and check outcomes join the history. When the store holds
/// every finding it appended, they become the Assessment's findings and the previous ones
/// stale; otherwise its partial findings are stale and the previous ones stay.
pub(crate) fn finish(tx: &Transaction<'_>, run: &RunSummary) -> Result<(), Error> {
    let id = match writing(tx, &run.run_id)? {
        Some(id) => id,
        None => {
            // Never begun in this store (it was replaced mid-run): the history still gets it.
            tx.execute(
                "INSERT INTO assessment_history (assessment, run_id, started_at, findings_state)
                 VALUES (?1, ?2, ?3, 'none') ON CONFLICT(run_id) DO NOTHING",
                params![run.assessment, run.run_id, run.started_at],
            )?;
            tx.query_row("SELECT id FROM assessment_history WHERE run_id = ?1", [&run.run_id], |r| r.get(0))?
        }
    };
    let stored: i64 = tx.query_row("SELECT count(*) FROM findings WHERE run = ?1", [id], |r| r.get(0))?;
    let state: Option<String> =
        tx.query_row("SELECT findings_state FROM assessment_history WHERE id = ?1", [id], |r| r.get(0))?;
    let complete = state.as_deref() == Some("writing") && stored as u64 == run.findings;
    tx.execute(
        "UPDATE assessment_history SET completed_at = ?2, score = ?3, summary = ?4, findings = ?5 WHERE id = ?1",
        params![id, run.completed_at, run.score, run.summary, run.findings as i64],
    )?;
    if complete {
        tx.execute(
            "UPDATE assessment_history SET findings_state = 'stale'
             WHERE assessment = ?1 AND id != ?2 AND findings_state IN ('kept', 'writing')",
            params![run.assessment, id],
        )?;
        tx.execute("UPDATE assessment_history SET findings_state = 'kept' WHERE id = ?1", [id])?;
    } else if state.as_deref() == Some("writing") {
        tx.execute("UPDATE assessment_history SET findings_state = 'stale' WHERE id = ?1", [id])?;
    }
    let mut check = tx.prepare_cached(
        "INSERT OR REPLACE INTO assessment_checks (run, check_id, pillar, severity, state, passed, failed, exempted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut text = tx.prepare_cached(
        "INSERT INTO check_texts (check_id, title, remediation) VALUES (?1, ?2, ?3)
         ON CONFLICT(check_id) DO UPDATE SET title = excluded.title, remediation = excluded.remediation
         WHERE title != excluded.title OR remediation != excluded.remediation",
    )?;
    for c in &run.checks {
        check.execute(params![id, c.check_id, c.pillar, c.severity, c.state, c.passed, c.failed, c.exempted])?;
        text.execute(params![c.check_id, c.title, c.remediation])?;
    }
    Ok(())
}

/// Drops a run that will not finish (it failed): its findings are stale, the previous stay.
pub(crate) fn abort(tx: &Transaction<'_>, run_id: &str) -> Result<(), Error> {
    tx.execute(
        "UPDATE assessment_history SET findings_state = 'stale' WHERE run_id = ?1 AND findings_state = 'writing'",
        [run_id],
    )?;
    Ok(())
}

/// The Assessment is gone: its findings become stale (its runs stay in the history).
pub(crate) fn forget(tx: &Transaction<'_>, assessment: &str) -> Result<(), Error> {
    tx.execute(
        "UPDATE assessment_history SET findings_state = 'stale'
         WHERE assessment = ?1 AND findings_state IN ('kept', 'writing')",
        [assessment],
    )?;
    Ok(())
}

/// Removes up to `most` findings of stale runs (replaced, aborted, or never finished); returns
/// how many went. A run whose findings are all gone is `none`, or deleted if it never finished.
pub(crate) fn remove_stale(conn: &Connection, most: u64) -> Result<u64, Error> {
    let stale: Option<i64> = conn
        .query_row("SELECT id FROM assessment_history WHERE findings_state = 'stale' ORDER BY id LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(run) = stale else { return Ok(0) };
    let removed = conn.execute(
        "DELETE FROM findings WHERE run = ?1 AND seq IN (SELECT seq FROM findings WHERE run = ?1 ORDER BY seq LIMIT ?2)",
        params![run, most as i64],
    )? as u64;
    if removed < most {
        conn.execute(
            "UPDATE assessment_history SET findings_state = 'none' WHERE id = ?1 AND completed_at IS NOT NULL",
            [run],
        )?;
        conn.execute("DELETE FROM assessment_history WHERE id = ?1 AND completed_at IS NULL", [run])?;
    }
    Ok(removed)
}

/// Whether stale findings remain to remove.
pub(crate) fn has_stale(conn: &Connection) -> Result<bool, Error> {
    Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM assessment_history WHERE findings_state = 'stale')", [], |r| {
        r.get(0)
    })?)
}

/// Retention: completed runs older than `cutoff` (ms) and the oldest beyond `max_runs` leave
/// the history with their check outcomes. A run whose findings are kept is never removed by
/// the row cap; past `cutoff` its findings become stale first (the run goes at the next pass).
/// Runs unfinished for a day become stale. Returns how many runs went.
pub(crate) fn prune(conn: &Connection, now_ms: i64, cutoff: i64, max_runs: u64) -> Result<u64, Error> {
    conn.execute(
        "UPDATE assessment_history SET findings_state = 'stale'
         WHERE completed_at IS NULL AND findings_state = 'writing' AND started_at < ?1",
        [now_ms - UNFINISHED_MAX_AGE_MS],
    )?;
    conn.execute(
        "UPDATE assessment_history SET findings_state = 'stale' WHERE findings_state = 'kept' AND completed_at < ?1",
        [cutoff],
    )?;
    let removable = "completed_at IS NOT NULL AND findings_state = 'none'";
    let mut removed = conn
        .execute(&format!("DELETE FROM assessment_history WHERE {removable} AND completed_at < ?1"), [cutoff])?
        as u64;
    removed += conn.execute(
        &format!(
            "DELETE FROM assessment_history WHERE id IN (SELECT id FROM assessment_history WHERE {removable}
             ORDER BY completed_at, id LIMIT max(0, (SELECT count(*) FROM assessment_history
             WHERE completed_at IS NOT NULL) - ?1))"
        ),
        [max_runs as i64],
    )? as u64;
    if removed > 0 {
        conn.execute("DELETE FROM assessment_checks WHERE run NOT IN (SELECT id FROM assessment_history)", [])?;
    }
    Ok(removed)
}

const HISTORY_COLUMNS: &str =
    "id, assessment, run_id, started_at, completed_at, score, summary, findings, findings_state";

/// The Assessment's run whose findings are stored.
fn kept(conn: &Connection, assessment: &str) -> Result<Option<HistoryRow>, Error> {
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM assessment_history WHERE assessment = ?1 AND findings_state = 'kept'
         ORDER BY completed_at DESC LIMIT 1"
    );
    Ok(conn.query_row(&sql, [assessment], HistoryRow::from_row).optional()?)
}

/// The Assessments the history knows, sorted.
pub(crate) fn assessments(conn: &Connection) -> Result<Vec<String>, Error> {
    let mut statement = conn.prepare(
        "SELECT DISTINCT assessment FROM assessment_history WHERE completed_at IS NOT NULL ORDER BY assessment",
    )?;
    let rows = statement.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn unknown(conn: &Connection, assessment: &str) -> Result<Error, Error> {
    let known = assessments(conn)?;
    let known = if known.is_empty() { "none yet".to_owned() } else { known.join(", ") };
    Ok(Error::NotFound {
        what: "Assessment in the store",
        id: format!("{assessment} (it has not completed a run since the operator kept findings; known: {known})"),
    })
}

/// The findings of the Assessment's latest run that match, most severe first (exempted last).
pub(crate) fn list(conn: &Connection, filter: &FindingFilter) -> Result<FindingsPage, Error> {
    let Some(run) = kept(conn, &filter.assessment)? else {
        return Err(unknown(conn, &filter.assessment)?);
    };
    if let Some(check) = &filter.check {
        let ran: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM assessment_checks WHERE run = ?1 AND check_id = ?2)",
            params![run.id, check],
            |r| r.get(0),
        )?;
        if !ran {
            return Err(Error::NotFound {
                what: "check in the run",
                id: format!("{check} (Assessment {}'s run {} did not run it)", filter.assessment, run.run_id),
            });
        }
    }
    let mut clauses = vec!["f.run = ?1".to_owned()];
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(run.id)];
    for (column, value) in [
        ("f.check_id", &filter.check),
        ("f.pillar", &filter.pillar),
        ("f.namespace", &filter.namespace),
        ("f.severity", &filter.severity),
    ] {
        if let Some(value) = value {
            values.push(Box::new(value.clone()));
            clauses.push(format!("{column} = ?{}", values.len()));
        }
    }
    if let Some(text) = filter.text.as_ref().filter(|t| !t.is_empty()) {
        values.push(Box::new(text.to_ascii_lowercase()));
        clauses.push(format!(
            "instr(lower(f.message || ' ' || f.name || ' ' || coalesce(f.namespace, '')), ?{}) > 0",
            values.len()
        ));
    }
    let filter_sql = clauses.join(" AND ");
    let matching: i64 = conn.query_row(
        &format!("SELECT count(*) FROM findings f WHERE {filter_sql}"),
        rusqlite::params_from_iter(values.iter().map(|v| v.as_ref())),
        |r| r.get(0),
    )?;
    values.push(Box::new(filter.limit as i64));
    values.push(Box::new(filter.offset as i64));
    let sql = format!(
        "{WITH_REMEDIATION}
         WHERE {filter_sql}
         ORDER BY f.exempted, f.rank, f.check_id, f.namespace, f.name, f.seq
         LIMIT ?{} OFFSET ?{}",
        values.len() - 1,
        values.len()
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values.iter().map(|v| v.as_ref())), with_remediation)?;
    let findings = rows.collect::<Result<_, _>>()?;
    Ok(FindingsPage { run, matching: matching as u64, findings })
}

/// The columns [`with_remediation`] reads: a finding and its check's remediation.
const WITH_REMEDIATION: &str =
    "SELECT f.check_id, f.pillar, f.severity, f.api_version, f.kind, f.namespace, f.name, f.container,
            f.message, f.exempted, t.remediation
     FROM findings f LEFT JOIN check_texts t ON t.check_id = f.check_id";

/// A row of a [`WITH_REMEDIATION`] query.
fn with_remediation(r: &rusqlite::Row<'_>) -> rusqlite::Result<(FindingRow, Option<String>)> {
    Ok((
        FindingRow {
            check_id: r.get(0)?,
            pillar: r.get(1)?,
            severity: r.get(2)?,
            api_version: r.get(3)?,
            kind: r.get(4)?,
            namespace: r.get(5)?,
            name: r.get(6)?,
            container: r.get(7)?,
            message: r.get(8)?,
            exempted: r.get(9)?,
        },
        r.get(10)?,
    ))
}

/// Every finding of the Assessment's latest kept run, namespace by namespace (the
/// cluster-scoped ones first), in the order they were made, each with its remediation, handed
/// to `each` until it returns false. One sorted pass: nothing is held but the row in hand.
pub(crate) fn each_by_namespace(
    conn: &Connection,
    assessment: &str,
    each: &mut dyn FnMut(FindingRow, Option<String>) -> bool,
) -> Result<HistoryRow, Error> {
    let Some(run) = kept(conn, assessment)? else {
        return Err(unknown(conn, assessment)?);
    };
    let mut statement = conn.prepare(&format!("{WITH_REMEDIATION} WHERE f.run = ?1 ORDER BY f.namespace, f.seq"))?;
    let mut rows = statement.query([run.id])?;
    while let Some(r) = rows.next()? {
        let (row, remediation) = with_remediation(r)?;
        if !each(row, remediation) {
            break;
        }
    }
    Ok(run)
}

/// The Assessment's completed runs, newest first, each with its checks' outcomes.
pub(crate) fn history(conn: &Connection, assessment: &str, limit: u32) -> Result<Vec<HistoryRow>, Error> {
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM assessment_history WHERE assessment = ?1 AND completed_at IS NOT NULL
         ORDER BY completed_at DESC, id DESC LIMIT ?2"
    );
    let mut statement = conn.prepare(&sql)?;
    let mut runs: Vec<HistoryRow> =
        statement.query_map(params![assessment, limit as i64], HistoryRow::from_row)?.collect::<Result<_, _>>()?;
    if runs.is_empty() {
        return Err(unknown(conn, assessment)?);
    }
    let mut checks = conn.prepare_cached(
        "SELECT c.check_id, coalesce(t.title, ''), c.pillar, c.severity, c.state, c.passed, c.failed, c.exempted,
                coalesce(t.remediation, '')
         FROM assessment_checks c LEFT JOIN check_texts t ON t.check_id = c.check_id
         WHERE c.run = ?1 ORDER BY c.check_id",
    )?;
    for run in &mut runs {
        run.checks = checks
            .query_map([run.id], |r| {
                Ok(CheckRow {
                    check_id: r.get(0)?,
                    title: r.get(1)?,
                    pillar: r.get(2)?,
                    severity: r.get(3)?,
                    state: r.get(4)?,
                    passed: r.get(5)?,
                    failed: r.get(6)?,
                    exempted: r.get(7)?,
                    remediation: r.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(runs)
}
