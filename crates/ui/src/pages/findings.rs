//! Findings: every finding of an Assessment's latest run, from the operator's store (the status
//! keeps 100), filtered and paged by the store itself so 100,000 stay fast.

use kube9_api::common::{Pillar, Severity};
use maud::{Markup, html};
use serde_json::Value;

use super::badge;
use crate::view::{encode, query_string};

/// Findings per page.
pub const PAGE_SIZE: u64 = 50;

/// The filters, as the URL carries them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub assessment: String,
    #[serde(default)]
    pub pillar: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub check: String,
    /// Text in the message, object name or namespace.
    #[serde(default)]
    pub text: String,
    /// 1-based.
    #[serde(default)]
    pub page: Option<u64>,
}

impl Filter {
    pub fn page(&self) -> u64 {
        self.page.unwrap_or(1).max(1)
    }

    /// `query findings`'s words for this filter and page (invalid pillar or severity dropped:
    /// the store refuses unknown ones).
    pub fn words(&self) -> Vec<String> {
        let mut words = vec!["findings".to_owned(), format!("--assessment={}", self.assessment)];
        if Pillar::ALL.iter().any(|p| p.as_str() == self.pillar) {
            words.push(format!("--pillar={}", self.pillar));
        }
        if Severity::ALL.iter().any(|s| s.as_str() == self.severity) {
            words.push(format!("--severity={}", self.severity));
        }
        if !self.namespace.is_empty() {
            words.push(format!("--namespace={}", self.namespace));
        }
        if !self.check.is_empty() {
            words.push(format!("--check={}", self.check));
        }
        if !self.text.is_empty() {
            words.push(format!("--text={}", self.text));
        }
        words.push(format!("--limit={PAGE_SIZE}"));
        words.push(format!("--offset={}", (self.page() - 1) * PAGE_SIZE));
        words
    }

    fn link(&self, page: u64) -> String {
        let page = page.to_string();
        query_string(&[
            ("assessment", &self.assessment),
            ("pillar", &self.pillar),
            ("severity", &self.severity),
            ("namespace", &self.namespace),
            ("check", &self.check),
            ("text", &self.text),
            ("page", &page),
        ])
    }
}

/// `assessments`: the Assessments to choose from; `answer`: the store's page (or why not).
pub fn page(base: &str, assessments: &[String], filter: &Filter, answer: Option<&Result<Value, String>>) -> Markup {
    html! {
        form.filters method="get" action=(format!("{base}/findings")) {
            label { "Assessment "
                select name="assessment" {
                    @for a in assessments { option value=(a) selected[*a == filter.assessment] { (a) } }
                }
            }
            label { "Pillar "
                select name="pillar" {
                    option value="" { "any" }
                    @for p in Pillar::ALL { option value=(p.as_str()) selected[p.as_str() == filter.pillar] { (p.as_str()) } }
                }
            }
            label { "Severity "
                select name="severity" {
                    option value="" { "any" }
                    @for s in Severity::ALL { option value=(s.as_str()) selected[s.as_str() == filter.severity] { (s.as_str()) } }
                }
            }
            label { "Namespace " input type="text" name="namespace" value=(filter.namespace); }
            label { "Check " input type="text" name="check" value=(filter.check) placeholder="security.privileged"; }
            label { "Text " input type="search" name="text" value=(filter.text); }
            button type="submit" { "Filter" }
        }
        @match answer {
            None => p.notice { "No Assessment has findings to show yet." },
            Some(Err(message)) => (super::refusal("Reading the findings from the operator's store failed:", message)),
            Some(Ok(doc)) => (table(base, filter, doc)),
        }
    }
}

fn table(base: &str, filter: &Filter, doc: &Value) -> Markup {
    let matching = doc["matching"].as_u64().unwrap_or(0);
    let total = doc["total"].as_u64().unwrap_or(0);
    let page = filter.page();
    let pages = matching.div_ceil(PAGE_SIZE).max(1);
    let empty = Vec::new();
    let findings = doc["findings"].as_array().unwrap_or(&empty);
    html! {
        p data-field="findingsCount" {
            span data-field="matching" { (matching) } " matching of " span data-field="total" { (total) }
            " findings in run " (doc["runId"].as_str().unwrap_or("—")) " (completed " (doc["completedAt"].as_str().unwrap_or("—")) ")."
        }
        table.findings {
            thead { tr {
                th scope="col" { "Severity" } th scope="col" { "Check" } th scope="col" { "Object" }
                th scope="col" { "Message" } th scope="col" { "Remediation" }
            } }
            tbody {
                @for f in findings {
                    tr.finding data-check=(f["checkId"].as_str().unwrap_or_default()) {
                        td { (badge(f["severity"].as_str().unwrap_or_default())) @if f["exempted"] == true { " " span.muted { "exempted" } } }
                        td { a href=(format!("{base}/checks#{}", encode(f["checkId"].as_str().unwrap_or_default()))) { (f["checkId"].as_str().unwrap_or_default()) } }
                        td.object { (object(&f["object"])) }
                        td.message { (f["message"].as_str().unwrap_or_default()) }
                        td { (f["remediation"].as_str().unwrap_or_default()) }
                    }
                }
            }
        }
        nav.pager aria-label="Pages of findings" {
            @if page > 1 { a rel="prev" href=(format!("{base}/findings{}", filter.link(page - 1))) { "Previous" } }
            span data-field="page" { "Page " (page) " of " (pages) }
            @if page < pages { a rel="next" href=(format!("{base}/findings{}", filter.link(page + 1))) { "Next" } }
        }
    }
}

/// `Kind namespace/name [container]`.
pub fn object(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or_default();
    let name = o["name"].as_str().unwrap_or_default();
    let mut text = match o["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    if let Some(c) = o["container"].as_str() {
        text.push_str(&format!(" (container {c})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_stores_words_and_pages_offsets() {
        let filter = Filter {
            assessment: "weekly".into(),
            pillar: "security".into(),
            severity: "bogus".into(),
            namespace: "team-a".into(),
            text: "web-1".into(),
            page: Some(3),
            ..Filter::default()
        };
        assert_eq!(
            filter.words(),
            [
                "findings",
                "--assessment=weekly",
                "--pillar=security",
                "--namespace=team-a",
                "--text=web-1",
                "--limit=50",
                "--offset=100"
            ]
        );
        assert_eq!(Filter { page: Some(0), ..Filter::default() }.page(), 1);
    }

    #[test]
    fn a_page_shows_the_counts_and_links_on() {
        let doc = serde_json::json!({"matching": 120, "total": 300, "runId": "r1", "findings": [
            {"checkId": "security.privileged", "severity": "high", "object": {"kind": "Pod", "namespace": "a", "name": "<b>x</b>", "container": "c"}, "message": "m", "remediation": "r"}
        ]});
        let filter = Filter { assessment: "w".into(), page: Some(2), ..Filter::default() };
        let html = page("/c/0", &["w".into()], &filter, Some(&Ok(doc))).into_string();
        assert!(html.contains("Page 2 of 3"), "{html}");
        assert!(html.contains("Pod a/&lt;b&gt;x&lt;/b&gt; (container c)"), "{html}");
        assert!(html.contains(r#"href="/c/0/findings?assessment=w&amp;page=3""#), "{html}");
        assert!(html.contains(r#"href="/c/0/findings?assessment=w&amp;page=1""#), "{html}");
    }
}
