//! `kube9-operator query …`: the read-only client of the store that the kube9 VS Code
//! extension runs inside the operator's container (CLIENT-CONTRACT.md). Stdout carries exactly
//! one JSON document (or a table with `--format table`); a failure exits non-zero with
//! `{"ok": false, "code", "message"}` on stderr.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::ai_conformance::{AiRequirementRow, AiRunRow};
use crate::findings::{DEFAULT_HISTORY, FindingFilter, HistoryRow, PILLARS, SEVERITIES};
use crate::records::{EventRow, EventType, Filter, RunRow, rfc3339};
use crate::{Error, Reader};

/// Read the operator's store (event history, Assessment runs, status).
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The operator's data directory (the chart sets KUBE9_DATA_DIR in the container).
    #[arg(long, env = "KUBE9_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// The event history: the cluster's Events and the operator's own.
    Events {
        #[command(subcommand)]
        command: Events,
    },
    /// The status JSON the operator last published (its ConfigMap's `status` key).
    Status {
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Recent Assessment runs.
    Assessments {
        #[command(subcommand)]
        command: Assessments,
    },
    /// AI Conformance readiness self-checks (a self-check, not a certification).
    #[command(name = "ai-conformance")]
    AiConformance {
        #[command(subcommand)]
        command: AiConformance,
    },
    /// The collectors' results the store keeps (what the next upload is built from).
    Collections {
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Every finding of an Assessment's latest completed run (the status keeps only the first
    /// 100): failed findings most severe first, then the exempted ones.
    Findings(FindingsArgs),
}

#[derive(ClapArgs, Debug)]
pub struct FindingsArgs {
    /// The Assessment (its name).
    #[arg(long)]
    pub assessment: String,
    /// Only this check's findings (its id, such as security.privileged).
    #[arg(long)]
    pub check: Option<String>,
    /// Only this pillar's findings (security, reliability, performance-efficiency,
    /// cost-optimization, operational-excellence, sustainability).
    #[arg(long, value_parser = parse_pillar)]
    pub pillar: Option<String>,
    /// Only findings about objects in this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only findings of this severity (critical, high, medium, low, info).
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<String>,
    /// Only findings whose message, object name or namespace contains this text (ASCII letters
    /// in any case).
    #[arg(long)]
    pub text: Option<String>,
    /// At most this many findings (1 to 1000000); `matching` says how many there are.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
    /// Skip this many first (to page through them).
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

fn parse_pillar(text: &str) -> Result<String, String> {
    PILLARS
        .contains(&text)
        .then(|| text.to_owned())
        .ok_or_else(|| format!("unknown pillar; one of {}", PILLARS.join(", ")))
}

fn parse_severity(text: &str) -> Result<String, String> {
    SEVERITIES
        .contains(&text)
        .then(|| text.to_owned())
        .ok_or_else(|| format!("unknown severity; one of {}", SEVERITIES.join(", ")))
}

#[derive(Subcommand, Debug)]
pub enum Events {
    /// Events, newest first.
    List(ListArgs),
    /// One event by its id.
    Get {
        id: String,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
}

#[derive(ClapArgs, Debug)]
pub struct ListArgs {
    /// Only events about objects in this namespace.
    #[arg(long)]
    pub object_namespace: Option<String>,
    /// Only events about objects of this kind (Pod, Deployment, Node, ...).
    #[arg(long)]
    pub object_kind: Option<String>,
    /// Only events that last happened at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<i64>,
    /// Only events of this type.
    #[arg(long = "type", value_enum)]
    pub event_type: Option<EventType>,
    /// At most this many events (1 to 1000).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum Assessments {
    /// Recent runs, newest first.
    List {
        /// At most this many runs (1 to 1000).
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// One run by its id.
    Get {
        id: String,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// An Assessment's completed runs, newest first: score and totals by outcome and pillar,
    /// and each check's outcome (the trend, kept for --assessment-history-retention).
    History {
        /// The Assessment (its name).
        name: String,
        /// At most this many runs (1 to 100000).
        #[arg(long, default_value_t = DEFAULT_HISTORY, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// Only this check's outcome in each run (its id, such as security.privileged).
        #[arg(long)]
        check: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum AiConformance {
    /// The newest self-check: its checklist, outcome and totals.
    Latest {
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Each requirement of a self-check (the newest, or `--run`), with the evidence it named.
    Requirements {
        /// A run's id (as `latest` shows it); the newest when absent.
        #[arg(long)]
        run: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
}

/// How the answer is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON document (what the extension reads).
    Json,
    /// A table, for people.
    Table,
}

fn parse_since(text: &str) -> Result<i64, String> {
    let t: jiff::Timestamp =
        text.parse().map_err(|e| format!("not an RFC 3339 time such as 2026-01-02T03:04:05Z ({e})"))?;
    Ok(t.as_millisecond())
}

/// What the process prints and how it exits.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// The error document on stderr.
pub fn failure(code: u8, error_code: &str, message: &str) -> Outcome {
    let doc = json!({"ok": false, "code": error_code, "message": message});
    Outcome { code, stdout: String::new(), stderr: format!("{doc}\n") }
}

/// Runs one query.
pub fn run(args: &Args) -> Outcome {
    let Some(dir) = &args.data_dir else {
        return failure(1, "no-data-dir", "no data directory: set --data-dir or KUBE9_DATA_DIR");
    };
    match Reader::open(dir).and_then(|reader| answer(&reader, &args.what)) {
        Ok(stdout) => Outcome { code: 0, stdout, stderr: String::new() },
        Err(e) => failure(1, e.code(), &e.to_string()),
    }
}

fn answer(reader: &Reader, what: &What) -> Result<String, Error> {
    match what {
        What::Events { command: Events::List(list) } => {
            let filter = Filter {
                object_namespace: list.object_namespace.clone(),
                object_kind: list.object_kind.clone(),
                event_type: list.event_type,
                since: list.since,
                limit: list.limit,
            };
            let events = reader.events(&filter)?;
            Ok(match list.format {
                Format::Json => document(&json!({"events": events.iter().map(EventRow::to_json).collect::<Vec<_>>()})),
                Format::Table => event_table(&events),
            })
        }
        What::Events { command: Events::Get { id, format } } => {
            let event = reader.event(parse_id("event", id)?)?;
            Ok(match format {
                Format::Json => document(&event.to_json()),
                Format::Table => event_table(std::slice::from_ref(&event)),
            })
        }
        What::Status { format } => {
            let Some((json, at)) = reader.status()? else {
                return Err(Error::NotFound { what: "status", id: "the operator has not published one yet".into() });
            };
            let value: Value = serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("status JSON: {e}")))?;
            Ok(match format {
                Format::Json => document(&value),
                Format::Table => {
                    format!("published {}\n{}\n", rfc3339(at), serde_json::to_string_pretty(&value).unwrap_or_default())
                }
            })
        }
        What::Assessments { command: Assessments::List { limit, format } } => {
            let runs = reader.runs(*limit)?;
            Ok(match format {
                Format::Json => document(&json!({"runs": runs.iter().map(RunRow::to_json).collect::<Vec<_>>()})),
                Format::Table => run_table(&runs),
            })
        }
        What::Collections { format } => {
            let rows = reader.collections()?;
            Ok(match format {
                Format::Json => document(&json!({"collections": rows.iter().map(|(collector, at, bytes)| {
                    json!({"collector": collector, "collectedAt": rfc3339(*at), "dataBytes": bytes})
                }).collect::<Vec<_>>()})),
                Format::Table => {
                    let rows: Vec<[String; 3]> =
                        rows.iter().map(|(c, at, bytes)| [c.clone(), rfc3339(*at), bytes.to_string()]).collect();
                    table(["COLLECTOR", "COLLECTED", "BYTES"], &rows)
                }
            })
        }
        What::AiConformance { command } => ai_conformance(reader, command),
        What::Findings(args) => findings(reader, args),
        What::Assessments { command: Assessments::History { name, limit, check, format } } => {
            let mut runs = reader.history(name, *limit)?;
            if let Some(check) = check {
                for run in &mut runs {
                    run.checks.retain(|c| &c.check_id == check);
                }
                if runs.iter().all(|r| r.checks.is_empty()) {
                    return Err(Error::NotFound {
                        what: "check in the history",
                        id: format!("{check} (no run of Assessment {name} ran it)"),
                    });
                }
            }
            Ok(match format {
                Format::Json => document(&json!({
                    "assessment": name,
                    "runs": runs.iter().map(HistoryRow::to_json).collect::<Vec<_>>(),
                })),
                Format::Table => history_table(&runs, check.is_some()),
            })
        }
        What::Assessments { command: Assessments::Get { id, format } } => {
            let run = reader.run(parse_id("assessment run", id)?)?;
            Ok(match format {
                Format::Json => document(&run.to_json()),
                Format::Table => run_table(std::slice::from_ref(&run)),
            })
        }
    }
}

fn ai_conformance(reader: &Reader, command: &AiConformance) -> Result<String, Error> {
    let none = || Error::NotFound { what: "AI Conformance run", id: "the operator has not run one yet".into() };
    match command {
        AiConformance::Latest { format } => {
            let run = reader.latest_ai_conformance()?.ok_or_else(none)?;
            Ok(match format {
                Format::Json => document(&json!({"run": run.to_json()})),
                Format::Table => ai_run_table(&run),
            })
        }
        AiConformance::Requirements { run, format } => {
            let run = match run {
                Some(id) => reader.ai_conformance_run(parse_id("AI Conformance run", id)?)?,
                None => reader.latest_ai_conformance()?.ok_or_else(none)?,
            };
            let rows = reader.ai_conformance_requirements(run.id)?;
            Ok(match format {
                Format::Json => document(&json!({
                    "run": run.to_json(),
                    "requirements": rows.iter().map(AiRequirementRow::to_json).collect::<Vec<_>>(),
                })),
                Format::Table => {
                    let cells: Vec<[String; 5]> = rows
                        .iter()
                        .map(|r| {
                            [
                                r.requirement.clone(),
                                r.category.clone(),
                                r.level.clone(),
                                r.status.clone(),
                                r.rationale.clone(),
                            ]
                        })
                        .collect();
                    format!(
                        "{}\n{}",
                        ai_run_table(&run),
                        table(["REQUIREMENT", "CATEGORY", "LEVEL", "STATUS", "RATIONALE"], &cells)
                    )
                }
            })
        }
    }
}

fn findings(reader: &Reader, args: &FindingsArgs) -> Result<String, Error> {
    let filter = FindingFilter {
        assessment: args.assessment.clone(),
        check: args.check.clone(),
        pillar: args.pillar.clone(),
        namespace: args.namespace.clone(),
        severity: args.severity.clone(),
        text: args.text.clone(),
        limit: args.limit,
        offset: args.offset,
    };
    let page = reader.findings(&filter)?;
    Ok(match args.format {
        Format::Json => document(&json!({
            "assessment": args.assessment,
            "runId": page.run.run_id,
            "completedAt": rfc3339(page.run.completed_at),
            "total": page.run.findings,
            "matching": page.matching,
            "offset": args.offset,
            "findings": page.findings.iter().map(|(f, r)| f.to_json(r.as_deref())).collect::<Vec<_>>(),
        })),
        Format::Table => {
            let rows: Vec<[String; 4]> = page
                .findings
                .iter()
                .map(|(f, _)| {
                    let object = format!(
                        "{}/{}{}{}",
                        f.kind,
                        f.namespace.as_deref().map(|ns| format!("{ns}/")).unwrap_or_default(),
                        f.name,
                        f.container.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
                    );
                    let severity = if f.exempted { format!("{} (exempted)", f.severity) } else { f.severity.clone() };
                    [severity, f.check_id.clone(), object, f.message.clone()]
                })
                .collect();
            format!(
                "run {} completed {}: {} of {} matching findings (of {} in the run)\n{}",
                page.run.run_id,
                rfc3339(page.run.completed_at),
                page.findings.len(),
                page.matching,
                page.run.findings,
                table(["SEVERITY", "CHECK", "OBJECT", "MESSAGE"], &rows)
            )
        }
    })
}

fn history_table(runs: &[HistoryRow], one_check: bool) -> String {
    if one_check {
        let rows: Vec<[String; 7]> = runs
            .iter()
            .map(|r| match r.checks.first() {
                Some(c) => [
                    rfc3339(r.completed_at),
                    r.run_id.clone(),
                    c.check_id.clone(),
                    c.state.clone(),
                    c.passed.to_string(),
                    c.failed.to_string(),
                    c.exempted.to_string(),
                ],
                None => [
                    rfc3339(r.completed_at),
                    r.run_id.clone(),
                    "-".into(),
                    "not run".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ],
            })
            .collect();
        return table(["COMPLETED", "RUN", "CHECK", "STATE", "PASSED", "FAILED", "EXEMPTED"], &rows);
    }
    let rows: Vec<[String; 12]> = runs
        .iter()
        .map(|r| {
            let summary: Value = serde_json::from_str(&r.summary).unwrap_or_default();
            let total = |key: &str| summary["totals"][key].as_u64().map_or("-".into(), |n| n.to_string());
            let pillar = |name: &str| {
                summary["pillars"]
                    .as_array()
                    .and_then(|all| all.iter().find(|p| p["pillar"] == name))
                    .and_then(|p| p["score"].as_u64())
                    .map_or("-".into(), |n| n.to_string())
            };
            [
                rfc3339(r.completed_at),
                r.run_id.clone(),
                r.score.map_or("-".into(), |s| s.to_string()),
                total("passed"),
                total("failed"),
                total("exempted"),
                pillar("security"),
                pillar("reliability"),
                pillar("performance-efficiency"),
                pillar("cost-optimization"),
                pillar("operational-excellence"),
                pillar("sustainability"),
            ]
        })
        .collect();
    table(
        ["COMPLETED", "RUN", "SCORE", "PASSED", "FAILED", "EXEMPTED", "SEC", "REL", "PERF", "COST", "OPS", "SUS"],
        &rows,
    )
}

fn ai_run_table(run: &AiRunRow) -> String {
    let rows = [[
        run.id.to_string(),
        rfc3339(run.finished_at),
        run.checklist_version.clone().unwrap_or_else(|| "-".into()),
        run.kubernetes_minor.clone().unwrap_or_else(|| "-".into()),
        run.run_state.clone(),
        run.error.clone().unwrap_or_else(|| "a readiness self-check, not a certification".into()),
    ]];
    table(["ID", "FINISHED", "CHECKLIST", "KUBERNETES", "STATE", "NOTE"], &rows)
}

fn parse_id(what: &'static str, id: &str) -> Result<i64, Error> {
    id.parse().map_err(|_| Error::NotFound { what, id: id.to_owned() })
}

fn document(value: &Value) -> String {
    format!("{value}\n")
}

fn event_table(events: &[EventRow]) -> String {
    let rows: Vec<[String; 7]> = events
        .iter()
        .map(|e| {
            let object = format!(
                "{}/{}{}",
                e.object_kind.as_deref().unwrap_or("-"),
                e.object_namespace.as_deref().map(|ns| format!("{ns}/")).unwrap_or_default(),
                e.object_name.as_deref().unwrap_or("-")
            );
            [
                e.id.to_string(),
                rfc3339(e.last_seen),
                e.severity.clone(),
                e.event_type.clone(),
                e.count.to_string(),
                object,
                e.title.clone(),
            ]
        })
        .collect();
    table(["ID", "LAST SEEN", "SEVERITY", "TYPE", "COUNT", "OBJECT", "TITLE"], &rows)
}

fn run_table(runs: &[RunRow]) -> String {
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| [r.id.to_string(), rfc3339(r.finished_at), r.assessment.clone(), r.outcome.clone(), r.message.clone()])
        .collect();
    table(["ID", "FINISHED", "ASSESSMENT", "OUTCOME", "MESSAGE"], &rows)
}

fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
