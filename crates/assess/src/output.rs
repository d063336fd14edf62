//! The offline assessment's three outputs: a table for people, JSON for scripts, and SARIF
//! 2.1.0 for code-scanning tools.

use std::cell::Cell;
use std::fmt::Write;

use kube9_api::assessment::{CheckOutcome, Finding, OutcomeCounts, PillarResult, SeverityCounts};
use kube9_api::common::Severity;
use kube9_checks::Report;
use kube9_checks::engine::Found;
use serde::Serialize;
use serde_json::{Value, json};

use crate::input::{InputError, Loaded};

fn object(finding: &Finding) -> String {
    let o = &finding.object;
    let mut text = match &o.namespace {
        Some(ns) => format!("{} {ns}/{}", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    };
    if let Some(container) = &o.container {
        let _ = write!(text, " ({container})");
    }
    text
}

fn place(loaded: &Loaded, found: &Found<'_>) -> String {
    loaded.origin(found.hit.source).map_or_else(String::new, |o| format!("{}:{}", o.path, o.line))
}

/// A readable table: one line per finding, most severe first, then how to fix each failed
/// check, then the totals.
pub fn table(report: &Report, loaded: &Loaded) -> String {
    let rows: Vec<[String; 5]> = report
        .findings()
        .iter()
        .map(|found| {
            let f = &found.finding();
            [f.severity.as_str().to_owned(), f.check_id.clone(), object(f), place(loaded, found), f.message.clone()]
        })
        .collect();
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("No findings.\n");
    } else {
        let header = ["SEVERITY", "CHECK", "OBJECT", "WHERE", "WHAT"].map(str::to_owned);
        let widths: Vec<usize> =
            (0..4).map(|i| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        for row in [&header].into_iter().chain(&rows) {
            for (i, width) in widths.iter().enumerate() {
                let _ = write!(out, "{:<width$}  ", row[i]);
            }
            let _ = writeln!(out, "{}", row[4]);
        }
        out.push_str("\nHow to fix:\n");
        for result in report.results.iter().filter(|r| !r.failed.is_empty()) {
            let _ = writeln!(out, "  {} ({}): {}", result.check.id, result.check.title, result.check.remediation);
        }
    }
    let exempted: Vec<String> =
        report.exempted().map(|f| format!("{} on {}", f.check.id, object(&f.finding()))).collect();
    if !exempted.is_empty() {
        let _ = writeln!(out, "\nExempted by annotation ({}):", exempted.len());
        for line in exempted {
            let _ = writeln!(out, "  {line}");
        }
    }
    let skipped: Vec<_> =
        report.results.iter().filter_map(|r| r.unavailable.as_ref().map(|w| (r.check.id, w))).collect();
    for (id, why) in &skipped {
        let _ = writeln!(out, "skipped {id}: {why}");
    }
    if !loaded.snapshot.not_assessed.is_empty() {
        let kinds: Vec<String> = loaded.snapshot.not_assessed.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        let _ = writeln!(out, "\nNot assessed (no check reads these kinds): {}", kinds.join(", "));
    }
    let s = report.by_severity();
    let totals = report.totals();
    let score = if loaded.errors.is_empty() {
        format!("score {}/100", report.score())
    } else {
        format!(
            "score INCOMPLETE: {} document(s) or object(s) could not be read (listed on stderr); {}/100 over the rest only",
            loaded.errors.len(),
            report.score(),
        )
    };
    let _ = writeln!(
        out,
        "\n{} findings ({} critical, {} high, {} medium, {} low, {} info), {} exempted, {} checks passed everywhere, {} skipped; {score}",
        totals.failed,
        s.critical,
        s.high,
        s.medium,
        s.low,
        s.info,
        totals.exempted,
        report.results.iter().filter(|r| r.failed.is_empty() && r.unavailable.is_none()).count(),
        skipped.len(),
    );
    let _ = writeln!(
        out,
        "{} checks over {} documents in {} files; {} could not be read",
        report.results.len(),
        loaded.documents,
        loaded.files,
        loaded.errors.len()
    );
    out
}

/// Serializes an iterator as a JSON array as it goes, so a large report is never held twice
/// (once as findings, once as a JSON tree).
struct Stream<I>(Cell<Option<I>>);

impl<I> Stream<I> {
    fn new(items: I) -> Stream<I> {
        Stream(Cell::new(Some(items)))
    }
}

impl<I: Iterator<Item = T>, T: Serialize> Serialize for Stream<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.take().into_iter().flatten())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", bound(serialize = "Stream<F>: Serialize, Stream<E>: Serialize"))]
struct JsonReport<'a, F, E> {
    score: u8,
    /// False when something could not be read: the score covers only what was.
    complete: bool,
    totals: OutcomeCounts,
    by_severity: SeverityCounts,
    pillars: Vec<PillarResult>,
    findings: Stream<F>,
    exempted: Stream<E>,
    checks: Vec<CheckOutcome>,
    inputs: Value,
    not_assessed: &'a std::collections::BTreeMap<String, usize>,
    errors: &'a [InputError],
}

/// Everything, for scripts: the same fields as an Assessment's status, plus where each
/// finding's object is and what could not be read.
pub fn json<'a>(report: &'a Report, loaded: &'a Loaded) -> impl Serialize + 'a {
    let with_place = |found: Found<'_>| {
        let f = found.finding();
        let mut value = serde_json::to_value(&f).unwrap_or_default();
        if let Some(origin) = loaded.origin(found.hit.source) {
            value["source"] = json!({"path": origin.path, "line": origin.line});
        }
        value
    };
    JsonReport {
        score: report.score(),
        complete: loaded.errors.is_empty(),
        totals: report.totals(),
        by_severity: report.by_severity(),
        pillars: report.pillars(),
        findings: Stream::new(report.findings().into_iter().map(with_place)),
        exempted: Stream::new(report.exempted().map(with_place)),
        checks: kube9_checks::outcome::check_outcomes(&report.tallies()),
        inputs: json!({"files": loaded.files, "documents": loaded.documents, "unread": loaded.errors.len()}),
        not_assessed: &loaded.snapshot.not_assessed,
        errors: &loaded.errors,
    }
}

#[derive(Serialize)]
#[serde(bound(serialize = "Stream<R>: Serialize"))]
struct Sarif<R> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<R>; 1],
}

#[derive(Serialize)]
#[serde(bound(serialize = "Stream<R>: Serialize"))]
struct SarifRun<R> {
    tool: Value,
    invocations: Value,
    results: Stream<R>,
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// SARIF 2.1.0: every check that ran is a rule; every finding a result at its file and line;
/// exempted findings are results with an in-source suppression; unreadable input is a tool
/// notification.
pub fn sarif<'a>(report: &'a Report, loaded: &'a Loaded) -> impl Serialize + 'a {
    let rules: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let c = r.check;
            json!({
                "id": c.id,
                "name": c.id.replace(['.', '-'], "_"),
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.rationale},
                "help": {"text": c.remediation},
                "defaultConfiguration": {"level": level(c.severity)},
                "properties": {"pillar": c.pillar, "severity": c.severity, "tags": [c.pillar]},
            })
        })
        .collect();
    let index = |id: &str| report.results.iter().position(|r| r.check.id == id);
    let result = move |found: Found<'_>| {
        let f = found.finding();
        let mut value = json!({
            "ruleId": f.check_id,
            "ruleIndex": index(&f.check_id),
            "level": level(f.severity),
            "message": {"text": format!("{}: {}", object(&f), f.message)},
        });
        if let Some(origin) = loaded.origin(found.hit.source) {
            value["locations"] = json!([{"physicalLocation": {
                "artifactLocation": {"uri": uri(&origin.path)},
                "region": {"startLine": origin.line},
            }}]);
        }
        if found.exempted {
            value["suppressions"] = json!([{"kind": "inSource", "justification": "kube9.io/exempt annotation on the object or its namespace"}]);
        }
        value
    };
    let notifications: Vec<Value> = loaded
        .errors
        .iter()
        .map(|e| {
            let mut location = json!({"artifactLocation": {"uri": uri(&e.path)}});
            if let Some(line) = e.line {
                location["region"] = json!({"startLine": line});
            }
            json!({"level": "error", "message": {"text": e.message}, "locations": [{"physicalLocation": location}]})
        })
        .collect();
    Sarif {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [SarifRun {
            tool: json!({"driver": {
                "name": "kube9-operator",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/alto9/kube9-operator",
                "rules": rules,
            }}),
            invocations: json!([{
                "executionSuccessful": loaded.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }]),
            results: Stream::new(report.findings().into_iter().chain(report.exempted()).map(result)),
        }],
    }
}

/// A relative path as a URI reference (SARIF wants `/` separators and percent-encoding).
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.replace('\\', "/").bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(byte as char),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}
