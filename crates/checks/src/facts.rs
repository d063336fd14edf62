//! What the streamed objects (workloads, Pods, Services) leave behind for the checks that relate
//! objects to each other ([`crate::check::Run::Related`]), once their page is dropped: a few
//! compact records, never the objects. Label sets are interned: the Pods of one template, and
//! the many objects labelled alike, share one copy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::pods::{containers, pod_owners, requests};
use crate::snapshot::{Snapshot, WorkloadKind, scales};
use crate::subject::{EXEMPT_ANNOTATION, SOURCE_UID_PREFIX};

/// A set of labels (or a Service's selector).
pub type Labels = BTreeMap<String, String>;

/// An interned label set: an index into [`Facts::labels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSet(u32);

/// The metadata a finding about an object needs: what names it, and its exemption.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    /// Only the offline reader's source uid (`kube9.io/source/<n>`).
    pub uid: Option<String>,
    /// The `kube9.io/exempt` annotation.
    pub exempt: Option<String>,
}

impl Meta {
    pub fn of(meta: &ObjectMeta) -> Meta {
        Meta {
            name: meta.name.clone(),
            generate_name: meta.generate_name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone().filter(|u| u.starts_with(SOURCE_UID_PREFIX)),
            exempt: meta.annotations.as_ref().and_then(|a| a.get(EXEMPT_ANNOTATION)).cloned(),
        }
    }

    /// The metadata again, as a finding's subject takes it.
    pub fn object_meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: self.name.clone(),
            generate_name: self.generate_name.clone(),
            namespace: self.namespace.clone(),
            uid: self.uid.clone(),
            annotations: self.exempt.clone().map(|e| [(EXEMPT_ANNOTATION.to_owned(), e)].into()),
            ..ObjectMeta::default()
        }
    }
}

/// A workload, for the checks that look for it by name or match its Pods' labels.
#[derive(Clone, Debug)]
pub struct WorkloadFact {
    pub kind: WorkloadKind,
    pub name: Option<String>,
    /// The labels of the Pods it runs (its template's).
    pub labels: LabelSet,
    /// Every container of its template requests CPU.
    pub cpu_requested: bool,
    /// StatefulSet volumeClaimTemplates names.
    pub claim_templates: Box<[String]>,
}

/// A Service, for the checks that look at its selector and ports.
#[derive(Clone, Debug)]
pub struct ServiceFact {
    pub meta: Meta,
    /// A non-empty selector.
    pub selector: Option<LabelSet>,
    /// Its ports: number and name.
    pub ports: Box<[(i32, Option<String>)]>,
    /// `type: ExternalName`: a DNS name, no endpoints of its own.
    pub external_name: bool,
}

/// What one namespace holds (or, for objects read without one offline, the objects with none).
#[derive(Clone, Debug, Default)]
pub struct NamespaceFacts {
    /// Its workloads, as indexes into [`Facts::workloads`], in the order they came.
    pub workloads: Vec<u32>,
    /// The label sets of its bare Pods.
    pub bare_pods: BTreeSet<LabelSet>,
    /// The label sets of every Pod that runs here: bare Pods and workload templates (a
    /// PodTemplate runs nothing).
    pub running: BTreeSet<LabelSet>,
    /// The claims a Pod or pod template here mounts.
    pub claims: BTreeSet<String>,
}

/// Compact records of the streamed objects, added page by page.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    labels: Vec<Arc<Labels>>,
    interned: HashMap<Arc<Labels>, LabelSet>,
    pub workloads: Vec<WorkloadFact>,
    pub services: Vec<ServiceFact>,
    /// By namespace (None: objects read without one); a namespace is here when it holds a
    /// workload or a bare Pod.
    pub namespaces: BTreeMap<Option<String>, NamespaceFacts>,
}

impl Facts {
    /// Adds what the workloads, bare Pods and Services of `page` leave behind.
    pub fn add(&mut self, page: &Snapshot) {
        for w in &page.workloads {
            let labels = self.intern(w.template.metadata.as_ref().and_then(|m| m.labels.as_ref()));
            let index = self.workloads.len() as u32;
            self.workloads.push(WorkloadFact {
                kind: w.kind,
                name: w.metadata.name.clone(),
                labels,
                cpu_requested: w.template.spec.as_ref().is_some_and(|p| containers(p).all(|c| requests(c, "cpu"))),
                claim_templates: w.claim_templates.clone().into_boxed_slice(),
            });
            let ns = self.namespaces.entry(w.metadata.namespace.clone()).or_default();
            ns.workloads.push(index);
            if w.kind != WorkloadKind::PodTemplate {
                ns.running.insert(labels);
            }
        }
        for p in &page.pods {
            let labels = self.intern(p.metadata.labels.as_ref());
            let ns = self.namespaces.entry(p.metadata.namespace.clone()).or_default();
            ns.bare_pods.insert(labels);
            ns.running.insert(labels);
        }
        for owner in pod_owners(page) {
            let claims = owner.spec.volumes.iter().flatten().filter_map(|v| v.persistent_volume_claim.as_ref());
            let mut claims = claims.map(|c| c.claim_name.clone()).peekable();
            if claims.peek().is_some() {
                self.namespaces.entry(owner.subject.meta.namespace.clone()).or_default().claims.extend(claims);
            }
        }
        for svc in &page.services {
            let spec = svc.spec.as_ref();
            let selector = spec.and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty());
            let selector = selector.map(|s| self.intern(Some(s)));
            let ports = spec.and_then(|s| s.ports.as_ref()).into_iter().flatten().map(|p| (p.port, p.name.clone()));
            let external_name = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
            self.services.push(ServiceFact {
                meta: Meta::of(&svc.metadata),
                selector,
                ports: ports.collect(),
                external_name,
            });
        }
    }

    fn intern(&mut self, labels: Option<&Labels>) -> LabelSet {
        static EMPTY: std::sync::LazyLock<Labels> = std::sync::LazyLock::new(Labels::new);
        let labels = labels.unwrap_or(&EMPTY);
        if let Some(&id) = self.interned.get(labels) {
            return id;
        }
        let id = LabelSet(self.labels.len() as u32);
        let shared = Arc::new(labels.clone());
        self.labels.push(shared.clone());
        self.interned.insert(shared, id);
        id
    }

    /// The labels of an interned set.
    pub fn labels(&self, set: LabelSet) -> &Labels {
        &self.labels[set.0 as usize]
    }

    /// What the namespace holds, if it holds a workload or a bare Pod.
    pub fn namespace(&self, namespace: Option<&str>) -> Option<&NamespaceFacts> {
        self.namespaces.get(&namespace.map(str::to_owned))
    }

    /// The workloads in `namespace`, in the order they came.
    pub fn workloads_in<'f>(&'f self, namespace: Option<&str>) -> impl Iterator<Item = &'f WorkloadFact> + 'f {
        self.namespace(namespace).into_iter().flat_map(|ns| ns.workloads.iter().map(|&i| &self.workloads[i as usize]))
    }

    /// The workload the autoscaler `hpa` scales, if it is there.
    pub fn scale_target(&self, hpa: &HorizontalPodAutoscaler) -> Option<&WorkloadFact> {
        let namespace = hpa.metadata.namespace.as_deref();
        self.workloads_in(namespace).find(|w| scales(hpa, w.kind, namespace, w.name.as_deref()))
    }

    /// Whether a workload or bare Pod runs in the namespace `name`.
    pub fn in_use(&self, name: &str) -> bool {
        self.namespace(Some(name)).is_some()
    }

    /// Records held: workloads, Services and distinct label sets (the emergency brake counts
    /// these beside the kept objects).
    pub fn len(&self) -> usize {
        self.workloads.len() + self.services.len() + self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
