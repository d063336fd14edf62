//! `cargo xtask image`: the operator image, built with no container engine.
//!
//! image/build-rootfs.sh (the Dockerfile's own build step) produces the final stage's files;
//! buildah turns them into an image with the Dockerfile's user and entrypoint, and the image is
//! imported into the testenv node's containerd when the node runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::testenv::{self, node};

/// The local name the end-to-end tests install.
pub const NAME: &str = "localhost/kube9-operator:dev";

pub fn run(root: &Path) -> Result<()> {
    let archive = build(root)?;
    let state = testenv::state_dir();
    if node::running(&state) {
        node::import_image(&state, &archive)?;
        println!("image: {NAME} imported into the testenv node's containerd");
    } else {
        println!("image: no testenv node is running (`cargo xtask testenv up --node`); not imported");
    }
    Ok(())
}

/// Where [`build`] writes the image.
pub fn archive(root: &Path) -> PathBuf {
    root.join("target/image/kube9-operator.oci.tar")
}

/// Builds the image into `target/image/kube9-operator.oci.tar`.
pub fn build(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/image");
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&dir)?;
    let status = Command::new(root.join("image/build-rootfs.sh"))
        .arg(&rootfs)
        .current_dir(root)
        .status()
        .context("running image/build-rootfs.sh")?;
    if !status.success() {
        bail!("image/build-rootfs.sh failed ({status})");
    }
    let archive = archive(root);
    // As the Dockerfile: `kubectl exec … -- kube9-operator query …` finds the binary by name.
    node::build_image(NAME, &rootfs, Some("65532:65532"), "/kube9-operator", &["PATH=/"], &archive)?;
    println!("image: {NAME} written to {}", archive.display());
    Ok(archive)
}
