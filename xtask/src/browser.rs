//! `cargo xtask browser`: what the UI's browser tests need — Debian's `chromium` and
//! `chromium-driver`, and the accessibility engine axe-core from npm (cached by version under
//! the cache dir) — installed when missing. `cargo xtask ci` runs it before the cluster tests.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::testenv;

/// The axe-core release the tests inject into each page.
pub const AXE_VERSION: &str = "4.14.1";

/// The Debian packages: the browser and its WebDriver server.
const PACKAGES: &[&str] = &["chromium", "chromium-driver"];

/// The environment the tests read: where axe-core's script is.
pub const AXE_ENV: &str = "KUBE9_AXE_JS";

/// Installs what is missing; returns the path of `axe.min.js`.
pub fn ensure() -> Result<PathBuf> {
    testenv::ensure_packages(PACKAGES)?;
    let dir = testenv::cache_dir().join("npm").join(format!("axe-core-{AXE_VERSION}"));
    let script = dir.join("node_modules/axe-core/axe.min.js");
    if script.is_file() {
        return Ok(script);
    }
    if Command::new("npm").arg("--version").output().is_err() {
        testenv::ensure_packages(&["npm"])?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("browser: installing axe-core {AXE_VERSION} from npm into {}", dir.display());
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
        .arg(&dir)
        .arg(format!("axe-core@{AXE_VERSION}"))
        .status()
        .context("running npm")?;
    if !status.success() || !script.is_file() {
        bail!("npm install axe-core@{AXE_VERSION} failed ({status}); {} is missing", script.display());
    }
    Ok(script)
}

/// `cargo xtask browser`.
pub fn run() -> Result<()> {
    let axe = ensure()?;
    println!("browser: chromium, chromedriver and axe-core ready; export {AXE_ENV}={}", axe.display());
    Ok(())
}
