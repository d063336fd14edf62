//! Assessments: each with its score, pillars, phase, schedule and runs, a Run now button (the
//! run-request annotation) and the trend of its score and pillars over the stored history.

use kube9_api::assessment::{Assessment, RunRecord};
use kube9_api::common::Pillar;
use maud::{Markup, html};
use serde_json::Value;

use super::{badge, fields, post_form};
use crate::trend::{self, Point};
use crate::view::{opt_name, time};

/// One Assessment and the history read for its chart.
pub struct Row<'a> {
    pub assessment: &'a Assessment,
    /// The store's history (every kept run), or why it could not be read.
    pub stored: Result<Vec<Point>, String>,
}

/// The chart's points from `query assessments history` (newest first there; oldest first here).
pub fn points_from_store(doc: &Value) -> Vec<Point> {
    let mut points: Vec<Point> = doc["runs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|run| {
            let score = u8::try_from(run["score"].as_u64()?).ok()?;
            let pillars = run["pillars"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| {
                    let pillar = Pillar::ALL.into_iter().find(|x| Some(x.as_str()) == p["pillar"].as_str())?;
                    Some((pillar.as_str(), u8::try_from(p["score"].as_u64()?).ok()?))
                })
                .collect();
            Some(Point { label: run["completedAt"].as_str().unwrap_or_default().to_owned(), score, pillars })
        })
        .collect();
    points.reverse();
    points
}

/// The chart's points from `status.history` (the last 30 runs, oldest first).
pub fn points_from_status(history: &[RunRecord]) -> Vec<Point> {
    history
        .iter()
        .map(|r| Point {
            label: kube9_api::time::rfc3339(r.completed_at.0),
            score: r.score,
            pillars: r.pillars.iter().map(|p| (p.pillar.as_str(), p.score)).collect(),
        })
        .collect()
}

pub fn page(rows: &Result<Vec<Row<'_>>, String>, base: &str, token: &str, read_only: bool) -> Markup {
    let rows = match rows {
        Err(message) => return super::refusal("Listing Assessments failed:", message),
        Ok(rows) if rows.is_empty() => {
            return html! { p.notice { "No Assessment exists. Create one (docs/assessments.md) to assess the cluster." } };
        }
        Ok(rows) => rows,
    };
    html! {
        @for row in rows { (one(row, base, token, read_only)) }
    }
}

fn one(row: &Row<'_>, base: &str, token: &str, read_only: bool) -> Markup {
    let a = row.assessment;
    let name_ = a.metadata.name.clone().unwrap_or_default();
    let status = a.status.clone().unwrap_or_default();
    let schedule = match &a.spec.schedule {
        Some(s) => format!("every {} s{}", s.interval_seconds, if a.spec.suspend { " (suspended)" } else { "" }),
        None => "once".to_owned(),
    };
    let (points, source) = match &row.stored {
        Ok(points) if !points.is_empty() => (points.clone(), format!("the operator's store: {}", runs(points.len()))),
        Ok(_) => (points_from_status(&status.history), format!("the status: the last {}", runs(status.history.len()))),
        Err(message) => (
            points_from_status(&status.history),
            format!(
                "the status: the last {} (the operator's store could not be read: {message})",
                runs(status.history.len())
            ),
        ),
    };
    html! {
        section.assessment data-assessment=(name_) aria-labelledby=(format!("a-{name_}")) {
            h2 id=(format!("a-{name_}")) { (name_) " " (badge(&opt_name(status.phase.as_ref()))) }
            (fields(&[
                ("score", "Score", status.score.map(|s| s.to_string()).unwrap_or_else(|| "—".into())),
                ("phase", "Phase", opt_name(status.phase.as_ref())),
                ("schedule", "Schedule", schedule),
                ("lastRun", "Last run completed", time(status.completed_at.as_ref())),
                ("nextRun", "Next run", time(status.next_run_at.as_ref())),
                ("failed", "Failed findings", status.totals.as_ref().map(|t| t.failed.to_string()).unwrap_or_else(|| "—".into())),
            ]))
            @if !status.pillars.is_empty() {
                table.pillars {
                    caption { "Score per pillar" }
                    thead { tr { th scope="col" { "Pillar" } th scope="col" { "Score" } th scope="col" { "Passed" } th scope="col" { "Failed" } } }
                    tbody {
                        @for p in &status.pillars {
                            tr data-pillar=(p.pillar.as_str()) {
                                th scope="row" { (p.pillar.title()) }
                                td data-field="pillarScore" { (p.score) }
                                td { (p.totals.passed) }
                                td { (p.totals.failed) }
                            }
                        }
                    }
                }
            }
            @if !read_only {
                (post_form(&format!("{base}/assessments/{}/run", crate::view::encode(&name_)), token, &[], html! {
                    button type="submit" { "Run now" }
                }))
            }
            h3 { "Trend" }
            p.muted data-field="trendSource" { "From " (source) "." }
            (trend::svg(&format!("Score and pillar scores of {name_} over time"), &points))
            a href=(format!("{base}/findings{}", crate::view::query_string(&[("assessment", &name_)]))) { "Findings of " (name_) }
        }
    }
}

/// "1 run", "30 runs".
fn runs(n: usize) -> String {
    format!("{n} run{}", if n == 1 { "" } else { "s" })
}

/// The run-now outcome shown after the POST.
pub fn requested(name_: &str, result: &Result<(), String>) -> Markup {
    match result {
        Ok(()) => {
            html! { p.notice role="status" { "A run of " (name_) " was requested; the page updates when it starts." } }
        }
        Err(message) => super::refusal(&format!("Requesting a run of {name_} was refused:"), message),
    }
}
