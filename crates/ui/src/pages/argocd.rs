//! Argo CD: detection and counts from the status, the Applications with sync and health
//! (`query argocd apps list`), drift history (the stored events about Applications) and one
//! Application's resource tree.

use kube9_api::argocd::ArgoCdStatus;
use maud::{Markup, html};
use serde_json::Value;

use super::{badge, fields};
use crate::view::{encode, text};

/// What the page read: the status block, the Applications, the drift events, and the tree of
/// the chosen Application.
pub struct Read<'a> {
    pub status: Option<&'a ArgoCdStatus>,
    pub apps: Option<Result<Value, String>>,
    pub drift: Option<Result<Value, String>>,
    pub tree: Option<(String, Result<Value, String>)>,
}

pub fn page(base: &str, read: &Read<'_>) -> Markup {
    let Some(s) = read.status else {
        return html! { p.notice { "The operator has not reported Argo CD detection yet." } };
    };
    html! {
        (fields(&[
            ("argocdDetected", "Detected", s.detected.to_string()),
            ("argocdNamespace", "Namespace", text(s.namespace.as_deref())),
            ("argocdVersion", "Version", text(s.version.as_deref())),
            ("argocdLastChecked", "Last checked", s.last_checked.clone()),
            ("argocdApps", "Applications", s.applications.as_ref().map(|a| a.stored_count.to_string()).unwrap_or_else(|| "—".into())),
        ]))
        @if let Some(a) = &s.applications {
            p { "Sync: " @for (k, v) in &a.sync_status_counts { (badge(k)) " " (v) " " } }
            p { "Health: " @for (k, v) in &a.health_status_counts { (badge(k)) " " (v) " " } }
        }
        @if s.detected {
            h2 { "Applications" }
            @match &read.apps {
                None => {},
                Some(Err(m)) => (super::refusal("Listing Applications failed:", m)),
                Some(Ok(doc)) => (apps(base, doc)),
            }
            @if let Some((name, tree)) = &read.tree {
                h2 { "Resource tree of " (name) }
                @match tree {
                    Err(m) => (super::refusal("Reading the resource tree failed:", m)),
                    Ok(doc) => (tree_list(doc)),
                }
            }
            h2 { "Drift history" }
            @match &read.drift {
                None => {},
                Some(Err(m)) => (super::refusal("Reading the drift history failed:", m)),
                Some(Ok(doc)) => (super::events::table(doc)),
            }
        }
    }
}

fn apps(base: &str, doc: &Value) -> Markup {
    let empty = Vec::new();
    html! {
        table.apps {
            thead { tr { th scope="col" { "Application" } th scope="col" { "Project" } th scope="col" { "Sync" } th scope="col" { "Health" } th scope="col" { "Out of sync" } } }
            tbody {
                @for a in doc["applications"].as_array().unwrap_or(&empty) {
                    @let name = a["name"].as_str().unwrap_or_default();
                    @let ns = a["namespace"].as_str().unwrap_or_default();
                    tr data-app=(name) {
                        th scope="row" { a href=(format!("{base}/argocd?app={}&ns={}", encode(name), encode(ns))) { (ns) "/" (name) } }
                        td { (a["project"].as_str().unwrap_or_default()) }
                        td { (badge(a["sync"]["status"].as_str().unwrap_or("Unknown"))) }
                        td { (badge(a["health"]["status"].as_str().unwrap_or("Unknown"))) }
                        td { (a["outOfSyncCount"].as_u64().unwrap_or(0)) " of " (a["resourceCount"].as_u64().unwrap_or(0)) }
                    }
                }
            }
        }
    }
}

/// The tree as nested lists: each node under its parents (by uid).
fn tree_list(doc: &Value) -> Markup {
    let empty = Vec::new();
    let nodes = doc["nodes"].as_array().unwrap_or(&empty);
    let roots: Vec<&Value> = nodes.iter().filter(|n| n["parentRefs"].as_array().is_none_or(Vec::is_empty)).collect();
    html! { ul.tree { @for n in roots { (node(n, nodes, 0)) } } }
}

fn node(n: &Value, all: &[Value], depth: usize) -> Markup {
    let uid = n["uid"].as_str().unwrap_or_default();
    let children: Vec<&Value> = all
        .iter()
        .filter(|c| {
            !uid.is_empty()
                && c["parentRefs"].as_array().is_some_and(|ps| ps.iter().any(|p| p["uid"].as_str() == Some(uid)))
        })
        .collect();
    html! {
        li {
            (n["kind"].as_str().unwrap_or_default()) " "
            @if let Some(ns) = n["namespace"].as_str() { (ns) "/" }
            (n["name"].as_str().unwrap_or_default()) " "
            @if let Some(h) = n["health"]["status"].as_str() { (badge(h)) }
            @if !children.is_empty() && depth < 8 {
                ul { @for c in children { (node(c, all, depth + 1)) } }
            }
        }
    }
}
