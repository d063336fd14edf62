//! Following an object through a shared reflector stream (several readers, one watch).

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::Resource;

/// A key that changes only when the object is recreated or its spec changes (its generation),
/// so status writes do not wake whoever follows it.
pub fn spec_or_identity<K: Resource>(object: &K) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    object.meta().uid.hash(&mut hasher);
    object.meta().generation.hash(&mut hasher);
    hasher.finish()
}

/// The objects of a shared stream whose spec or identity changed since the one before.
pub fn spec_changes<K: Resource>(stream: impl Stream<Item = Arc<K>>) -> impl Stream<Item = Arc<K>> {
    let mut last = None;
    stream.filter(move |object| {
        let key = Some(spec_or_identity(object.as_ref()));
        let changed = last != key;
        last = key;
        std::future::ready(changed)
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    #[tokio::test]
    async fn only_spec_and_identity_changes_pass() {
        let object = |uid: &str, generation: i64, rv: &str| {
            let mut cm = ConfigMap::default();
            cm.metadata.uid = Some(uid.into());
            cm.metadata.generation = Some(generation);
            cm.metadata.resource_version = Some(rv.into());
            Arc::new(cm)
        };
        let events = [object("a", 1, "1"), object("a", 1, "2"), object("a", 2, "3"), object("b", 2, "4")];
        let passed: Vec<_> = spec_changes(futures::stream::iter(events)).collect().await;
        let rvs: Vec<_> = passed.iter().map(|o| o.metadata.resource_version.clone().unwrap()).collect();
        assert_eq!(rvs, ["1", "3", "4"]);
    }
}
