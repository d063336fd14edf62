//! The object a finding is about, and what of its metadata every check reads the same way:
//! the exemption annotation, the offline reader's source, the name a finding shows, and whether
//! its namespace is the control plane's.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The annotation, on an object or its namespace, listing the checks (ids, or a pillar name
/// for all of its checks) that do not apply to it.
pub const EXEMPT_ANNOTATION: &str = "kube9.io/exempt";

/// The prefix of the uid the offline reader gives each object it reads: a manifest's own uid
/// means nothing offline, and this one says which file and line the object came from.
pub const SOURCE_UID_PREFIX: &str = "kube9.io/source/";

/// The object a finding is about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub meta: &'a ObjectMeta,
}

impl<'a> Subject<'a> {
    pub fn new(api_version: &'static str, kind: &'static str, meta: &'a ObjectMeta) -> Subject<'a> {
        Subject { api_version, kind, meta }
    }
}

/// The offline reader's source number in an object's uid.
pub fn source_of(meta: &ObjectMeta) -> Option<u32> {
    meta.uid.as_deref()?.strip_prefix(SOURCE_UID_PREFIX)?.parse().ok()
}

/// How findings name an object: its name, or `<generateName>*` when the API server will pick
/// one (a Job created with `kubectl create` and generateName).
pub fn display_name(meta: &ObjectMeta) -> String {
    match (&meta.name, &meta.generate_name) {
        (Some(name), _) => name.clone(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => String::new(),
    }
}

/// Namespaces the control plane owns.
pub fn system_namespace(name: &str) -> bool {
    matches!(name, "kube-system" | "kube-public" | "kube-node-lease")
}
