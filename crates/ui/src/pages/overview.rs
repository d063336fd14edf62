//! Overview: the operator's standing (tier, mode, health, …), its conditions and the upload's
//! last result, from the `kube9` OperatorStatus.

use kube9_api::operator_status::OperatorStatus;
use maud::{Markup, html};

use super::{badge, fields};
use crate::view::{name, opt_name, text, time};

/// The page for what `get` returned: the object, none (no operator), or a refusal.
pub fn page(status: &Result<Option<OperatorStatus>, String>) -> Markup {
    let object = match status {
        Err(message) => return super::refusal("Reading the OperatorStatus kube9 failed:", message),
        Ok(None) => {
            return html! {
                p.notice { "There is no OperatorStatus named kube9: the operator is not installed in this cluster, or has not started yet." }
            };
        }
        Ok(Some(object)) => object,
    };
    let Some(s) = &object.status else {
        return html! { p.notice { "The OperatorStatus kube9 has no status yet: the operator has not written it." } };
    };
    let health = opt_name(s.health.as_ref());
    html! {
        section aria-labelledby="standing" {
            h2 #standing { "Standing" " " (badge(&health)) }
            (fields(&[
                ("tier", "Tier", opt_name(s.tier.as_ref())),
                ("mode", "Mode", opt_name(s.mode.as_ref())),
                ("health", "Health", health.clone()),
                ("registered", "Registered", s.registered.map(|r| r.to_string()).unwrap_or_else(|| "—".into())),
                ("clusterId", "Cluster id", text(s.cluster_id.as_deref())),
                ("leader", "Leader", text(s.leader.as_deref())),
                ("version", "Version", text(s.version.as_deref())),
                ("lastUpdate", "Last update", time(s.last_update.as_ref())),
                ("namespace", "Namespace", text(s.namespace.as_deref())),
                ("error", "Error", text(s.error.as_deref())),
            ]))
        }
        section aria-labelledby="upload" {
            h2 #upload { "Upload to kube9-server" }
            @match &s.upload {
                None => p.muted { "No upload yet (free tier, or the first is pending)." },
                Some(u) => (fields(&[
                    ("uploadLastAttempt", "Last attempt", time(u.last_attempt_time.as_ref())),
                    ("uploadLastSuccess", "Last success", time(u.last_success_time.as_ref())),
                    ("uploadBytes", "Payload bytes", u.payload_bytes.map(|b| b.to_string()).unwrap_or_else(|| "—".into())),
                    ("uploadLastError", "Last error", text(u.last_error.as_deref())),
                ])),
            }
            @if let Some(c) = &s.collection_stats {
                (fields(&[
                    ("collectionsOk", "Collections succeeded", c.total_success_count.to_string()),
                    ("collectionsFailed", "Collections failed", c.total_failure_count.to_string()),
                    ("collectionsStored", "Collections stored", c.collections_stored_count.to_string()),
                ]))
            }
        }
        section aria-labelledby="conditions" {
            h2 #conditions { "Conditions" }
            table {
                thead { tr { th scope="col" { "Type" } th scope="col" { "Status" } th scope="col" { "Reason" } th scope="col" { "Message" } th scope="col" { "Since" } } }
                tbody {
                    @for c in &s.conditions {
                        tr data-condition=(c.type_) {
                            td { (c.type_) } td { (badge(&c.status)) } td { (c.reason) } td { (c.message) } td { (kube9_api::time::rfc3339(c.last_transition_time.0)) }
                        }
                    }
                }
            }
        }
        @if let Some(a) = &s.assessment {
            section aria-labelledby="latest" {
                h2 #latest { "Latest scheduled Assessment" }
                (fields(&[
                    ("lastScheduledOutcome", "Outcome", name(&a.last_scheduled_outcome)),
                    ("lastScheduledCompletedAt", "Completed", text(a.last_scheduled_completed_at.as_deref())),
                    ("lastScheduledRunId", "Run", text(a.last_scheduled_run_id.as_deref())),
                ]))
            }
        }
    }
}
