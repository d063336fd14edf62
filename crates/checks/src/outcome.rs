//! From the engine's report to the API types the Assessment status and the offline CLI show:
//! one outcome per check, and the findings within a bound.

use kube9_api::assessment::{CheckOutcome, CheckState, Finding};
use kube9_api::common::Severity;
use kube9_api::text::truncate;

use crate::engine::{CheckResult, Found, Hit, Report};

/// Findings a status keeps; the rest are counted.
pub const MAX_FINDINGS: usize = 100;

/// How a check ended, in the API's words.
pub fn state(result: &CheckResult) -> CheckState {
    if result.unavailable.is_some() {
        CheckState::Skipped
    } else if result.failed.is_empty() {
        CheckState::Passing
    } else if result.check.severity <= Severity::Medium {
        CheckState::Failing
    } else {
        CheckState::Warning
    }
}

fn describe(o: &Hit) -> String {
    let place = match (&o.namespace, &o.container) {
        (Some(ns), Some(c)) => format!("{} {ns}/{} ({c})", o.kind, o.name),
        (Some(ns), None) => format!("{} {ns}/{}", o.kind, o.name),
        (None, Some(c)) => format!("{} {} ({c})", o.kind, o.name),
        (None, None) => format!("{} {}", o.kind, o.name),
    };
    format!("{place}: {}", o.message)
}

/// One line on what failed: the first few objects and how many more.
fn message(result: &CheckResult) -> Option<String> {
    if let Some(why) = &result.unavailable {
        return Some(why.clone());
    }
    if result.failed.is_empty() {
        return None;
    }
    let shown: Vec<String> = result.failed.iter().take(3).map(describe).collect();
    let more = result.failed.len().saturating_sub(3);
    let text = if more > 0 { format!("{}; and {more} more", shown.join("; ")) } else { shown.join("; ") };
    Some(truncate(&text, 1000))
}

/// One outcome per check run, in registry order.
pub fn check_outcomes(report: &Report) -> Vec<CheckOutcome> {
    report
        .results
        .iter()
        .map(|r| CheckOutcome {
            check_id: r.check.id.to_owned(),
            title: r.check.title.to_owned(),
            pillar: r.check.pillar,
            severity: r.check.severity,
            state: state(r),
            passed: r.passed,
            failed: r.failed.len() as u32,
            exempted: r.exempted.len() as u32,
            message: message(r),
            remediation: r.check.remediation.to_owned(),
        })
        .collect()
}

/// Failed findings, most severe first, then the exempted ones (marked), at most `max`; and
/// how many were left out.
pub fn bounded_findings(report: &Report, max: usize) -> (Vec<Finding>, u32) {
    let all: Vec<Found<'_>> = report.findings().into_iter().chain(report.exempted()).collect();
    let left_out = all.len().saturating_sub(max) as u32;
    (all.iter().take(max).map(Found::finding).collect(), left_out)
}
