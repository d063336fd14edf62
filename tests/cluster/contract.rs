//! The contract checker itself: each rule of the extension's contract, broken once, is caught
//! (the cluster tests run it on the ConfigMap the operator writes in every state).

use std::collections::BTreeMap;

use kube9_tests::contract::violations;
use serde_json::{Value, json};

fn valid() -> Value {
    json!({"mode": "operated", "tier": "free", "version": "0.1.0", "health": "healthy",
        "lastUpdate": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "registered": false, "apiKeyConfigured": false, "error": null, "namespace": "ns",
        "collectionStats": {"totalSuccessCount": 0, "totalFailureCount": 0, "collectionsStoredCount": 0,
            "lastSuccessTime": null},
        "assessment": {"lastScheduledCompletedAt": null, "lastScheduledOutcome": "none",
            "lastScheduledRunState": null, "lastScheduledRunId": null,
            "lastScheduledTotals": {"totalChecks": 0, "completedChecks": 0, "passedChecks": 0,
                "failedChecks": 0, "warningChecks": 0},
            "lastScheduledError": null,
            "lastScheduledChecks": [{"checkId": "cost-optimization.load-balancers", "checkName": "x",
                "pillar": "cost-optimization", "status": "passing", "message": null, "remediation": null}],
            "schedulingEnabled": false, "scheduleIntervalSeconds": null, "scheduledAssessmentMode": null,
            "scheduledAssessmentPillar": null},
        "argocd": {"detected": true, "namespace": "argocd", "version": "v3.1.5", "lastChecked": "2026-12-01T10:00:00Z",
            "resourceTreeCapable": true,
            "applications": {"storedCount": 2, "lastCollectedAt": "2026-12-01T10:00:00Z",
                "syncStatusCounts": {"Synced": 1, "OutOfSync": 1}, "healthStatusCounts": {"Healthy": 2}}}})
}

type Break = (&'static str, fn(&mut Value));

fn data(status: &Value) -> BTreeMap<String, String> {
    BTreeMap::from([("status".into(), status.to_string()), ("namespace".into(), "ns".into())])
}

#[test]
fn each_broken_rule_is_caught() {
    assert_eq!(violations(&data(&valid()), "ns"), Vec::<String>::new());
    let breaks: [Break; 15] = [
        ("detected must be a bool", |v| drop(v["argocd"].as_object_mut().unwrap().remove("detected"))),
        ("namespace must be present", |v| drop(v["argocd"].as_object_mut().unwrap().remove("namespace"))),
        ("resourceTreeCapable", |v| v["argocd"]["detected"] = false.into()),
        ("resourceTreeLastError", |v| v["argocd"]["resourceTreeCapable"] = false.into()),
        ("syncStatusCounts", |v| v["argocd"]["applications"]["syncStatusCounts"] = json!({"Synced": "one"})),
        ("lastScheduledTotals missing", |v| {
            drop(v["assessment"].as_object_mut().unwrap().remove("lastScheduledTotals"))
        }),
        ("pillar", |v| v["assessment"]["lastScheduledChecks"][0]["pillar"] = "costOptimization".into()),
        ("status", |v| v["assessment"]["lastScheduledChecks"][0]["status"] = "passed".into()),
        ("remediation must be null", |v| v["assessment"]["lastScheduledChecks"][0]["remediation"] = "fix".into()),
        ("lastSuccessTime", |v| drop(v["collectionStats"].as_object_mut().unwrap().remove("lastSuccessTime"))),
        ("apiKeyConfigured", |v| drop(v.as_object_mut().unwrap().remove("apiKeyConfigured"))),
        ("error must be present", |v| drop(v.as_object_mut().unwrap().remove("error"))),
        ("clusterId", |v| v["clusterId"] = "cls_x".into()),
        ("older than five minutes", |v| v["lastUpdate"] = "2020-01-01T00:00:00Z".into()),
        ("zeros before the first run", |v| v["assessment"]["lastScheduledTotals"]["passedChecks"] = 3.into()),
    ];
    for (expected, mutate) in breaks {
        let mut broken = valid();
        mutate(&mut broken);
        let found = violations(&data(&broken), "ns");
        assert!(found.iter().any(|f| f.contains(expected)), "{expected}: {found:?}");
    }
    let mut no_namespace_key = data(&valid());
    no_namespace_key.remove("namespace");
    assert!(violations(&no_namespace_key, "ns")[0].contains("data.namespace"));
}
