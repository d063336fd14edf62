//! What identifies this cluster to kube9-server, and what it says about itself.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use sha2::{Digest, Sha256};

use super::client::RegisterRequest;

/// `sha256:` + hex SHA-256 of the cluster CA certificate (DER), or of the API server URL when
/// no CA is known.
pub fn cluster_identifier(ca_der: Option<&[u8]>, server_url: &str) -> String {
    let digest = match ca_der {
        Some(der) => Sha256::digest(der),
        None => Sha256::digest(server_url.as_bytes()),
    };
    format!("sha256:{}", hex::encode(digest))
}

/// Gathers the registration request from the cluster. Version and node count are best
/// effort: a cluster that hides them still registers.
pub async fn gather(client: &kube::Client, config: &kube::Config) -> RegisterRequest {
    let ca = config.root_cert.as_ref().and_then(|certs| certs.first()).map(Vec::as_slice);
    let kubernetes_version = match client.apiserver_version().await {
        Ok(info) => info.git_version,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the Kubernetes version; registering without it");
            "unknown".to_owned()
        }
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let approximate_node_count = match nodes.list_metadata(&ListParams::default().limit(1)).await {
        Ok(list) => list.items.len() as u64 + list.metadata.remaining_item_count.unwrap_or(0).max(0) as u64,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count nodes; registering with 0");
            0
        }
    };
    RegisterRequest {
        operator_version: env!("CARGO_PKG_VERSION").to_owned(),
        cluster_identifier: cluster_identifier(ca, &config.cluster_url.to_string()),
        kubernetes_version,
        approximate_node_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identifier_hashes_the_ca_when_there_is_one() {
        let id = cluster_identifier(Some(b"der bytes"), "https://10.0.0.1");
        assert_eq!(id, format!("sha256:{}", hex::encode(Sha256::digest(b"der bytes"))));
        assert_eq!(id.len(), "sha256:".len() + 64);
        assert_ne!(id, cluster_identifier(None, "https://10.0.0.1"));
        assert_eq!(cluster_identifier(None, "https://a"), cluster_identifier(None, "https://a"));
    }
}
