//! AI Conformance: the readiness self-check's checklist, each requirement with its status and
//! evidence (`query ai-conformance requirements` when the store answers, else the status).

use kube9_api::ai_conformance::AiConformanceSummary;
use maud::{Markup, html};
use serde_json::Value;

use super::{badge, fields};
use crate::view::{name, text};

pub fn page(summary: Option<&AiConformanceSummary>, stored: &Result<Value, String>) -> Markup {
    let Some(s) = summary else {
        return html! { p.notice { "The operator has not run the AI Conformance self-check yet." } };
    };
    let t = &s.totals;
    html! {
        p.muted { "A readiness self-check against the CNCF checklist, not a certification." }
        (fields(&[
            ("checklistVersion", "Checklist", text(s.checklist_version.as_deref())),
            ("kubernetesMinor", "Kubernetes", text(s.kubernetes_minor.as_deref())),
            ("lastOutcome", "Outcome", name(&s.last_outcome)),
            ("lastCompletedAt", "Completed", text(s.last_completed_at.as_deref())),
            ("passed", "Passed", t.passed.to_string()),
            ("failed", "Failed", t.failed.to_string()),
            ("needsEvidence", "Needs evidence", t.needs_evidence.to_string()),
            ("totalRequirements", "Requirements", t.total_requirements.to_string()),
        ]))
        @if let Some(e) = &s.error { (super::refusal("The last self-check failed:", e)) }
        @let evidence = |id: &str| -> Option<String> {
            stored.as_ref().ok()?["requirements"].as_array()?.iter().find(|r| r["id"].as_str() == Some(id)).map(|r| {
                r.get("evidence").map(|e| match e { Value::String(s) => s.clone(), other => other.to_string() }).unwrap_or_default()
            })
        };
        @if let Err(m) = stored { p.muted { "Evidence is in the operator's store, which could not be read: " (m) } }
        table.requirements {
            thead { tr { th scope="col" { "Requirement" } th scope="col" { "Category" } th scope="col" { "Level" } th scope="col" { "Status" } th scope="col" { "Rationale and evidence" } } }
            tbody {
                @for r in &s.requirements {
                    tr data-requirement=(r.id) {
                        th scope="row" { code { (r.id) } br; (r.title) }
                        td { (name(&r.category)) }
                        td { (name(&r.level)) }
                        td { (badge(&name(&r.status))) }
                        td { (r.rationale) @if let Some(e) = evidence(&r.id).filter(|e| !e.is_empty()) { br; span.evidence { (e) } } }
                    }
                }
            }
        }
    }
}
