//! Trivy Operator's `VulnerabilityReport` (`aquasecurity.github.io/v1alpha1`), one per workload
//! container, as the image-vulnerability check reads it: kept compact (the workload, the image,
//! the critical and high counts and the worst few CVEs), since a report lists every
//! vulnerability of the image and a cluster holds one per container.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// The worst CVEs a finding names.
pub const WORST: usize = 3;

/// One CVE of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cve {
    pub id: String,
    /// CRITICAL or HIGH.
    pub severity: String,
    pub package: String,
    pub installed: String,
    /// The version that fixes it, when there is one.
    pub fixed: Option<String>,
}

/// One report: what Trivy found in one container's image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageReport {
    /// The workload the report is about (its name and namespace; a Deployment's ReplicaSet is
    /// named as the Deployment).
    pub workload: ObjectMeta,
    pub api_version: &'static str,
    pub kind: &'static str,
    pub container: Option<String>,
    /// `registry/repository:tag`.
    pub image: String,
    pub critical: u64,
    pub high: u64,
    /// The worst CVEs, critical first, those with a fix first within a severity.
    pub worst: Vec<Cve>,
}

/// The workload kinds Trivy Operator scans, as findings name them.
fn workload_kind(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Deployment" => ("apps/v1", "Deployment"),
        "ReplicaSet" => ("apps/v1", "ReplicaSet"),
        "StatefulSet" => ("apps/v1", "StatefulSet"),
        "DaemonSet" => ("apps/v1", "DaemonSet"),
        "Job" => ("batch/v1", "Job"),
        "CronJob" => ("batch/v1", "CronJob"),
        "Pod" => ("v1", "Pod"),
        "ReplicationController" => ("v1", "ReplicationController"),
        _ => return None,
    })
}

/// A ReplicaSet's Deployment: its name less the pod-template hash the Deployment controller
/// appends (`web-5d4f7b9c8` → `web`); None for a name without one.
pub fn deployment_of(replica_set: &str) -> Option<&str> {
    let (deployment, hash) = replica_set.rsplit_once('-')?;
    let hashlike = (6..=10).contains(&hash.len())
        && hash.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        && !deployment.is_empty();
    hashlike.then_some(deployment)
}

/// The compact record of a VulnerabilityReport object.
pub fn read(object: &Value) -> Result<ImageReport, String> {
    let label = |key: &str| object.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str);
    let namespace = label("trivy-operator.resource.namespace")
        .or_else(|| object.pointer("/metadata/namespace").and_then(Value::as_str))
        .ok_or("no namespace")?;
    let kind = label("trivy-operator.resource.kind").ok_or("no trivy-operator.resource.kind label")?;
    let name = label("trivy-operator.resource.name").ok_or("no trivy-operator.resource.name label")?;
    let (mut api_version, mut kind) = workload_kind(kind).ok_or_else(|| format!("a report about a {kind}"))?;
    let mut name = name.to_owned();
    if kind == "ReplicaSet"
        && let Some(deployment) = deployment_of(&name)
    {
        (api_version, kind) = ("apps/v1", "Deployment");
        name = deployment.to_owned();
    }
    let report = object.get("report").ok_or("no report")?;
    let text = |pointer: &str| report.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let count = |key: &str| report.pointer(&format!("/summary/{key}")).and_then(Value::as_u64).unwrap_or(0);
    let mut image = text("/artifact/repository").to_owned();
    if image.is_empty() {
        return Err("no report.artifact.repository".into());
    }
    let server = text("/registry/server");
    if !server.is_empty() {
        image = format!("{server}/{image}");
    }
    let tag = text("/artifact/tag");
    if !tag.is_empty() {
        image = format!("{image}:{tag}");
    }
    let mut worst: Vec<Cve> = report
        .get("vulnerabilities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let severity = v.get("severity").and_then(Value::as_str)?;
            if !matches!(severity, "CRITICAL" | "HIGH") {
                return None;
            }
            let field = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
            let fixed = field("fixedVersion");
            Some(Cve {
                id: field("vulnerabilityID"),
                severity: severity.to_owned(),
                package: field("resource"),
                installed: field("installedVersion"),
                fixed: (!fixed.is_empty()).then_some(fixed),
            })
        })
        .collect();
    worst.sort_by(|a, b| {
        (a.severity != "CRITICAL", a.fixed.is_none(), &a.id).cmp(&(b.severity != "CRITICAL", b.fixed.is_none(), &b.id))
    });
    worst.dedup_by(|a, b| a.id == b.id);
    worst.truncate(WORST);
    Ok(ImageReport {
        workload: ObjectMeta { name: Some(name), namespace: Some(namespace.to_owned()), ..Default::default() },
        api_version,
        kind,
        container: label("trivy-operator.container.name").map(str::to_owned),
        image,
        critical: count("criticalCount"),
        high: count("highCount"),
        worst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn report(kind: &str, name: &str, critical: u64, high: u64, vulns: Value) -> Value {
        json!({
            "apiVersion": "aquasecurity.github.io/v1alpha1",
            "kind": "VulnerabilityReport",
            "metadata": {"name": format!("{}-{name}-app", kind.to_lowercase()), "namespace": "shop", "labels": {
                "trivy-operator.resource.kind": kind, "trivy-operator.resource.name": name,
                "trivy-operator.resource.namespace": "shop", "trivy-operator.container.name": "app"}},
            "report": {
                "artifact": {"repository": "library/nginx", "tag": "1.21.0"},
                "registry": {"server": "index.docker.io"},
                "summary": {"criticalCount": critical, "highCount": high, "mediumCount": 4, "lowCount": 9, "unknownCount": 0},
                "vulnerabilities": vulns,
            }
        })
    }

    fn cve(id: &str, severity: &str, fixed: &str) -> Value {
        json!({"vulnerabilityID": id, "severity": severity, "resource": "openssl", "installedVersion": "1.1.1k",
               "fixedVersion": fixed, "title": "t", "publishedDate": "", "lastModifiedDate": ""})
    }

    #[test]
    fn a_replica_sets_report_is_about_its_deployment_with_the_worst_cves_first() {
        let vulns = json!([
            cve("CVE-2021-0003", "HIGH", "1.1.1l"),
            cve("CVE-2021-0002", "CRITICAL", ""),
            cve("CVE-2021-0001", "CRITICAL", "1.1.1l"),
            cve("CVE-2021-0009", "MEDIUM", "1.1.1l"),
            cve("CVE-2021-0004", "HIGH", ""),
        ]);
        let r = read(&report("ReplicaSet", "web-5d4f7b9c8", 2, 2, vulns)).unwrap();
        assert_eq!((r.kind, r.api_version, r.workload.name.as_deref()), ("Deployment", "apps/v1", Some("web")));
        assert_eq!(r.image, "index.docker.io/library/nginx:1.21.0");
        assert_eq!((r.critical, r.high, r.container.as_deref()), (2, 2, Some("app")));
        let ids: Vec<&str> = r.worst.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2021-0001", "CVE-2021-0002", "CVE-2021-0003"]);
        assert_eq!(r.worst[0].fixed.as_deref(), Some("1.1.1l"));
        assert_eq!(r.worst[1].fixed, None);
    }

    #[test]
    fn other_workloads_keep_their_kind_and_bad_reports_are_refused() {
        let r = read(&report("StatefulSet", "db", 0, 1, json!([]))).unwrap();
        assert_eq!((r.kind, r.workload.name.as_deref()), ("StatefulSet", Some("db")));
        let r = read(&report("ReplicaSet", "standalone", 0, 0, json!([]))).unwrap();
        assert_eq!(r.kind, "ReplicaSet", "no pod-template hash: the ReplicaSet itself");
        assert!(read(&report("Node", "n1", 0, 0, json!([]))).is_err());
        assert!(read(&json!({"metadata": {"name": "x"}})).is_err());
    }

    #[test]
    fn deployment_names_come_from_the_pod_template_hash() {
        assert_eq!(deployment_of("web-5d4f7b9c8"), Some("web"));
        assert_eq!(deployment_of("api-server-7c9f6d"), Some("api-server"));
        assert_eq!(deployment_of("web"), None);
        assert_eq!(deployment_of("web-Frontend1"), None);
    }
}
