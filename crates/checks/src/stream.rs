//! A run over a cluster of any size, page by page: the memory it needs is the kinds it keeps
//! whole, one page, and compact facts, never every object or every finding.
//!
//! The caller first reads the kept kinds ([`crate::kinds::kept`]: Namespaces, RBAC, PDBs,
//! HPAs, NetworkPolicies, Ingresses, quotas, claims, Nodes, Argo CD…) into a [`Snapshot`] and
//! hands it to [`Stream::new`], which runs the checks over them. Then each page of a streamed
//! kind (workloads, Pods, Services, ConfigMaps) goes to [`Stream::page`]: the checks that judge
//! one object at a time run on it, its objects leave their [`Facts`], and it is dropped.
//! [`Stream::finish`] runs the checks that relate objects over the facts. Every finding goes to
//! the [`Sink`] as it is made; the run itself keeps per-check counts, the first failed objects
//! of each check and the most severe findings, which is all a status shows. The outcome is
//! the same as [`crate::run`]'s over the same objects, however they are paged.

use kube9_api::assessment::{Finding, OutcomeCounts, PillarResult, SeverityCounts};

use crate::check::{Check, CheckResult, Hit, Namespaces};
use crate::engine::{self, Found, Phase, Tally, evaluate, keep_smallest};
use crate::facts::Facts;
use crate::options::Options;
use crate::snapshot::{Skip, Snapshot};

/// Takes the findings of a run as they are made: a page's (failed and exempted) at a time.
pub trait Sink {
    fn take(&mut self, found: &[Found<'_>]);
}

impl<F: FnMut(&[Found<'_>])> Sink for F {
    fn take(&mut self, found: &[Found<'_>]) {
        self(found)
    }
}

/// A sink that drops every finding (the summary is all that is wanted).
pub fn discard(_: &[Found<'_>]) {}

/// What a run leaves: per-check counts and the findings a status shows.
#[derive(Clone, Debug)]
pub struct Summary {
    /// One per check run, in registry order.
    pub checks: Vec<Tally>,
    /// The failed findings, most severe first, then the exempted ones (marked), at most the
    /// number asked for.
    pub findings: Vec<Finding>,
    /// Findings left out of `findings`.
    pub truncated: u32,
}

impl Summary {
    pub fn totals(&self) -> OutcomeCounts {
        engine::totals(&self.checks)
    }

    pub fn by_severity(&self) -> SeverityCounts {
        engine::by_severity(&self.checks)
    }

    pub fn pillars(&self) -> Vec<PillarResult> {
        engine::pillars(&self.checks)
    }

    pub fn score(&self) -> u8 {
        engine::overall_score(&self.checks)
    }
}

impl engine::Report {
    /// The report as a streamed run would leave it, with at most `max` findings.
    pub fn summary(&self, max: usize) -> Summary {
        let all: Vec<Found<'_>> = self.findings().into_iter().chain(self.exempted()).collect();
        Summary {
            checks: self.tallies(),
            findings: all.iter().take(max).map(Found::finding).collect(),
            truncated: all.len().saturating_sub(max) as u32,
        }
    }
}

/// A finding kept for the summary.
struct Ranked {
    /// The check's place among those run (registry order).
    rank: usize,
    check: &'static Check,
    hit: Hit,
}

impl Ranked {
    fn found(&self, exempted: bool) -> Found<'_> {
        Found { check: self.check, hit: &self.hit, exempted }
    }
}

/// A run in progress.
pub struct Stream<S: Sink> {
    options: Options,
    checks: Vec<&'static Check>,
    snapshot: Snapshot,
    namespaces: Namespaces,
    facts: Facts,
    tallies: Vec<Tally>,
    max_findings: usize,
    failed: Vec<Ranked>,
    exempted: Vec<Ranked>,
    sink: S,
}

impl<S: Sink> Stream<S> {
    /// Starts a run over `kept`, a snapshot of the kept kinds (with the kinds that could not be
    /// read, streamed ones included, in `unavailable`), keeping at most `max_findings`
    /// findings for the summary. The checks over the kept kinds run now.
    pub fn new(options: Options, kept: Snapshot, max_findings: usize, sink: S) -> Stream<S> {
        let checks: Vec<&'static Check> = options.selected().collect();
        let tallies = checks.iter().map(|&c| Tally::new(c)).collect();
        let mut stream = Stream {
            namespaces: Namespaces::of(&kept),
            options,
            checks,
            snapshot: kept,
            facts: Facts::default(),
            tallies,
            max_findings,
            failed: Vec::new(),
            exempted: Vec::new(),
            sink,
        };
        stream.pass(Phase::Kept);
        // Objects of the kept kinds that were written in old API versions have been judged
        // (and streamed objects, should the snapshot hold some, leave their facts as a page's).
        stream.facts.add(&stream.snapshot);
        stream.snapshot.clear_streamed();
        stream
    }

    /// Checks one page of streamed objects (in any served version; a `List` adds its items),
    /// then drops it. Objects of a kept kind are refused: they must come before any page.
    pub fn page(&mut self, objects: impl IntoIterator<Item = serde_json::Value>) -> Vec<Skip> {
        let mut skipped = Vec::new();
        for object in objects {
            match object.get("kind").and_then(|k| k.as_str()) {
                Some(kind) if crate::kinds::kept(kind) => skipped.push(Skip::Invalid {
                    kind: kind.to_owned(),
                    name: object.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default().to_owned(),
                    why: "a kind the run keeps whole must be read before any page".into(),
                    field: None,
                }),
                _ => skipped.extend(self.snapshot.add(object)),
            }
        }
        self.pass(Phase::Page);
        self.facts.add(&self.snapshot);
        self.snapshot.clear_streamed();
        skipped
    }

    /// Objects the run holds besides the page in hand: the kept kinds and the facts' records.
    pub fn held(&self) -> usize {
        self.snapshot.len() + self.facts.len()
    }

    /// Runs the checks that relate objects, and returns the outcome.
    pub fn finish(mut self) -> Summary {
        self.pass(Phase::End);
        let findings = self
            .failed
            .iter()
            .map(|r| r.found(false).finding())
            .chain(self.exempted.iter().map(|r| r.found(true).finding()))
            .take(self.max_findings)
            .collect();
        let all: u32 = self.tallies.iter().map(|t| t.failed + t.exempted).sum();
        Summary { checks: self.tallies, findings, truncated: all.saturating_sub(self.max_findings as u32) }
    }

    /// Runs the checks `phase` calls over the snapshot as it is, and records their outcomes.
    fn pass(&mut self, phase: Phase) {
        let results: Vec<CheckResult> = self
            .checks
            .iter()
            .map(|&check| evaluate(check, &self.snapshot, &self.facts, &self.namespaces, &self.options, phase))
            .collect();
        let found: Vec<Found<'_>> = results
            .iter()
            .flat_map(|r| {
                let failed = r.failed.iter().map(|hit| Found { check: r.check, hit, exempted: false });
                failed.chain(r.exempted.iter().map(|hit| Found { check: r.check, hit, exempted: true }))
            })
            .collect();
        if !found.is_empty() {
            self.sink.take(&found);
        }
        for (rank, (result, tally)) in results.iter().zip(&mut self.tallies).enumerate() {
            tally.add(result);
            let check = result.check;
            let own = |hit: &Hit| Ranked { rank, check, hit: hit.clone() };
            keep_smallest(
                &mut self.failed,
                &result.failed,
                self.max_findings,
                |hit, kept| Found { check, hit, exempted: false }.order(&kept.found(false)),
                own,
            );
            keep_smallest(
                &mut self.exempted,
                &result.exempted,
                self.max_findings,
                |hit, kept| rank.cmp(&kept.rank).then_with(|| hit.order(&kept.hit)),
                own,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::options::Options;
    use crate::subject::EXEMPT_ANNOTATION;
    use crate::testing::*;

    /// A small cluster that exercises every form of check: objects judged alone, looked up in
    /// kept kinds, and related to each other across pages.
    fn cluster() -> Vec<Value> {
        let owned =
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d1", "controller": true}]);
        let mut objects = vec![
            namespace(json!({})),
            namespace(json!({"metadata": {"name": "lab", "annotations": {EXEMPT_ANNOTATION: "security"}}})),
            namespace(json!({"metadata": {"name": "quiet"}})),
            pdb(json!({})),
            pdb(json!({"maxUnavailable": 0})),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "gone", "namespace": "shop"},
                   "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "gone"}, "minReplicas": 2, "maxReplicas": 2}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "api", "namespace": "shop"},
                   "spec": {"podSelector": {"matchLabels": {"app": "api"}}}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "typo", "namespace": "shop"},
                   "spec": {"podSelector": {"matchLabels": {"app": "wbe"}}}}),
            json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"serviceName": "web", "servicePort": 80}},
                                                           {"path": "/x", "backend": {"serviceName": "web", "servicePort": "admin"}},
                                                           {"path": "/y", "backend": {"serviceName": "nowhere", "servicePort": 80}}]}}]}}),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "shop"}}),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-db-0", "namespace": "shop"}}),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "orphan", "namespace": "shop"}}),
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "shop"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "all"},
                   "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ci"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                   "subjects": [{"kind": "Group", "name": "system:authenticated"}]}),
        ];
        // Workloads: good and bad, in three namespaces, one mounting a claim, one scaled.
        objects.push(deployment_with_container(json!({"securityContext": {"privileged": true}})));
        objects.push(deployment(
            pod_spec(json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]})),
            json!({"metadata": {"name": "api"}, "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "api"}}}}}),
        ));
        objects.push(deployment(
            pod_spec(json!({"containers": [container(json!({"image": "lab/x:latest", "securityContext": {"privileged": true}}))]})),
            json!({"metadata": {"name": "x", "namespace": "lab"}}),
        ));
        objects.push(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec(json!({}))},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}),
        );
        objects.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "shop", "ownerReferences": owned},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(json!({}))}}}));
        objects.push(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod_spec(json!({"restartPolicy": "Never"}))}}}}}));
        for i in 0..6 {
            objects.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("debug-{i}"), "namespace": if i % 2 == 0 { "shop" } else { "quiet" }, "labels": {"run": format!("debug-{}", i % 3)}},
                "spec": pod_spec(json!({"hostNetwork": i == 4}))}));
        }
        objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1-a", "namespace": "shop", "ownerReferences": owned},
            "spec": pod_spec(json!({}))}));
        // Services: selecting a template, a bare Pod, a controller's label, and nothing.
        for (name, selector) in [
            ("web", json!({"app": "web"})),
            ("debug", json!({"run": "debug-1"})),
            ("db-0", json!({"statefulset.kubernetes.io/pod-name": "db-0"})),
            ("stale", json!({"app": "gone"})),
            ("headless", json!({})),
        ] {
            objects.push(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
                "spec": {"selector": selector, "type": if name == "debug" { "NodePort" } else { "ClusterIP" },
                         "ports": [{"port": 80, "name": "http"}]}}),
            );
        }
        objects.push(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
            "data": {"DB_PASSWORD": "hunter2", "LOG_LEVEL": "info"}}),
        );
        objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine", "namespace": "lab"}, "data": {"a": "b"}}));
        objects
    }

    #[test]
    fn a_streamed_run_finds_what_the_whole_snapshot_run_finds_across_page_boundaries() {
        let report = assert_streams_alike(&cluster(), &[1, 2, 3, 7, 1000], &Options::default(), 100);
        // The fixture exercises what it is meant to: objects related across pages, exemptions
        // from a kept Namespace, and findings on kept objects.
        let failed = |id: &str| report.results.iter().find(|r| r.check.id == id).unwrap().failed.len();
        for (id, n) in [
            ("reliability.service-endpoints", 1),
            ("reliability.hpa-target", 1),
            ("reliability.ingress-backend", 1),
            ("cost-optimization.unused-volume-claim", 1),
            ("security.network-policy-selects-nothing", 1),
            ("security.network-policy", 1),
            ("security.privileged", 1),
            ("security.secret-in-configmap", 1),
            ("reliability.bare-pod", 6),
            ("security.rbac-broad-groups", 1),
            ("operational-excellence.removed-api-version", 1),
        ] {
            assert_eq!(failed(id), n, "{id}");
        }
        assert!(report.exempted().count() > 0);
    }

    #[test]
    fn only_the_bounded_findings_and_counts_are_kept() {
        let objects = cluster();
        for max in [0, 1, 5, 40] {
            assert_streams_alike(&objects, &[1, 4], &Options::default(), max);
        }
        let only = Options {
            include_namespaces: vec!["shop".into()],
            exclude_checks: vec!["security".into()],
            ..Options::default()
        };
        assert_streams_alike(&objects, &[1, 5], &only, 100);
    }

    #[test]
    fn a_kind_that_could_not_be_read_skips_its_checks_in_a_streamed_run_too() {
        let mut objects = cluster();
        objects.retain(|o| o["kind"] != "ConfigMap");
        // Read from a cluster: the checks that need one run (and only ConfigMap's are skipped).
        let mut kept =
            crate::Snapshot { taken_at: Some(k8s_openapi::jiff::Timestamp::now()), ..crate::Snapshot::default() };
        kept.unavailable.push("ConfigMap".into());
        let mut stream = super::Stream::new(Options::default(), kept, 10, super::discard);
        assert!(stream.page(vec![namespace(json!({}))]).len() == 1, "a kept kind in a page is refused");
        let summary = stream.finish();
        let secrets = summary.checks.iter().find(|t| t.check.id == "security.secret-in-configmap").unwrap();
        assert_eq!(secrets.unavailable.as_deref(), Some("could not read ConfigMap"));
        assert_eq!(summary.totals().errored, 1);
    }

    /// The real-world corpus (`../shared/fixtures/realcorpus`: 2,500 documents from 25
    /// projects), when present beside the project: the same findings in pages of 1, 10 and 100
    /// as all at once.
    #[test]
    fn the_real_corpus_streams_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/realcorpus");
        if !dir.is_dir() {
            eprintln!("skipped: no ../shared/fixtures/realcorpus beside the project");
            return;
        }
        let mut files = Vec::new();
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut objects = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for document in serde_yaml::Deserializer::from_str(&text) {
                let Ok(value) = <Value as serde::Deserialize>::deserialize(document) else { continue };
                let items = match value.get("items").and_then(|i| i.as_array()) {
                    Some(items) if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) => items.clone(),
                    _ => vec![value],
                };
                for mut item in items.into_iter().filter(|i| i.get("kind").is_some()) {
                    let id = objects.len();
                    let meta = item.as_object_mut().map(|o| o.entry("metadata").or_insert_with(|| json!({})));
                    if let Some(meta) = meta.and_then(|m| m.as_object_mut()) {
                        meta.insert("uid".into(), format!("{}{id}", crate::subject::SOURCE_UID_PREFIX).into());
                    }
                    objects.push(item);
                }
            }
        }
        assert!(objects.len() > 2000, "{} objects", objects.len());
        let report = assert_streams_alike(&objects, &[1, 10, 100], &Options::default(), 100);
        assert!(report.totals().failed > 1000, "{:?}", report.totals());
    }
}
