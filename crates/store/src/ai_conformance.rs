//! The AI Conformance readiness self-checks the store keeps: one row per run, and each
//! requirement's finding with the evidence it named (`kube9-operator query ai-conformance`).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Value, json};

use crate::Error;
use crate::records::rfc3339;

/// Most runs kept (with their requirements); the oldest go first.
pub const MAX_RUNS: u64 = 60;

/// One self-check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiRunRow {
    /// The store's id; 0 before it is stored.
    pub id: i64,
    /// The operator's id of the run (the status's `runId`).
    pub run_id: String,
    pub checklist_version: Option<String>,
    pub kubernetes_minor: Option<String>,
    /// `success` or `failed`.
    pub outcome: String,
    /// `completed`, `partial` or `failed`.
    pub run_state: String,
    /// `first`, `scheduled`, `requested` or `retry`.
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub error: Option<String>,
    /// The totals as JSON.
    pub totals: String,
    /// The checklists' revision of cncf/k8s-ai-conformance.
    pub source_revision: String,
}

/// One requirement's finding in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiRequirementRow {
    pub requirement: String,
    pub category: String,
    pub level: String,
    pub title: String,
    pub status: String,
    pub rationale: String,
    /// A JSON array of the objects seen, one line each.
    pub evidence: String,
}

/// What the store says about every report.
const NOTICE: &str = "A readiness self-check from what the Kubernetes API shows; not a certification.";

const RUN_COLUMNS: &str = "id, run_id, checklist_version, kubernetes_minor, outcome, run_state, trigger, \
     started_at, finished_at, error, totals, source_revision";

impl AiRunRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<AiRunRow> {
        Ok(AiRunRow {
            id: row.get(0)?,
            run_id: row.get(1)?,
            checklist_version: row.get(2)?,
            kubernetes_minor: row.get(3)?,
            outcome: row.get(4)?,
            run_state: row.get(5)?,
            trigger: row.get(6)?,
            started_at: row.get(7)?,
            finished_at: row.get(8)?,
            error: row.get(9)?,
            totals: row.get(10)?,
            source_revision: row.get(11)?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "runId": self.run_id,
            "checklistVersion": self.checklist_version,
            "kubernetesMinor": self.kubernetes_minor,
            "sourceRevision": self.source_revision,
            "outcome": self.outcome,
            "runState": self.run_state,
            "trigger": self.trigger,
            "startedAt": rfc3339(self.started_at),
            "finishedAt": rfc3339(self.finished_at),
            "durationMs": self.finished_at - self.started_at,
            "error": self.error,
            "totals": serde_json::from_str::<Value>(&self.totals).unwrap_or(Value::Null),
            "notice": NOTICE,
        })
    }
}

impl AiRequirementRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<AiRequirementRow> {
        Ok(AiRequirementRow {
            requirement: row.get(0)?,
            category: row.get(1)?,
            level: row.get(2)?,
            title: row.get(3)?,
            status: row.get(4)?,
            rationale: row.get(5)?,
            evidence: row.get(6)?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.requirement,
            "category": self.category,
            "level": self.level,
            "title": self.title,
            "status": self.status,
            "rationale": self.rationale,
            "evidence": serde_json::from_str::<Value>(&self.evidence).unwrap_or(Value::Array(vec![])),
        })
    }

    /// About the bytes it adds to a transaction.
    pub(crate) fn size(&self) -> usize {
        self.requirement.len() * 2 + self.title.len() + self.rationale.len() + self.evidence.len() + 64
    }
}

/// Stores a run and its requirements, and keeps at most [`MAX_RUNS`].
pub(crate) fn insert(tx: &Transaction<'_>, run: &AiRunRow, rows: &[AiRequirementRow]) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO ai_conformance_runs (run_id, checklist_version, kubernetes_minor, outcome, run_state, trigger,
            started_at, finished_at, error, totals, source_revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            run.run_id,
            run.checklist_version,
            run.kubernetes_minor,
            run.outcome,
            run.run_state,
            run.trigger,
            run.started_at,
            run.finished_at,
            run.error,
            run.totals,
            run.source_revision
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut statement = tx.prepare_cached(
        "INSERT OR REPLACE INTO ai_conformance_requirements
            (run, requirement, category, level, title, status, rationale, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for r in rows {
        statement.execute(params![
            id,
            r.requirement,
            r.category,
            r.level,
            r.title,
            r.status,
            r.rationale,
            r.evidence
        ])?;
    }
    tx.execute(
        "DELETE FROM ai_conformance_runs WHERE id IN (SELECT id FROM ai_conformance_runs ORDER BY finished_at, id
         LIMIT max(0, (SELECT count(*) FROM ai_conformance_runs) - ?1))",
        [MAX_RUNS as i64],
    )?;
    tx.execute("DELETE FROM ai_conformance_requirements WHERE run NOT IN (SELECT id FROM ai_conformance_runs)", [])?;
    Ok(())
}

/// The newest run.
pub(crate) fn latest(conn: &Connection) -> Result<Option<AiRunRow>, Error> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM ai_conformance_runs ORDER BY finished_at DESC, id DESC LIMIT 1");
    Ok(conn.query_row(&sql, [], AiRunRow::from_row).optional()?)
}

/// One run by the store's id.
pub(crate) fn get(conn: &Connection, id: i64) -> Result<Option<AiRunRow>, Error> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM ai_conformance_runs WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], AiRunRow::from_row).optional()?)
}

/// The requirements of a run, in the order they were stored (the checklist's).
pub(crate) fn requirements(conn: &Connection, run: i64) -> Result<Vec<AiRequirementRow>, Error> {
    let mut statement = conn.prepare(
        "SELECT requirement, category, level, title, status, rationale, evidence
         FROM ai_conformance_requirements WHERE run = ?1 ORDER BY rowid",
    )?;
    let rows = statement.query_map([run], AiRequirementRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
