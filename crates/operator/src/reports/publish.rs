//! Publishes a completed run's findings, every one of them as the store keeps them, as policy
//! reports of whichever API the cluster serves ([`ReportApi`]: openreports.io first), one
//! namespace at a time; then deletes the Assessment's reports the run did not write, so a run
//! replaces the previous one's. The reports are owned by the Assessment: the garbage collector
//! removes them with it. Only the leader calls this (the Assessment controller runs on it).

use std::collections::BTreeSet;
use std::time::Instant;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube9_api::assessment::ReportsPublished;
use kube9_store::{CheckRow, FindingRow};

use super::build::{ASSESSMENT_LABEL, Owner, Report, ReportApi, Splitter, check_result, finding_result};
use crate::base::apply::FIELD_MANAGER;
use crate::base::metrics::Metrics;
use crate::base::truncate;
use crate::history::writer::Recorder;

/// Findings handed from the store's reading thread per message.
const CHUNK: usize = 500;

/// The report API the cluster serves, preferred first; None when it serves neither.
pub async fn served(client: &kube::Client) -> Result<Option<ReportApi>, kube::Error> {
    for api in ReportApi::ALL {
        match client.list_api_group_resources(&api.api_version()).await {
            Ok(list) => {
                let has = |plural: &str| list.resources.iter().any(|r| r.name == plural);
                if has(api.plural(true)) && has(api.plural(false)) {
                    return Ok(Some(api));
                }
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn resource(api: ReportApi, namespaced: bool) -> ApiResource {
    let gvk = GroupVersionKind::gvk(api.group(), api.version(), api.kind(namespaced));
    ApiResource::from_gvk_with_plural(&gvk, api.plural(namespaced))
}

/// Publishes the latest run of `owner` (its findings must be in the store: the run's writer has
/// finished) and returns what its status says about it.
pub async fn publish(client: &kube::Client, history: &Recorder, metrics: &Metrics, owner: &Owner) -> ReportsPublished {
    let started = Instant::now();
    let nothing = |reason: String| ReportsPublished { reason: Some(truncate(&reason, 1000)), ..Default::default() };
    let api = match served(client).await {
        Ok(Some(api)) => api,
        Ok(None) => {
            return nothing(
                "the cluster serves neither openreports.io/v1alpha1 (Report, ClusterReport) nor \
                 wgpolicyk8s.io/v1alpha2 (PolicyReport, ClusterPolicyReport): no report is written"
                    .into(),
            );
        }
        Err(e) => return nothing(format!("cannot read the report APIs the cluster serves: {e}")),
    };
    if !history.flush().await {
        return nothing(
            "the operator keeps no store (no --data-dir), so it has not every finding to publish: no report is written"
                .into(),
        );
    }
    let mut publisher = Publisher::new(client, api, owner, metrics);
    let read = publisher.write_all(history).await;
    let (cleanup, deleted) = publisher.delete_others().await;
    let mut reasons: Vec<String> = publisher.errors.iter().take(3).cloned().collect();
    if publisher.errors.len() > 3 {
        reasons.push(format!("and {} more writes failed", publisher.errors.len() - 3));
    }
    reasons.extend(read.err());
    reasons.extend(cleanup.err());
    let written = publisher.written.len() as u32;
    tracing::info!(
        api = %api.api_version(),
        reports = written,
        results = publisher.results,
        deleted,
        writes = publisher.writes,
        seconds = started.elapsed().as_secs_f64(),
        "policy reports published"
    );
    metrics.reports_published(reasons.is_empty(), started.elapsed().as_secs_f64());
    ReportsPublished {
        api_version: Some(api.api_version()),
        reports: written,
        results: publisher.results,
        reason: (!reasons.is_empty()).then(|| truncate(&reasons.join("; "), 1000)),
    }
}

struct Publisher<'a> {
    client: &'a kube::Client,
    api: ReportApi,
    owner: &'a Owner,
    metrics: &'a Metrics,
    /// (namespace, name) of every report written.
    written: BTreeSet<(Option<String>, String)>,
    results: u64,
    writes: u64,
    errors: Vec<String>,
}

/// What the store's reading thread sends.
enum Read {
    Checks(Vec<CheckRow>),
    Findings(Vec<(FindingRow, Option<String>)>),
}

impl<'a> Publisher<'a> {
    fn new(client: &'a kube::Client, api: ReportApi, owner: &'a Owner, metrics: &'a Metrics) -> Publisher<'a> {
        Publisher { client, api, owner, metrics, written: BTreeSet::new(), results: 0, writes: 0, errors: Vec::new() }
    }

    /// Reads the run's findings from the store on a blocking thread, namespace by namespace,
    /// and writes each report as it fills.
    async fn write_all(&mut self, history: &Recorder) -> Result<(), String> {
        let Some(reader) = history.reader() else {
            return Err("the operator keeps no store".into());
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Read>(2);
        let name = self.owner.name.clone();
        let run_id = self.owner.run_id.clone();
        let reading = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let reader = reader.map_err(|e| format!("cannot read the store: {e}"))?;
            let runs = reader.history(&name, 1).map_err(|e| format!("cannot read the run from the store: {e}"))?;
            let run = runs.into_iter().next().ok_or("the store has no run of this Assessment")?;
            if run.run_id != run_id || !run.findings_kept {
                return Err(format!(
                    "the store does not hold every finding of run {run_id} (it could not keep them all): no report is written"
                ));
            }
            if tx.blocking_send(Read::Checks(run.checks)).is_err() {
                return Ok(());
            }
            let mut chunk = Vec::with_capacity(CHUNK);
            let kept = reader
                .findings_by_namespace(&name, &mut |row, remediation| {
                    chunk.push((row, remediation));
                    if chunk.len() == CHUNK {
                        return tx.blocking_send(Read::Findings(std::mem::take(&mut chunk))).is_ok();
                    }
                    true
                })
                .map_err(|e| format!("cannot read the findings from the store: {e}"))?;
            if kept.run_id != run_id {
                return Err(format!("the store's findings changed to run {} while they were read", kept.run_id));
            }
            let _ = tx.blocking_send(Read::Findings(chunk));
            Ok(())
        });
        let mut titles = std::collections::HashMap::new();
        let mut cluster = Splitter::new(self.api, self.owner, None);
        let mut namespaced: Option<Splitter<'a>> = None;
        let mut complete = true;
        while let Some(read) = rx.recv().await {
            match read {
                Read::Checks(checks) => {
                    for check in &checks {
                        if let Some(full) = check_result(self.owner, check).and_then(|r| cluster.push(r)) {
                            self.write(full).await;
                        }
                        titles.insert(check.check_id.clone(), check.title.clone());
                    }
                }
                Read::Findings(rows) => {
                    for (row, remediation) in rows {
                        let title = titles.get(&row.check_id).map(String::as_str);
                        let result = finding_result(self.owner, &row, title, remediation.as_deref());
                        let full = match &row.namespace {
                            None => cluster.push(result),
                            Some(ns) => {
                                if namespaced.as_ref().and_then(Splitter::namespace) != Some(ns.as_str()) {
                                    if let Some(last) = namespaced.take().and_then(Splitter::finish) {
                                        self.write(last).await;
                                    }
                                    namespaced = Some(Splitter::new(self.api, self.owner, Some(ns.clone())));
                                }
                                namespaced.as_mut().and_then(|s| s.push(result))
                            }
                        };
                        if let Some(full) = full {
                            self.write(full).await;
                        }
                    }
                }
            }
        }
        match reading.await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                complete = false;
                self.errors.push(why);
            }
            Err(e) => {
                complete = false;
                self.errors.push(format!("the store's reader stopped: {e}"));
            }
        }
        if !complete {
            // Nothing more is written, and what was written stays until a run publishes whole.
            self.written.clear();
            return Err("the reports are incomplete".into());
        }
        for last in [namespaced.and_then(Splitter::finish), cluster.finish()].into_iter().flatten() {
            self.write(last).await;
        }
        Ok(())
    }

    /// Server-side applies one report.
    async fn write(&mut self, report: Report) {
        let Report { namespace, name, object, results } = report;
        let resource = resource(self.api, namespace.is_some());
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        self.writes += 1;
        match api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await {
            Ok(_) => {
                self.results += results as u64;
                self.written.insert((namespace, name));
                self.metrics.report_write(true);
            }
            Err(e) => {
                self.metrics.report_write(false);
                let place = namespace.map_or_else(|| "the cluster".to_owned(), |ns| format!("namespace {ns}"));
                self.errors.push(format!("cannot write the report {name} in {place}: {e}"));
            }
        }
    }

    /// Deletes this Assessment's reports that this run did not write (of both scopes): a run
    /// replaces the previous run's reports. Returns how many went.
    async fn delete_others(&mut self) -> (Result<(), String>, u64) {
        if self.written.is_empty() && !self.errors.is_empty() {
            // A run whose reports could not be written leaves the previous ones in place.
            return (Ok(()), 0);
        }
        let selector = format!("{ASSESSMENT_LABEL}={}", self.owner.uid);
        let mut deleted = 0;
        for namespaced in [true, false] {
            let resource = resource(self.api, namespaced);
            let all: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
            let listed = match all.list_metadata(&ListParams::default().labels(&selector)).await {
                Ok(listed) => listed,
                Err(e) => return (Err(format!("cannot list the previous reports: {e}")), deleted),
            };
            for old in listed.items {
                let (ns, name) = (old.metadata.namespace.clone(), old.metadata.name.clone().unwrap_or_default());
                if self.written.contains(&(ns.clone(), name.clone())) {
                    continue;
                }
                let api: Api<DynamicObject> = match &ns {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
                    None => Api::all_with(self.client.clone(), &resource),
                };
                self.writes += 1;
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => deleted += 1,
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => self.errors.push(format!("cannot delete the previous report {name}: {e}")),
                }
            }
        }
        (Ok(()), deleted)
    }
}
