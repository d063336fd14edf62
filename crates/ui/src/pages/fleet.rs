//! Fleet: every cluster on one page — tier, health, each pillar's score, the last run and Argo
//! CD drift — each linking into its own pages; a cluster that refuses or cannot be reached says
//! so on its row.

use kube9_api::assessment::Assessment;
use kube9_api::common::Pillar;
use kube9_api::operator_status::OperatorStatus;
use maud::{Markup, html};

use super::badge;
use crate::view::opt_name;

/// What one cluster's row shows.
pub struct Row {
    pub name: String,
    pub base: String,
    pub status: Result<Option<OperatorStatus>, String>,
    pub assessments: Result<Vec<Assessment>, String>,
}

pub fn page(rows: &[Row]) -> Markup {
    html! {
        table.fleet {
            thead { tr {
                th scope="col" { "Cluster" } th scope="col" { "Tier" } th scope="col" { "Health" }
                th scope="col" { "Score" }
                @for p in Pillar::ALL { th scope="col" { (p.title()) } }
                th scope="col" { "Last run" } th scope="col" { "Argo CD out of sync" } th scope="col" { "Not shown" }
            } }
            tbody {
                @for row in rows { (one(row)) }
            }
        }
    }
}

fn one(row: &Row) -> Markup {
    let status = row.status.as_ref().ok().and_then(|s| s.as_ref()).and_then(|s| s.status.clone());
    // The latest completed Assessment stands for the cluster's scores.
    let latest = row.assessments.as_ref().ok().and_then(|list| {
        list.iter()
            .filter(|a| a.status.as_ref().is_some_and(|s| s.completed_at.is_some()))
            .max_by_key(|a| a.status.as_ref().and_then(|s| s.completed_at.as_ref()).map(|t| t.0))
    });
    let ls = latest.and_then(|a| a.status.as_ref());
    let mut problems = Vec::new();
    if let Err(m) = &row.status {
        problems.push(format!("the OperatorStatus: {m}"));
    }
    if let Err(m) = &row.assessments {
        problems.push(format!("Assessments: {m}"));
    }
    html! {
        tr data-cluster=(row.name) {
            th scope="row" { a href=(format!("{}/", row.base)) { (row.name) } }
            td data-field="tier" { (opt_name(status.as_ref().and_then(|s| s.tier.as_ref()))) }
            td data-field="health" { (badge(&opt_name(status.as_ref().and_then(|s| s.health.as_ref())))) }
            td data-field="score" { (ls.and_then(|s| s.score).map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
            @for p in Pillar::ALL {
                td data-pillar=(p.as_str()) {
                    (ls.and_then(|s| s.pillars.iter().find(|x| x.pillar == p)).map(|x| x.score.to_string()).unwrap_or_else(|| "—".into()))
                }
            }
            td data-field="lastRun" { (ls.and_then(|s| s.completed_at.as_ref()).map(|t| kube9_api::time::rfc3339(t.0)).unwrap_or_else(|| "—".into())) }
            td data-field="drift" {
                (status.as_ref().and_then(|s| s.argocd.as_ref()).and_then(|a| a.applications.as_ref())
                    .map(|a| a.sync_status_counts.get("OutOfSync").copied().unwrap_or(0).to_string()).unwrap_or_else(|| "—".into()))
            }
            td data-field="problems" {
                @if problems.is_empty() { "—" } @else {
                    ul.refusals { @for p in &problems { li.refusal { (p) } } }
                }
            }
        }
    }
}
