//! From the engine's report to the API types the Assessment status and the offline CLI show:
//! one outcome per check, and the findings within a bound.

use kube9_api::assessment::{CheckOutcome, CheckState, Finding};
use kube9_api::common::Severity;
use kube9_api::text::truncate;

use crate::check::Hit;
use crate::engine::{Report, Tally};

/// Findings a status keeps; the rest are counted.
pub const MAX_FINDINGS: usize = 100;

/// How a check ended, in the API's words.
pub fn state(result: &Tally) -> CheckState {
    if result.unavailable.is_some() {
        CheckState::Skipped
    } else if result.failed == 0 {
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

/// One line on what failed: the first few objects (in object order) and how many more.
fn message(result: &Tally) -> Option<String> {
    if let Some(why) = &result.unavailable {
        return Some(why.clone());
    }
    if result.failed == 0 {
        return None;
    }
    let shown: Vec<String> = result.first_failed.iter().take(3).map(describe).collect();
    let more = (result.failed as usize).saturating_sub(shown.len());
    let text = if more > 0 { format!("{}; and {more} more", shown.join("; ")) } else { shown.join("; ") };
    Some(truncate(&text, 1000))
}

/// One outcome per check run, in registry order.
pub fn check_outcomes(tallies: &[Tally]) -> Vec<CheckOutcome> {
    tallies
        .iter()
        .map(|r| CheckOutcome {
            check_id: r.check.id.to_owned(),
            title: r.check.title.to_owned(),
            pillar: r.check.pillar,
            severity: r.check.severity,
            state: state(r),
            passed: r.passed,
            failed: r.failed,
            exempted: r.exempted,
            message: message(r),
            remediation: r.check.remediation.to_owned(),
        })
        .collect()
}

/// Failed findings, most severe first, then the exempted ones (marked), at most `max`; and
/// how many were left out.
pub fn bounded_findings(report: &Report, max: usize) -> (Vec<Finding>, u32) {
    let summary = report.summary(max);
    (summary.findings, summary.truncated)
}
