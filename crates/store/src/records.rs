//! The rows the store keeps and how `query` shows them (CLIENT-CONTRACT.md: `query events list`).

use rusqlite::{Connection, OptionalExtension, Row, ToSql};
use serde_json::{Value, json};

use crate::Error;

/// What an event is about (the contract's `event_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventType {
    /// A Kubernetes Event from the cluster.
    Cluster,
    /// The operator itself (start, store).
    Operator,
    /// An insight received from kube9-server, or an acknowledgement synced.
    Insight,
    /// An Assessment run.
    Assessment,
    /// A change of the operator's health, tier or registration.
    Health,
    /// Anything else the operator reports.
    System,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Cluster => "cluster",
            EventType::Operator => "operator",
            EventType::Insight => "insight",
            EventType::Assessment => "assessment",
            EventType::Health => "health",
            EventType::System => "system",
        }
    }
}

/// How bad an event is (the contract's `severity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// One event: a Kubernetes Event (keyed by its uid) or one of the operator's own.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// The store's id (`query events get <id>`); 0 before it is stored.
    pub id: i64,
    pub uid: String,
    pub event_type: String,
    pub severity: String,
    pub title: String,
    pub description: String,
    pub object_kind: Option<String>,
    pub object_namespace: Option<String>,
    pub object_name: Option<String>,
    pub reason: Option<String>,
    pub count: i64,
    /// Unix milliseconds.
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Inserts a new event, or updates the one with the same uid in place: the count and the
/// last occurrence only rise, the text follows the latest update.
pub(crate) const UPSERT_EVENT: &str = "INSERT INTO events (uid, event_type, severity, title, description,
    object_kind, object_namespace, object_name, reason, count, first_seen, last_seen)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
  ON CONFLICT(uid) DO UPDATE SET
    severity = excluded.severity, title = excluded.title, description = excluded.description,
    reason = excluded.reason,
    count = max(events.count, excluded.count),
    first_seen = min(events.first_seen, excluded.first_seen),
    last_seen = max(events.last_seen, excluded.last_seen)";

const EVENT_COLUMNS: &str = "id, uid, event_type, severity, title, description, object_kind, object_namespace,
    object_name, reason, count, first_seen, last_seen";

impl EventRow {
    pub(crate) fn params(&self) -> [&dyn ToSql; 12] {
        [
            &self.uid,
            &self.event_type,
            &self.severity,
            &self.title,
            &self.description,
            &self.object_kind,
            &self.object_namespace,
            &self.object_name,
            &self.reason,
            &self.count,
            &self.first_seen,
            &self.last_seen,
        ]
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
        Ok(EventRow {
            id: row.get(0)?,
            uid: row.get(1)?,
            event_type: row.get(2)?,
            severity: row.get(3)?,
            title: row.get(4)?,
            description: row.get(5)?,
            object_kind: row.get(6)?,
            object_namespace: row.get(7)?,
            object_name: row.get(8)?,
            reason: row.get(9)?,
            count: row.get(10)?,
            first_seen: row.get(11)?,
            last_seen: row.get(12)?,
        })
    }

    /// The contract's JSON. `created_at` is the latest occurrence (what the list is sorted by);
    /// the first is in `metadata.first_timestamp`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "event_type": self.event_type,
            "severity": self.severity,
            "title": self.title,
            "description": self.description,
            "object_kind": self.object_kind,
            "object_namespace": self.object_namespace,
            "object_name": self.object_name,
            "created_at": rfc3339(self.last_seen),
            "metadata": {
                "reason": self.reason,
                "count": self.count,
                "first_timestamp": rfc3339(self.first_seen),
                "last_timestamp": rfc3339(self.last_seen),
            },
        })
    }
}

/// One Assessment run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    /// The store's id; 0 before it is stored.
    pub id: i64,
    pub assessment: String,
    /// `completed` or `failed`.
    pub outcome: String,
    pub started_at: Option<i64>,
    pub finished_at: i64,
    pub message: String,
    /// The run's summary as JSON (totals by status and pillar).
    pub summary: String,
}

pub(crate) const INSERT_RUN: &str =
    "INSERT INTO assessment_runs (assessment, outcome, started_at, finished_at, message, summary)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

impl RunRow {
    pub(crate) fn params(&self) -> [&dyn ToSql; 6] {
        [&self.assessment, &self.outcome, &self.started_at, &self.finished_at, &self.message, &self.summary]
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: row.get(0)?,
            assessment: row.get(1)?,
            outcome: row.get(2)?,
            started_at: row.get(3)?,
            finished_at: row.get(4)?,
            message: row.get(5)?,
            summary: row.get(6)?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "assessment": self.assessment,
            "outcome": self.outcome,
            "started_at": self.started_at.map(rfc3339),
            "finished_at": rfc3339(self.finished_at),
            "message": self.message,
            "summary": serde_json::from_str::<Value>(&self.summary).unwrap_or(Value::Null),
        })
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// Which events `query events list` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub object_namespace: Option<String>,
    pub object_kind: Option<String>,
    pub event_type: Option<EventType>,
    /// Unix milliseconds: events that last happened at or after it.
    pub since: Option<i64>,
    pub limit: u32,
}

pub(crate) fn list_events(conn: &Connection, filter: &Filter) -> Result<Vec<EventRow>, Error> {
    let mut clauses = Vec::new();
    let mut values: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(ns) = &filter.object_namespace {
        values.push(Box::new(ns.clone()));
        clauses.push(format!("object_namespace = ?{}", values.len()));
    }
    if let Some(kind) = &filter.object_kind {
        values.push(Box::new(kind.clone()));
        clauses.push(format!("object_kind = ?{}", values.len()));
    }
    if let Some(t) = filter.event_type {
        values.push(Box::new(t.as_str()));
        clauses.push(format!("event_type = ?{}", values.len()));
    }
    if let Some(since) = filter.since {
        values.push(Box::new(since));
        clauses.push(format!("last_seen >= ?{}", values.len()));
    }
    let filter_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    values.push(Box::new(filter.limit as i64));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events {filter_sql} ORDER BY last_seen DESC, id DESC LIMIT ?{}",
        values.len()
    );
    let mut statement = conn.prepare(&sql)?;
    let rows =
        statement.query_map(rusqlite::params_from_iter(values.iter().map(|v| v.as_ref())), EventRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn get_event(conn: &Connection, id: i64) -> Result<Option<EventRow>, Error> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], EventRow::from_row).optional()?)
}

const RUN_COLUMNS: &str = "id, assessment, outcome, started_at, finished_at, message, summary";

pub(crate) fn list_runs(conn: &Connection, limit: u32) -> Result<Vec<RunRow>, Error> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM assessment_runs ORDER BY finished_at DESC, id DESC LIMIT ?1");
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map([limit as i64], RunRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn get_run(conn: &Connection, id: i64) -> Result<Option<RunRow>, Error> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM assessment_runs WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], RunRow::from_row).optional()?)
}
