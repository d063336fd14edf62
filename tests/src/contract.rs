//! The ConfigMap contract with the kube9 VS Code extension, written from the contract itself
//! (the extension's source, as summarised in the project's shared CLIENT-CONTRACT.md), not from
//! the operator's types: every key and value rule, checked on the raw ConfigMap.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::Value;

const PILLARS: [&str; 6] = [
    "security",
    "reliability",
    "performance-efficiency",
    "cost-optimization",
    "operational-excellence",
    "sustainability",
];
const CHECK_STATUSES: [&str; 6] = ["passing", "failing", "warning", "skipped", "error", "timeout"];

/// Reads the ConfigMap the operator wrote in `namespace`, fails with every rule it breaks, and
/// returns its status JSON.
pub async fn assert_configmap(client: &kube::Client, namespace: &str) -> Result<Value> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = api.get("kube9-operator-status").await.context("reading the status ConfigMap")?;
    let data = cm.data.unwrap_or_default();
    let problems = violations(&data, namespace);
    if !problems.is_empty() {
        bail!("the ConfigMap breaks the extension's contract:\n  {}\n{data:#?}", problems.join("\n  "));
    }
    Ok(serde_json::from_str(&data["status"])?)
}

/// Every rule of the contract `data` breaks.
pub fn violations(data: &BTreeMap<String, String>, namespace: &str) -> Vec<String> {
    let mut out = Vec::new();
    if data.get("namespace").map(String::as_str) != Some(namespace) {
        out.push(format!("data.namespace is {:?}, not {namespace:?}", data.get("namespace")));
    }
    let Some(text) = data.get("status") else {
        out.push("no data.status".into());
        return out;
    };
    let status: Value = match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Value::Object(map),
        other => {
            out.push(format!("data.status is not a JSON object: {other:?}"));
            return out;
        }
    };
    let mut v = Rules { out: &mut out, at: String::new() };
    v.one_of(&status, "mode", &["operated", "enabled"]);
    v.one_of(&status, "health", &["healthy", "degraded", "unhealthy"]);
    v.one_of(&status, "tier", &["free", "pro"]);
    match status.get("version").and_then(Value::as_str) {
        Some(version) if is_semver(version) => {}
        other => v.fail(format!("version {other:?} is not a non-empty semver")),
    }
    match status.get("lastUpdate").and_then(Value::as_str) {
        Some(t) => match t.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(at) if t.ends_with('Z') => {
                let age = k8s_openapi::jiff::Timestamp::now().duration_since(at);
                if age.as_secs() > 300 {
                    v.fail(format!("lastUpdate {t} is older than five minutes"));
                }
            }
            _ => v.fail(format!("lastUpdate {t:?} is not RFC 3339 UTC")),
        },
        None => v.fail("lastUpdate missing".into()),
    }
    match status.get("error") {
        Some(Value::Null) => {}
        Some(Value::String(_)) if status["health"] != "healthy" => {}
        Some(Value::String(e)) => v.fail(format!("error {e:?} while healthy")),
        other => v.fail(format!("error must be present, string or null: {other:?}")),
    }
    let registered = status.get("registered").and_then(Value::as_bool);
    if registered.is_none() {
        v.fail("registered must be a bool".into());
    }
    if !status.get("apiKeyConfigured").is_some_and(Value::is_boolean) {
        v.fail("apiKeyConfigured must be a bool".into());
    }
    match (status.get("clusterId"), registered) {
        (None, _) => {}
        (Some(Value::String(_)), Some(true)) => {}
        (other, _) => v.fail(format!("clusterId {other:?} only when registered, as a string")),
    }
    if status.get("namespace").and_then(Value::as_str) != Some(namespace) {
        v.fail(format!("status.namespace is not {namespace:?}"));
    }
    match status.get("collectionStats") {
        Some(stats) => {
            v.at = "collectionStats.".into();
            for key in ["totalSuccessCount", "totalFailureCount", "collectionsStoredCount"] {
                v.number(stats, key);
            }
            v.time_or_null(stats, "lastSuccessTime");
            v.at.clear();
        }
        None => v.fail("collectionStats missing".into()),
    }
    match status.get("assessment") {
        Some(assessment) => assessment_rules(&mut v, assessment),
        None => v.fail("assessment missing".into()),
    }
    if let Some(block) = status.get("aiConformance") {
        ai_conformance_rules(&mut v, block);
    }
    // Present once detection has run (the extension then trusts it and skips its own).
    if let Some(argocd) = status.get("argocd") {
        argocd_rules(&mut v, argocd);
    }
    out
}

const AI_KEYS: [&str; 14] = [
    "checklistVersion",
    "kubernetesMinor",
    "sourceRevision",
    "lastCompletedAt",
    "lastOutcome",
    "runState",
    "runId",
    "totals",
    "categories",
    "requirements",
    "error",
    "schedulingEnabled",
    "scheduleIntervalSeconds",
    "checklistSource",
];
const AI_COUNTS: [&str; 9] = [
    "totalRequirements",
    "mustRequirements",
    "shouldRequirements",
    "passed",
    "failed",
    "warning",
    "notApplicable",
    "notEvaluated",
    "needsEvidence",
];
const AI_STATUSES: [(&str, &str); 6] = [
    ("passed", "passed"),
    ("failed", "failed"),
    ("warning", "warning"),
    ("not-applicable", "notApplicable"),
    ("not-evaluated", "notEvaluated"),
    ("needs-evidence", "needsEvidence"),
];

/// The optional `aiConformance` block: exactly its keys, and counts that agree with its rows.
fn ai_conformance_rules(v: &mut Rules<'_>, a: &Value) {
    v.at = "aiConformance.".into();
    let Some(map) = a.as_object() else {
        v.fail("must be an object".into());
        v.at.clear();
        return;
    };
    for key in AI_KEYS {
        if !map.contains_key(key) {
            v.fail(format!("{key} missing"));
        }
    }
    for key in map.keys().filter(|k| !AI_KEYS.contains(&k.as_str())) {
        v.fail(format!("{key} is not in the contract's shape"));
    }
    for key in ["checklistVersion", "kubernetesMinor", "sourceRevision", "runId", "error", "checklistSource"] {
        v.string_or_null(a, key);
    }
    v.time_or_null(a, "lastCompletedAt");
    v.one_of(a, "lastOutcome", &["none", "success", "failed"]);
    match a.get("runState") {
        Some(Value::Null) => {}
        _ => v.one_of(a, "runState", &["completed", "failed", "partial"]),
    }
    if !a.get("schedulingEnabled").is_some_and(Value::is_boolean) {
        v.fail("schedulingEnabled must be a bool".into());
    }
    if !a.get("scheduleIntervalSeconds").is_some_and(|n| n.is_null() || n.is_number()) {
        v.fail("scheduleIntervalSeconds must be a number or null".into());
    }
    if a["lastOutcome"] == "failed" && !a["error"].is_string() {
        v.fail("a failed run must say why in error".into());
    }
    let Some(rows) = a.get("requirements").and_then(Value::as_array) else {
        v.fail("requirements must be an array".into());
        v.at.clear();
        return;
    };
    let mut counted = serde_json::Map::new();
    let mut by_category: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        v.at = format!("aiConformance.requirements[{i}].");
        for key in ["id", "category", "title", "rationale"] {
            if row.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                v.fail(format!("{key} must be a non-empty string"));
            }
        }
        v.one_of(row, "level", &["MUST", "SHOULD"]);
        v.one_of(row, "status", &AI_STATUSES.map(|(word, _)| word));
        if let Some(extra) = row.as_object().and_then(|o| {
            o.keys().find(|k| !["id", "category", "level", "title", "status", "rationale"].contains(&k.as_str()))
        }) {
            v.fail(format!("{extra} is not in the contract's row"));
        }
        let category = row["category"].as_str().unwrap_or_default().to_owned();
        let level = if row["level"] == "MUST" { "mustRequirements" } else { "shouldRequirements" };
        let status = AI_STATUSES.iter().find(|(word, _)| row["status"] == *word).map(|(_, key)| *key);
        for counts in [&mut counted, by_category.entry(category.clone()).or_default()] {
            for key in ["totalRequirements", level].into_iter().chain(status) {
                let n = counts.get(key).and_then(Value::as_u64).unwrap_or(0);
                counts.insert(key.to_owned(), (n + 1).into());
            }
        }
    }
    v.at = "aiConformance.".into();
    let count =
        |counts: &serde_json::Map<String, Value>, key: &str| counts.get(key).and_then(Value::as_u64).unwrap_or(0);
    match a.get("totals") {
        Some(totals) => {
            for key in AI_COUNTS {
                v.number(totals, key);
                if totals[key].as_u64() != Some(count(&counted, key)) {
                    v.fail(format!("totals.{key} is {}, the rows count {}", totals[key], count(&counted, key)));
                }
            }
        }
        None => v.fail("totals missing".into()),
    }
    match a.get("categories").and_then(Value::as_object) {
        Some(categories) => {
            let named: Vec<&String> = categories.keys().collect();
            let rowed: Vec<&String> = by_category.keys().collect();
            if named != rowed {
                v.fail(format!("categories {named:?} are not the rows' categories {rowed:?}"));
            }
            for (name, counts) in categories {
                let want = by_category.get(name).cloned().unwrap_or_default();
                v.number(counts, "total");
                if counts["total"].as_u64() != Some(count(&want, "totalRequirements")) {
                    v.fail(format!("categories.{name}.total disagrees with the rows"));
                }
                for key in AI_COUNTS {
                    if counts[key].as_u64() != Some(count(&want, key)) {
                        v.fail(format!(
                            "categories.{name}.{key} is {}, the rows count {}",
                            counts[key],
                            count(&want, key)
                        ));
                    }
                }
            }
        }
        None => v.fail("categories must be an object".into()),
    }
    v.at.clear();
}

fn argocd_rules(v: &mut Rules<'_>, a: &Value) {
    v.at = "argocd.".into();
    let detected = a.get("detected").and_then(Value::as_bool);
    if detected.is_none() {
        v.fail("detected must be a bool".into());
    }
    v.string_or_null(a, "namespace");
    v.string_or_null(a, "version");
    match a.get("lastChecked") {
        Some(Value::String(t)) if t.ends_with('Z') && t.parse::<k8s_openapi::jiff::Timestamp>().is_ok() => {}
        other => v.fail(format!("lastChecked must be RFC 3339 UTC: {other:?}")),
    }
    match (detected, a.get("resourceTreeCapable")) {
        (Some(true), Some(Value::Bool(_))) | (Some(false), None) => {}
        (d, other) => {
            v.fail(format!("resourceTreeCapable {other:?} must be a bool when detected, omitted when not ({d:?})"))
        }
    }
    if a.get("resourceTreeCapable") == Some(&Value::Bool(false)) {
        let error = a.get("resourceTreeLastError");
        if !error.is_some_and(|e| e["code"].is_string() && e["message"].is_string()) {
            v.fail(format!("resourceTreeLastError must be {{code, message}} when the tree is not capable: {error:?}"));
        }
    }
    if let Some(apps) = a.get("applications") {
        v.at = "argocd.applications.".into();
        v.number(apps, "storedCount");
        match apps.get("lastCollectedAt") {
            Some(Value::String(t)) if t.parse::<k8s_openapi::jiff::Timestamp>().is_ok() => {}
            other => v.fail(format!("lastCollectedAt must be RFC 3339: {other:?}")),
        }
        for key in ["syncStatusCounts", "healthStatusCounts"] {
            match apps.get(key).and_then(Value::as_object) {
                Some(counts) if counts.values().all(Value::is_number) => {}
                other => v.fail(format!("{key} must map a status to a count: {other:?}")),
            }
        }
    }
    v.at.clear();
}

fn assessment_rules(v: &mut Rules<'_>, a: &Value) {
    v.at = "assessment.".into();
    v.time_or_null(a, "lastScheduledCompletedAt");
    v.one_of(a, "lastScheduledOutcome", &["none", "success", "failed"]);
    for key in ["lastScheduledRunState", "lastScheduledRunId", "lastScheduledError"] {
        v.string_or_null(a, key);
    }
    match a.get("lastScheduledTotals") {
        Some(totals) => {
            for key in ["totalChecks", "completedChecks", "passedChecks", "failedChecks", "warningChecks"] {
                v.number(totals, key);
            }
            if a["lastScheduledOutcome"] == "none" && totals.as_object().is_some_and(|t| t.values().any(|n| n != 0)) {
                v.fail("lastScheduledTotals must be zeros before the first run".into());
            }
        }
        None => v.fail("lastScheduledTotals missing (the Health report crashes without it)".into()),
    }
    if !a.get("schedulingEnabled").is_some_and(Value::is_boolean) {
        v.fail("schedulingEnabled must be a bool".into());
    }
    if !a.get("scheduleIntervalSeconds").is_some_and(|n| n.is_null() || n.is_number()) {
        v.fail("scheduleIntervalSeconds must be a number or null".into());
    }
    let mode = a.get("scheduledAssessmentMode");
    let pillar = a.get("scheduledAssessmentPillar");
    match (mode.and_then(Value::as_str), pillar) {
        (Some("pillar"), Some(Value::String(p))) if PILLARS.contains(&p.as_str()) => {}
        (Some("full") | None, Some(Value::Null)) if mode.is_some() => {}
        _ => v.fail(format!("scheduledAssessmentMode {mode:?} and scheduledAssessmentPillar {pillar:?} disagree")),
    }
    let Some(rows) = a.get("lastScheduledChecks").and_then(Value::as_array) else {
        v.fail("lastScheduledChecks must be an array".into());
        return;
    };
    for (i, row) in rows.iter().enumerate() {
        v.at = format!("assessment.lastScheduledChecks[{i}].");
        v.one_of(row, "pillar", &PILLARS);
        v.one_of(row, "status", &CHECK_STATUSES);
        for key in ["checkId", "checkName"] {
            if !row.get(key).is_some_and(Value::is_string) {
                v.fail(format!("{key} must be a string"));
            }
        }
        let id = row["checkId"].as_str().unwrap_or_default();
        let pillar = row["pillar"].as_str().unwrap_or_default();
        if !id.starts_with(&format!("{pillar}.")) {
            v.fail(format!("checkId {id:?} is not <pillar>.<name> for {pillar:?}"));
        }
        v.string_or_null(row, "message");
        v.string_or_null(row, "remediation");
        if row["status"] == "passing" && !row["remediation"].is_null() {
            v.fail("remediation must be null on a passing check".into());
        }
    }
    v.at.clear();
}

struct Rules<'a> {
    out: &'a mut Vec<String>,
    at: String,
}

impl Rules<'_> {
    fn fail(&mut self, why: String) {
        self.out.push(format!("{}{why}", self.at));
    }

    fn one_of(&mut self, object: &Value, key: &str, allowed: &[&str]) {
        match object.get(key).and_then(Value::as_str) {
            Some(value) if allowed.contains(&value) => {}
            other => self.fail(format!("{key} is {other:?}, not one of {allowed:?}")),
        }
    }

    fn number(&mut self, object: &Value, key: &str) {
        if !object.get(key).is_some_and(Value::is_number) {
            self.fail(format!("{key} must be a number"));
        }
    }

    fn string_or_null(&mut self, object: &Value, key: &str) {
        if !object.get(key).is_some_and(|v| v.is_null() || v.is_string()) {
            self.fail(format!("{key} must be present, a string or null"));
        }
    }

    fn time_or_null(&mut self, object: &Value, key: &str) {
        match object.get(key) {
            Some(Value::Null) => {}
            Some(Value::String(t)) if t.ends_with('Z') && t.parse::<k8s_openapi::jiff::Timestamp>().is_ok() => {}
            other => self.fail(format!("{key} must be present, RFC 3339 UTC or null: {other:?}")),
        }
    }
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}
