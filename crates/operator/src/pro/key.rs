//! The per-cluster obfuscation key, kept in a Secret in the operator's namespace: created on
//! first use, never overwritten, so mock names stay the same across restarts and upgrades.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube9_privacy::Key;

use crate::base::apply::FIELD_MANAGER;

/// The Secret's data key.
pub const DATA_KEY: &str = "key";

/// Reads the key, or creates it when the Secret does not exist. The error never holds the key.
pub async fn load_or_create(client: &kube::Client, namespace: &str, name: &str) -> Result<Key, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..2 {
        match api.get_opt(name).await {
            Ok(Some(secret)) => return read(&secret, namespace, name),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot read the obfuscation key Secret {namespace}/{name}: {e}")),
        }
        let bytes: [u8; 32] = rand::random();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/name".to_owned(), "kube9-operator".to_owned()),
                    ("app.kubernetes.io/component".to_owned(), "obfuscation-key".to_owned()),
                    ("app.kubernetes.io/managed-by".to_owned(), "kube9-operator".to_owned()),
                ])),
                ..Default::default()
            },
            immutable: Some(true),
            type_: Some("Opaque".to_owned()),
            data: Some(BTreeMap::from([(DATA_KEY.to_owned(), ByteString(bytes.to_vec()))])),
            ..Default::default()
        };
        let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        match api.create(&params, &secret).await {
            Ok(_) => {
                tracing::info!(secret = name, "created the obfuscation key Secret");
                return Key::from_bytes(&bytes).map_err(|e| e.to_string());
            }
            // Someone else created it first: read theirs.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(format!("cannot create the obfuscation key Secret {namespace}/{name}: {e}")),
        }
    }
    Err(format!("the obfuscation key Secret {namespace}/{name} keeps disappearing"))
}

fn read(secret: &Secret, namespace: &str, name: &str) -> Result<Key, String> {
    let bytes = secret.data.as_ref().and_then(|d| d.get(DATA_KEY)).map(|b| b.0.as_slice()).unwrap_or_default();
    Key::from_bytes(bytes).map_err(|e| format!("Secret {namespace}/{name}, key {DATA_KEY:?}: {e}"))
}
