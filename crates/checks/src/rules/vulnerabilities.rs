//! Image vulnerabilities as Trivy Operator found them: its `VulnerabilityReport`s
//! (`aquasecurity.github.io`), one per workload container, read where the cluster serves them
//! ([`crate::trivy`]). Live only: manifests carry no scan. Where the kind is not served (no
//! Trivy Operator) the check is skipped and says so.

use kube9_api::common::{Pillar, Severity};

use crate::check::{Check, Run};
use crate::subject::Subject;
use crate::trivy::ImageReport;

/// What a finding says about one container's image.
pub fn message(report: &ImageReport) -> String {
    let mut counts = Vec::new();
    if report.critical > 0 {
        counts.push(format!("{} critical", report.critical));
    }
    if report.high > 0 {
        counts.push(format!("{} high", report.high));
    }
    let worst: Vec<String> = report
        .worst
        .iter()
        .map(|c| {
            let fix = c.fixed.as_deref().map_or_else(|| "no fix yet".to_owned(), |f| format!("fixed in {f}"));
            format!("{} ({} {} {}, {fix})", c.id, c.severity.to_lowercase(), c.package, c.installed)
        })
        .collect();
    let mut text = format!("image {} has {} CVEs (Trivy Operator)", report.image, counts.join(" and "));
    if !worst.is_empty() {
        text.push_str(&format!("; worst: {}", worst.join(", ")));
    }
    text
}

pub static CHECKS: &[Check] = &[Check {
    id: "security.image-vulnerabilities",
    pillar: Pillar::Security,
    title: "Images with critical or high CVEs",
    severity: Severity::High,
    rationale: "A container running an image with known critical or high vulnerabilities can be exploited with published attacks; Trivy Operator has scanned it and found them. The check lists Trivy Operator's VulnerabilityReports (list only, one per workload container; a Deployment's ReplicaSet is reported as the Deployment); where the cluster does not serve them it is skipped and says so.",
    remediation: "Rebuild or update the image to a version where the CVEs are fixed (the finding names the fixed versions Trivy knows), then roll the workload out; exempt it with kube9.io/exempt if the risk is accepted.",
    reads: &["VulnerabilityReport"],
    run: Run::Kept(|s, e| {
        for report in &s.vulnerability_reports {
            let subject = Subject::new(report.api_version, report.kind, &report.workload);
            if report.critical + report.high > 0 {
                e.fail(subject, report.container.as_deref(), message(report));
            } else {
                e.pass(subject);
            }
        }
    }),
}];

#[cfg(test)]
mod tests {
    use crate::options::Options;
    use crate::snapshot::Snapshot;
    use serde_json::json;

    fn report(kind: &str, name: &str, critical: u64, high: u64) -> serde_json::Value {
        json!({
            "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
            "metadata": {"name": format!("r-{name}"), "namespace": "shop", "labels": {
                "trivy-operator.resource.kind": kind, "trivy-operator.resource.name": name,
                "trivy-operator.resource.namespace": "shop", "trivy-operator.container.name": "app"}},
            "report": {
                "artifact": {"repository": "shop/web", "tag": "1.0"},
                "summary": {"criticalCount": critical, "highCount": high, "mediumCount": 0, "lowCount": 0, "unknownCount": 0},
                "vulnerabilities": [{"vulnerabilityID": "CVE-2024-0001", "severity": "CRITICAL", "resource": "openssl",
                    "installedVersion": "3.0.1", "fixedVersion": "3.0.8", "title": "t", "publishedDate": "", "lastModifiedDate": ""}],
            }
        })
    }

    #[test]
    fn workloads_with_critical_or_high_cves_fail_and_clean_ones_pass() {
        let mut snapshot = Snapshot { taken_at: Some(k8s_openapi::jiff::Timestamp::now()), ..Default::default() };
        for object in [report("ReplicaSet", "web-5d4f7b9c8", 2, 1), report("StatefulSet", "db", 0, 0)] {
            assert!(snapshot.add(object).is_empty());
        }
        let result = crate::engine::run(&snapshot, &Options::default())
            .results
            .into_iter()
            .find(|r| r.check.id == "security.image-vulnerabilities")
            .unwrap();
        assert_eq!(result.passed, 1);
        let [hit] = &result.failed[..] else { panic!("{:?}", result.failed) };
        assert_eq!((hit.kind, hit.name.as_str(), hit.container.as_deref()), ("Deployment", "web", Some("app")));
        assert_eq!(
            hit.message,
            "image shop/web:1.0 has 2 critical and 1 high CVEs (Trivy Operator); worst: CVE-2024-0001 (critical openssl 3.0.1, fixed in 3.0.8)"
        );
    }

    #[test]
    fn offline_the_check_is_skipped() {
        let snapshot = Snapshot::default();
        let result = crate::engine::run(&snapshot, &Options::default())
            .results
            .into_iter()
            .find(|r| r.check.id == "security.image-vulnerabilities")
            .unwrap();
        assert!(result.unavailable.is_some());
    }
}
