//! A run's findings as policy reports: the Kubernetes policy working group's
//! `wgpolicyk8s.io/v1alpha2` PolicyReport/ClusterPolicyReport, or their successor
//! `openreports.io/v1alpha1` Report/ClusterReport (the same result shape). One report per
//! namespace for namespaced objects and a cluster report for the rest, each split into parts
//! below [`MAX_REPORT_BYTES`]. Pure: findings in, report objects out.
//!
//! The mapping (docs/checks.md says it too): `source` is `kube9`, `policy` the check id, `rule`
//! the check's title, `category` the pillar, `severity` ours (the same five words); `result`
//! `fail` for a finding of medium severity or above, `warn` for low and info (as a check's state
//! is failing or warning), `skip` for an exempted finding or a check that could not run, `pass`
//! for a check that passed (one result per check, in the cluster report, without resources);
//! the object as the one resource; the remediation, container, Assessment and run as properties.

use kube9_store::{CheckRow, FindingRow};
use serde_json::{Map, Value, json};

/// What results a report holds at most, in bytes of JSON: well under the API server's and
/// etcd's 1.5 MiB limit on one object, with room for its metadata and managed fields.
pub const MAX_REPORT_BYTES: usize = 900 * 1024;

/// The `source` of every result.
pub const SOURCE: &str = "kube9";

/// The label that ties a report to its Assessment (by uid: a name may pass a label's 63).
pub const ASSESSMENT_LABEL: &str = "kube9.io/assessment-uid";
/// The label every report of ours carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kube9-operator");

/// Which report API the cluster serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` Report and ClusterReport (preferred).
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    PolicyReports,
}

impl ReportApi {
    /// In the order they are preferred.
    pub const ALL: [ReportApi; 2] = [ReportApi::OpenReports, ReportApi::PolicyReports];

    pub fn group(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "openreports.io",
            ReportApi::PolicyReports => "wgpolicyk8s.io",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "v1alpha1",
            ReportApi::PolicyReports => "v1alpha2",
        }
    }

    pub fn api_version(self) -> String {
        format!("{}/{}", self.group(), self.version())
    }

    /// The kind of a namespaced (true) or cluster-scoped (false) report.
    pub fn kind(self, namespaced: bool) -> &'static str {
        match (self, namespaced) {
            (ReportApi::OpenReports, true) => "Report",
            (ReportApi::OpenReports, false) => "ClusterReport",
            (ReportApi::PolicyReports, true) => "PolicyReport",
            (ReportApi::PolicyReports, false) => "ClusterPolicyReport",
        }
    }

    /// The resource (plural) of a namespaced (true) or cluster-scoped (false) report.
    pub fn plural(self, namespaced: bool) -> &'static str {
        match (self, namespaced) {
            (ReportApi::OpenReports, true) => "reports",
            (ReportApi::OpenReports, false) => "clusterreports",
            (ReportApi::PolicyReports, true) => "policyreports",
            (ReportApi::PolicyReports, false) => "clusterpolicyreports",
        }
    }
}

/// The Assessment whose run the reports hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub uid: String,
    pub run_id: String,
    /// When the run completed, in seconds since the epoch (each result's timestamp).
    pub completed_at: i64,
}

/// One report object to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// None for a cluster report.
    pub namespace: Option<String>,
    pub name: String,
    pub object: Value,
    pub results: usize,
}

/// A finding's result word.
pub fn result_word(severity: &str, exempted: bool) -> &'static str {
    if exempted {
        "skip"
    } else if matches!(severity, "low" | "info") {
        "warn"
    } else {
        "fail"
    }
}

/// A severity the report APIs accept (theirs are ours); anything else is left out.
fn severity(word: &str) -> Option<&str> {
    matches!(word, "critical" | "high" | "medium" | "low" | "info").then_some(word)
}

fn properties(owner: &Owner, extra: &[(&str, Option<&str>)]) -> Value {
    let mut map = Map::new();
    map.insert("assessment".into(), json!(owner.name));
    map.insert("runId".into(), json!(owner.run_id));
    for (key, value) in extra {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            map.insert((*key).to_owned(), json!(value));
        }
    }
    Value::Object(map)
}

/// One finding as a result; `title` is its check's title when known.
pub fn finding_result(owner: &Owner, row: &FindingRow, title: Option<&str>, remediation: Option<&str>) -> Value {
    let mut resource = json!({"apiVersion": row.api_version, "kind": row.kind, "name": row.name});
    if let Some(ns) = &row.namespace {
        resource["namespace"] = json!(ns);
    }
    let mut result = json!({
        "source": SOURCE,
        "policy": row.check_id,
        "category": row.pillar,
        "result": result_word(&row.severity, row.exempted),
        "scored": true,
        "message": row.message,
        "resources": [resource],
        "properties": properties(owner, &[("remediation", remediation), ("container", row.container.as_deref())]),
        "timestamp": {"seconds": owner.completed_at, "nanos": 0},
    });
    if let Some(title) = title.filter(|t| !t.is_empty()) {
        result["rule"] = json!(title);
    }
    if let Some(severity) = severity(&row.severity) {
        result["severity"] = json!(severity);
    }
    result
}

/// A check's own result when it has no finding to show: `pass` (nothing failed) or `skip`
/// (it could not run). None for a check whose findings are its results.
pub fn check_result(owner: &Owner, check: &CheckRow) -> Option<Value> {
    let word = match check.state.as_str() {
        "passing" if check.failed == 0 => "pass",
        "skipped" => "skip",
        _ => return None,
    };
    let message = match word {
        "pass" => format!("{} objects passed", check.passed),
        _ => "the check could not run: a kind it reads could not be listed".to_owned(),
    };
    let mut result = json!({
        "source": SOURCE,
        "policy": check.check_id,
        "category": check.pillar,
        "result": word,
        "scored": true,
        "message": message,
        "properties": properties(owner, &[]),
        "timestamp": {"seconds": owner.completed_at, "nanos": 0},
    });
    if !check.title.is_empty() {
        result["rule"] = json!(check.title);
    }
    if let Some(severity) = severity(&check.severity) {
        result["severity"] = json!(severity);
    }
    Some(result)
}

/// The name of part `part` (0, 1, ...) of an Assessment's reports: `kube9-<assessment>`, then
/// `-2`, `-3`, ...; a name too long for an object keeps its start and a hash of the whole.
pub fn report_name(assessment: &str, part: usize) -> String {
    let suffix = if part == 0 { String::new() } else { format!("-{}", part + 1) };
    let name = format!("kube9-{assessment}{suffix}");
    if name.len() <= 253 {
        return name;
    }
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(assessment.as_bytes())[..6]);
    format!("kube9-{}-{hash}{suffix}", &assessment[..200])
}

/// The results of one namespace (or of the cluster), cut into reports as they fill.
pub struct Splitter<'a> {
    api: ReportApi,
    owner: &'a Owner,
    namespace: Option<String>,
    budget: usize,
    results: Vec<Value>,
    bytes: usize,
    part: usize,
}

impl<'a> Splitter<'a> {
    pub fn new(api: ReportApi, owner: &'a Owner, namespace: Option<String>) -> Splitter<'a> {
        Splitter::with_budget(api, owner, namespace, MAX_REPORT_BYTES)
    }

    /// A splitter whose reports hold at most `budget` bytes of results.
    pub fn with_budget(api: ReportApi, owner: &'a Owner, namespace: Option<String>, budget: usize) -> Splitter<'a> {
        Splitter { api, owner, namespace, budget, results: Vec::new(), bytes: 0, part: 0 }
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Adds a result; a report that is full is returned, to be written, and a new one begun.
    pub fn push(&mut self, result: Value) -> Option<Report> {
        // Serializing a JSON value cannot fail.
        let size = serde_json::to_vec(&result).map_or(0, |v| v.len()) + 1;
        let full = (!self.results.is_empty() && self.bytes + size > self.budget).then(|| self.cut());
        self.bytes += size;
        self.results.push(result);
        full
    }

    /// The last report, if it holds any result.
    pub fn finish(mut self) -> Option<Report> {
        (!self.results.is_empty()).then(|| self.cut())
    }

    fn cut(&mut self) -> Report {
        let results = std::mem::take(&mut self.results);
        self.bytes = 0;
        let report = report(self.api, self.owner, self.namespace.as_deref(), self.part, results);
        self.part += 1;
        report
    }
}

/// The report object holding `results`.
pub fn report(api: ReportApi, owner: &Owner, namespace: Option<&str>, part: usize, results: Vec<Value>) -> Report {
    let mut summary = Map::new();
    for word in ["pass", "fail", "warn", "error", "skip"] {
        let n = results.iter().filter(|r| r["result"] == word).count();
        summary.insert(word.to_owned(), json!(n));
    }
    let name = report_name(&owner.name, part);
    let mut metadata = json!({
        "name": name,
        "labels": {MANAGED_BY.0: MANAGED_BY.1, ASSESSMENT_LABEL: owner.uid},
        "annotations": {"kube9.io/assessment": owner.name, "kube9.io/run-id": owner.run_id},
        "ownerReferences": [{
            "apiVersion": "kube9.io/v1alpha1",
            "kind": "Assessment",
            "name": owner.name,
            "uid": owner.uid,
        }],
    });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    let count = results.len();
    let mut object = json!({
        "apiVersion": api.api_version(),
        "kind": api.kind(namespace.is_some()),
        "metadata": metadata,
        "summary": summary,
        "results": results,
    });
    if api == ReportApi::OpenReports {
        object["source"] = json!(SOURCE);
    }
    Report { namespace: namespace.map(str::to_owned), name, object, results: count }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            name: "nightly".into(),
            uid: "1234-abcd".into(),
            run_id: "nightly-1".into(),
            completed_at: 1_700_000_000,
        }
    }

    fn row(ns: Option<&str>, severity: &str, exempted: bool) -> FindingRow {
        FindingRow {
            check_id: "security.privileged".into(),
            pillar: "security".into(),
            severity: severity.into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: ns.map(str::to_owned),
            name: "web".into(),
            container: Some("app".into()),
            message: "runs privileged".into(),
            exempted,
        }
    }

    #[test]
    fn results_follow_severity_and_exemption() {
        assert_eq!(result_word("critical", false), "fail");
        assert_eq!(result_word("medium", false), "fail");
        assert_eq!(result_word("low", false), "warn");
        assert_eq!(result_word("info", false), "warn");
        assert_eq!(result_word("high", true), "skip");
    }

    #[test]
    fn a_finding_becomes_a_result_with_its_object_and_remediation() {
        let r = finding_result(&owner(), &row(Some("shop"), "high", false), Some("Privileged"), Some("drop it"));
        assert_eq!(r["source"], "kube9");
        assert_eq!(r["policy"], "security.privileged");
        assert_eq!(r["rule"], "Privileged");
        assert_eq!(r["category"], "security");
        assert_eq!(r["severity"], "high");
        assert_eq!(r["result"], "fail");
        assert_eq!(
            r["resources"][0],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"})
        );
        assert_eq!(r["properties"]["remediation"], "drop it");
        assert_eq!(r["properties"]["container"], "app");
        assert_eq!(r["properties"]["runId"], "nightly-1");
        assert_eq!(r["timestamp"], json!({"seconds": 1_700_000_000, "nanos": 0}));
        // Every property is a string (the schema's map of strings).
        assert!(r["properties"].as_object().unwrap().values().all(Value::is_string));
    }

    #[test]
    fn checks_without_findings_pass_or_skip() {
        let check = |state: &str, failed| CheckRow {
            check_id: "reliability.replicas".into(),
            title: "Replicas".into(),
            pillar: "reliability".into(),
            severity: "medium".into(),
            state: state.into(),
            passed: 3,
            failed,
            exempted: 0,
            remediation: String::new(),
        };
        assert_eq!(check_result(&owner(), &check("passing", 0)).unwrap()["result"], "pass");
        assert_eq!(check_result(&owner(), &check("skipped", 0)).unwrap()["result"], "skip");
        assert!(check_result(&owner(), &check("failing", 2)).is_none());
        assert!(check_result(&owner(), &check("warning", 1)).is_none());
        assert!(check_result(&owner(), &check("passing", 0)).unwrap().get("resources").is_none());
    }

    #[test]
    fn reports_split_below_the_budget_and_count_their_results() {
        let owner = owner();
        let one = finding_result(&owner, &row(Some("shop"), "high", false), None, None);
        let size = serde_json::to_vec(&one).unwrap().len() + 1;
        let mut splitter = Splitter::with_budget(ReportApi::OpenReports, &owner, Some("shop".into()), size * 10);
        let mut reports = Vec::new();
        for i in 0..25 {
            let severity = if i % 5 == 0 { "low" } else { "high" };
            reports.extend(splitter.push(finding_result(&owner, &row(Some("shop"), severity, i == 1), None, None)));
        }
        reports.extend(splitter.finish());
        assert_eq!(reports.iter().map(|r| r.results).collect::<Vec<_>>(), [10, 10, 5]);
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["kube9-nightly", "kube9-nightly-2", "kube9-nightly-3"]);
        for r in &reports {
            assert!(serde_json::to_vec(&r.object["results"]).unwrap().len() <= size * 10 + 2);
            assert_eq!(r.object["kind"], "Report");
            assert_eq!(r.object["source"], "kube9");
            assert_eq!(r.object["metadata"]["namespace"], "shop");
            assert_eq!(r.object["metadata"]["labels"][ASSESSMENT_LABEL], "1234-abcd");
            assert_eq!(r.object["metadata"]["ownerReferences"][0]["uid"], "1234-abcd");
        }
        let sum = |word: &str| reports.iter().map(|r| r.object["summary"][word].as_u64().unwrap()).sum::<u64>();
        assert_eq!((sum("fail"), sum("warn"), sum("skip"), sum("pass")), (19, 5, 1, 0));
    }

    #[test]
    fn the_policy_working_group_kinds_have_no_top_level_source() {
        let owner = owner();
        let r = report(ReportApi::PolicyReports, &owner, None, 0, vec![]);
        assert_eq!(r.object["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(r.object["kind"], "ClusterPolicyReport");
        assert!(r.object.get("source").is_none());
        assert!(r.object["metadata"].get("namespace").is_none());
        assert!(Splitter::new(ReportApi::PolicyReports, &owner, None).finish().is_none(), "no empty report");
    }

    #[test]
    fn long_assessment_names_still_give_valid_report_names() {
        let long = "a".repeat(253);
        let first = report_name(&long, 0);
        let second = report_name(&long, 1);
        assert!(first.len() <= 253 && second.len() <= 253);
        assert_ne!(first, second);
        assert_eq!(report_name("x", 4), "kube9-x-5");
    }
}
