//! The Python environment of the chart and image tests: the real Helm SDK (PyPI
//! `helm-python-sdk`), the Dockerfile parser and pytest, pinned in tests/chart/requirements.txt.
//!
//! Installed once into a virtual environment under the cache directory, named by a hash of the
//! requirements, so a second run starts at once and a changed pin gets a fresh environment.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The requirements file, relative to the workspace root.
pub const REQUIREMENTS: &str = "tests/chart/requirements.txt";

/// The environment's python, creating the environment first if needed.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    let requirements = root.join(REQUIREMENTS);
    let text = std::fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let venv = crate::testenv::cache_dir().join(format!("venv-{:016x}", fnv1a(&text)));
    let python = venv.join("bin/python");
    let complete = venv.join(".complete");
    if complete.exists() && python.exists() {
        println!("pyenv: using {}", venv.display());
        return Ok(python);
    }

    let system = which_python()?;
    println!("pyenv: creating {} with {} (pip install -r {REQUIREMENTS})", venv.display(), system);
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new(&system).args(["-m", "venv"]).arg(&venv), "creating the virtual environment")?;
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "installing the test requirements from PyPI",
    )?;
    std::fs::write(&complete, b"").with_context(|| format!("writing {}", complete.display()))?;
    Ok(python)
}

fn which_python() -> Result<String> {
    for candidate in ["python3", "python"] {
        let ok = Command::new(candidate).args(["-c", "import venv, sys; assert sys.version_info >= (3, 10)"]).status();
        if ok.is_ok_and(|s| s.success()) {
            return Ok(candidate.to_owned());
        }
    }
    bail!("the chart tests need Python 3.10 or later with the venv module (Debian: apt-get install python3-venv)")
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); check that PyPI is reachable");
    }
    Ok(())
}

/// FNV-1a: a stable hash for naming the cache entry (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_name_follows_the_requirements() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(b"pytest==9.2.0"), fnv1a(b"pytest==9.2.1"));
    }
}
