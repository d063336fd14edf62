//! Insights (pro): kube9-server's advice about objects by their real names, with Acknowledge,
//! Dismiss and Reopen (a note with each), written to `spec.acknowledgements`, and the state of
//! each acknowledgement's delivery to kube9-server.

use kube9_api::operator_status::{OperatorStatus, Tier};
use maud::{Markup, html};

use super::{badge, post_form};
use crate::view::{name, time};

pub fn page(status: &Result<Option<OperatorStatus>, String>, base: &str, token: &str, read_only: bool) -> Markup {
    let object = match status {
        Err(message) => return super::refusal("Reading the OperatorStatus kube9 failed:", message),
        Ok(None) => {
            return html! { p.notice { "There is no OperatorStatus named kube9: no operator, so no insights." } };
        }
        Ok(Some(object)) => object,
    };
    let s = object.status.clone().unwrap_or_default();
    let spec_acks = &object.spec.acknowledgements;
    html! {
        @if s.tier != Some(Tier::Pro) && s.insights.is_empty() {
            p.notice { "Insights come with the pro tier: configure an API key (docs/pro-tier.md)." }
        }
        @if let Some(omitted) = s.insights_omitted {
            p.muted { (omitted) " more insights are not in the status." }
        }
        @for i in &s.insights {
            @let sync = s.acknowledgements.get(&i.id);
            @let decided = spec_acks.get(&i.id);
            article.insight data-insight=(i.id) aria-labelledby=(format!("i-{}", i.id)) {
                h2 id=(format!("i-{}", i.id)) { (badge(i.severity.as_str())) " " span.title { (i.title) } }
                dl.fields {
                    div { dt { "Object" } dd data-field="object" {
                        (i.object.kind) " " @if let Some(ns) = &i.object.namespace { (ns) "/" } (i.object.name)
                    } }
                    div { dt { "State" } dd data-field="state" { (name(&i.status)) } }
                    div { dt { "Type" } dd { (i.insight_type) } }
                    div { dt { "Since" } dd { (time(i.created_at.as_ref())) } }
                }
                p.text { (i.text) }
                p.recommendation { strong { "Recommendation: " } (i.recommendation) }
                @if let Some(d) = decided {
                    p data-field="decision" {
                        "Your decision: " strong { (name(&d.state)) }
                        @if let Some(note) = &d.note { " — “" (note) "”" }
                    }
                }
                @if let Some(sync) = sync {
                    p data-field="sync" {
                        "Delivery to kube9-server: " (badge(&name(&sync.sync)))
                        " after " (sync.attempts) " attempt(s)"
                        @if let Some(e) = &sync.last_error { " — " (e) }
                    }
                } @else if decided.is_some() {
                    p data-field="sync" { "Delivery to kube9-server: " (badge("pending")) " (the operator has not picked it up yet)" }
                }
                @if !read_only {
                    (post_form(&format!("{base}/insights/{}", crate::view::encode(&i.id)), token, &[], html! {
                        label { "Note " textarea name="note" rows="2" maxlength="1000" { (decided.and_then(|d| d.note.as_deref()).unwrap_or("")) } }
                        div.buttons {
                            button type="submit" name="action" value="acknowledge" { "Acknowledge" }
                            button type="submit" name="action" value="dismiss" { "Dismiss" }
                            @if decided.is_some() { button type="submit" name="action" value="reopen" { "Reopen" } }
                        }
                    }))
                }
            }
        }
        @if s.insights.is_empty() && s.tier == Some(Tier::Pro) {
            p.muted { "No insights yet: they arrive with the answers to the operator's uploads." }
        }
    }
}

/// What the POST did.
pub fn decided(id: &str, action: &str, result: &Result<(), String>) -> Markup {
    match result {
        Ok(()) => {
            html! { p.notice role="status" { "Insight " (id) ": " (action) " recorded in the OperatorStatus spec." } }
        }
        Err(message) => super::refusal(&format!("Recording “{action}” for insight {id} was refused:"), message),
    }
}
