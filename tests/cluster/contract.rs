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

fn with_ai_conformance() -> Value {
    let mut status = valid();
    let counts = |total: u64, passed: u64, needs: u64| {
        json!({"totalRequirements": total, "mustRequirements": total, "shouldRequirements": 0, "passed": passed,
            "failed": 0, "warning": 0, "notApplicable": 0, "notEvaluated": 0, "needsEvidence": needs})
    };
    let mut category = counts(2, 1, 1);
    category["total"] = 2.into();
    status["aiConformance"] = json!({"checklistVersion": "1.35", "kubernetesMinor": "1.35", "sourceRevision": "b2c89690",
        "lastCompletedAt": "2026-12-02T08:00:00Z", "lastOutcome": "success", "runState": "completed",
        "runId": "ai-conformance-1", "totals": counts(2, 1, 1),
        "categories": {"schedulingOrchestration": category},
        "requirements": [
            {"id": "gang_scheduling", "category": "schedulingOrchestration", "level": "MUST", "title": "t",
             "status": "passed", "rationale": "Kueue runs"},
            {"id": "cluster_autoscaling", "category": "schedulingOrchestration", "level": "MUST", "title": "t",
             "status": "needs-evidence", "rationale": "none seen"}],
        "error": null, "schedulingEnabled": true, "scheduleIntervalSeconds": 86400,
        "checklistSource": "https://github.com/cncf/k8s-ai-conformance/blob/b2c89690/docs/AIConformance-1.35.yaml"});
    status
}

#[test]
fn each_broken_ai_conformance_rule_is_caught() {
    assert_eq!(violations(&data(&with_ai_conformance()), "ns"), Vec::<String>::new());
    let breaks: [Break; 8] = [
        ("checklistSource missing", |v| drop(v["aiConformance"].as_object_mut().unwrap().remove("checklistSource"))),
        ("notice is not in the contract's shape", |v| v["aiConformance"]["notice"] = "x".into()),
        ("status", |v| v["aiConformance"]["requirements"][0]["status"] = "passing".into()),
        ("level", |v| v["aiConformance"]["requirements"][0]["level"] = "must".into()),
        ("evidence is not in the contract's row", |v| v["aiConformance"]["requirements"][0]["evidence"] = json!([])),
        ("totals.passed is 2", |v| v["aiConformance"]["totals"]["passed"] = 2.into()),
        ("categories.schedulingOrchestration.total", |v| {
            v["aiConformance"]["categories"]["schedulingOrchestration"]["total"] = 3.into()
        }),
        ("runState", |v| v["aiConformance"]["runState"] = "running".into()),
    ];
    for (expected, mutate) in breaks {
        let mut broken = with_ai_conformance();
        mutate(&mut broken);
        let found = violations(&data(&broken), "ns");
        assert!(found.iter().any(|f| f.contains(expected)), "{expected}: {found:?}");
    }
    let mut failed = with_ai_conformance();
    failed["aiConformance"]["lastOutcome"] = "failed".into();
    assert!(violations(&data(&failed), "ns").iter().any(|f| f.contains("must say why")));
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
