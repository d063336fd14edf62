//! Observability: accelerator metrics on every accelerator Node, and a monitoring system
//! that collects the AI services' metrics.

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::accelerators::{accelerators, node_summary};
use super::finding::{Finding, describe_all, finding, named, served_groups, unmet, unreadable};
use crate::evidence::{Evidence, Workload};
use crate::solutions::{ACCELERATOR_EXPORTERS, MONITORING};

pub(super) fn accelerator_metrics(level: Level, evidence: &Evidence) -> Finding {
    let nodes = match accelerators(evidence) {
        Ok(nodes) => nodes,
        Err(f) => return f,
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let exporters: Vec<&Workload> =
        ACCELERATOR_EXPORTERS.iter().flat_map(|s| s.workloads(workloads)).filter(|w| w.kind == "DaemonSet").collect();
    if exporters.is_empty() {
        return finding(
            unmet(level),
            format!(
                "no accelerator metrics exporter DaemonSet (DCGM Exporter, AMD Device Metrics Exporter, …) runs for the {}",
                node_summary(&nodes)
            ),
            vec![],
        );
    }
    let covered = exporters.iter().map(|w| w.ready).max().unwrap_or(0);
    let seen = describe_all(&exporters);
    if exporters.iter().any(|w| w.available) && covered >= nodes.len() as i64 {
        return finding(
            Status::Passed,
            format!("{} ready on at least as many Nodes as the {}", named(seen.iter().cloned()), node_summary(&nodes)),
            seen,
        );
    }
    finding(
        unmet(level),
        format!(
            "the exporter runs on {covered} Nodes, fewer than the {}: {}",
            node_summary(&nodes),
            named(seen.iter().cloned())
        ),
        seen,
    )
}

pub(super) fn ai_service_metrics(level: Level, evidence: &Evidence) -> Finding {
    let served = match served_groups(evidence) {
        Ok(s) => s,
        Err(why) => return unreadable("the served API groups", why),
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let mut apis = Vec::new();
    let mut broken = Vec::new();
    for s in MONITORING {
        let controllers = s.workloads(workloads);
        let groups = s.served_groups(&served);
        if let Some(running) = controllers.iter().find(|w| w.available) {
            let discovery =
                if groups.is_empty() { String::new() } else { format!(", discovery through {}", groups.join(", ")) };
            return finding(
                Status::Passed,
                format!("{} collects metrics: {}{discovery}", s.name, running.describe()),
                describe_all(&controllers),
            );
        }
        if !controllers.is_empty() {
            broken.push(format!("{}: {}", s.name, named(describe_all(&controllers))));
        }
        if !groups.is_empty() {
            apis.push(format!("{} ({})", s.name, groups.join(", ")));
        }
    }
    if !broken.is_empty() {
        return finding(unmet(level), format!("the monitoring system is not available: {}", broken.join("; ")), broken);
    }
    if !apis.is_empty() {
        return finding(
            Status::NeedsEvidence,
            format!(
                "{} APIs are served but no collector runs in the cluster (a managed one runs outside it): attest it",
                named(apis.iter().cloned())
            ),
            apis,
        );
    }
    finding(
        unmet(level),
        "no monitoring system was found (looked for Prometheus, the OpenTelemetry Collector, VictoriaMetrics, Grafana Alloy and managed collectors)",
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::fixtures::*;
    use crate::evidence::Seen;

    #[test]
    fn accelerator_metrics_need_an_exporter_on_every_accelerator_node() {
        let exporter = |desired, ready| {
            Seen::Read(vec![workload(
                "DaemonSet",
                "gpu-operator",
                "nvidia-dcgm-exporter",
                "nvcr.io/nvidia/k8s/dcgm-exporter:4.2",
                desired,
                ready,
            )])
        };
        assert_eq!(
            status("accelerator_metrics", Level::Must, &Evidence { workloads: exporter(4, 4), ..with_gpus(4) }).0,
            Status::Passed
        );
        let (s, why) =
            status("accelerator_metrics", Level::Must, &Evidence { workloads: exporter(4, 2), ..with_gpus(4) });
        assert_eq!(s, Status::Failed);
        assert!(why.contains("runs on 2 Nodes, fewer than the 4 accelerator Nodes"), "{why}");
        let (s, why) = status("accelerator_metrics", Level::Must, &with_gpus(4));
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no accelerator metrics exporter"), "{why}");
    }

    #[test]
    fn ai_service_metrics_need_a_running_collector() {
        let prometheus = |ready| {
            Seen::Read(vec![
                workload(
                    "StatefulSet",
                    "monitoring",
                    "prometheus-k8s",
                    "quay.io/prometheus/prometheus:v3.5.0",
                    2,
                    ready,
                ),
                workload(
                    "Deployment",
                    "monitoring",
                    "prometheus-adapter",
                    "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12",
                    1,
                    1,
                ),
            ])
        };
        let groups = served(&[("monitoring.coreos.com", group(&[("v1", &[])]))]);
        let (s, why) = status(
            "ai_service_metrics",
            Level::Must,
            &Evidence { groups: groups.clone(), workloads: prometheus(2), ..without_gpus() },
        );
        assert_eq!(s, Status::Passed);
        assert!(
            why.contains("StatefulSet monitoring/prometheus-k8s (2/2 ready), discovery through monitoring.coreos.com"),
            "{why}"
        );
        let (s, why) = status(
            "ai_service_metrics",
            Level::Must,
            &Evidence { groups: groups.clone(), workloads: prometheus(0), ..without_gpus() },
        );
        assert_eq!(s, Status::Failed);
        assert!(
            why.contains("prometheus-k8s") && !why.contains("prometheus-adapter"),
            "the adapter is not a collector: {why}"
        );
        assert_eq!(
            status("ai_service_metrics", Level::Must, &Evidence { groups, ..without_gpus() }).0,
            Status::NeedsEvidence
        );
        assert_eq!(
            status("ai_service_metrics", Level::Must, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::Failed
        );
    }
}
