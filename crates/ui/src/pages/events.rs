//! Events: the operator's stored history (the cluster's Events deduplicated, and its own), with
//! the extension's filters.

use maud::{Markup, html};
use serde_json::Value;

use super::badge;

/// The filters, as the URL carries them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, rename = "type")]
    pub event_type: String,
    /// Hours back; empty for all.
    #[serde(default)]
    pub hours: String,
}

/// The event types `query events list --type` accepts.
pub const TYPES: [&str; 6] = ["cluster", "operator", "insight", "assessment", "health", "system"];

impl Filter {
    /// `query events list`'s words; `now_ms` turns the hours into `--since`.
    pub fn words(&self, now_ms: i64) -> Vec<String> {
        let mut words = vec!["events".to_owned(), "list".to_owned(), "--limit=200".to_owned()];
        if !self.namespace.is_empty() {
            words.push(format!("--object-namespace={}", self.namespace));
        }
        if !self.kind.is_empty() {
            words.push(format!("--object-kind={}", self.kind));
        }
        if TYPES.contains(&self.event_type.as_str()) {
            words.push(format!("--type={}", self.event_type));
        }
        if let Ok(hours) = self.hours.parse::<i64>()
            && hours > 0
            && let Ok(t) = k8s_openapi::jiff::Timestamp::from_millisecond(now_ms - hours * 3_600_000)
        {
            words.push(format!("--since={}", t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")));
        }
        words
    }
}

pub fn page(base: &str, filter: &Filter, answer: &Result<Value, String>) -> Markup {
    html! {
        form.filters method="get" action=(format!("{base}/events")) {
            label { "Namespace " input type="text" name="namespace" value=(filter.namespace); }
            label { "Kind " input type="text" name="kind" value=(filter.kind) placeholder="Pod"; }
            label { "Type "
                select name="type" {
                    option value="" { "any" }
                    @for t in TYPES { option value=(t) selected[t == filter.event_type] { (t) } }
                }
            }
            label { "Since "
                select name="hours" {
                    @for (v, l) in [("", "any time"), ("1", "1 hour"), ("24", "24 hours"), ("168", "7 days")] {
                        option value=(v) selected[v == filter.hours] { (l) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @match answer {
            Err(message) => (super::refusal("Reading the events from the operator's store failed:", message)),
            Ok(doc) => (table(doc)),
        }
    }
}

/// The events as a table (also used by the Argo CD page for drift history).
pub fn table(doc: &Value) -> Markup {
    let empty = Vec::new();
    let events = doc["events"].as_array().unwrap_or(&empty);
    html! {
        p data-field="eventCount" { (events.len()) " events, newest first." }
        table.events {
            thead { tr { th scope="col" { "When" } th scope="col" { "Severity" } th scope="col" { "Type" } th scope="col" { "Object" } th scope="col" { "What" } th scope="col" { "Count" } } }
            tbody {
                @for e in events {
                    tr.event data-event=(e["id"].as_str().unwrap_or_default()) {
                        td { (e["created_at"].as_str().unwrap_or_default()) }
                        td { (badge(e["severity"].as_str().unwrap_or_default())) }
                        td { (e["event_type"].as_str().unwrap_or_default()) }
                        td { (e["object_kind"].as_str().unwrap_or_default()) " "
                             @if let Some(ns) = e["object_namespace"].as_str() { (ns) "/" }
                             (e["object_name"].as_str().unwrap_or_default()) }
                        td { strong { (e["title"].as_str().unwrap_or_default()) } br; (e["description"].as_str().unwrap_or_default()) }
                        td { (e["metadata"]["count"].as_u64().unwrap_or(1)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_stores_words() {
        let f = Filter { namespace: "a".into(), kind: "Pod".into(), event_type: "nope".into(), hours: "24".into() };
        assert_eq!(
            f.words(86_400_000 * 2),
            [
                "events",
                "list",
                "--limit=200",
                "--object-namespace=a",
                "--object-kind=Pod",
                "--since=1970-01-02T00:00:00.000Z"
            ]
        );
        assert_eq!(Filter::default().words(0), ["events", "list", "--limit=200"]);
    }
}
