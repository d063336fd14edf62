//! Binaries built from published Go modules through the Go module proxy: a current
//! Kubernetes (`k8s.io/kubernetes`), its node's containerd, and tools beside it (kwok).
//!
//! For each build the xtask writes a small Go module of its own under the cache dir (never in
//! the repository) that requires the module at a pinned version and lists the commands as
//! `tool`s; `go mod tidy` resolves it and `go build -trimpath` writes the binaries. Binaries
//! are cached by version in `<cache>/go-<name>-v<version>/bin`, published only when the whole
//! build succeeded, so a second `up` finds them at once.
//!
//! `k8s.io/kubernetes` requires every `k8s.io/<staging>` module at `v0.0.0` with a `replace`
//! to `./staging/...`, which a module outside its repository cannot use: the generated go.mod
//! replaces each with the published `v0.<minor>.<patch>` of the same release, the list read
//! from the kubernetes go.mod itself.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{cache_dir, run_logged};

/// What a Go build produces: `bin/<name>` for each command, from one module version.
pub struct Build<'a> {
    /// A short name for the cache directory and messages (`kubernetes`, `kwok`).
    pub name: &'a str,
    /// The module to require.
    pub module: &'a str,
    /// Its version, without the `v`.
    pub version: &'a str,
    /// The packages of the commands to build, each giving `bin/<last path element>`.
    pub commands: &'a [&'a str],
    /// `-X` settings for the linker.
    pub ldflags: Vec<String>,
    /// `replace` lines (`old => new version`) beyond none.
    pub replaces: Vec<String>,
}

/// The file `go build` writes for the command `package`: its last path element, or the one
/// before a major-version suffix (`go.etcd.io/etcd/server/v3` gives `server`).
fn binary_name(package: &str) -> &str {
    let mut parts = package.rsplit('/');
    let last = parts.next().unwrap_or(package);
    let is_major = last.len() > 1 && last.starts_with('v') && last[1..].bytes().all(|b| b.is_ascii_digit());
    if is_major { parts.next().unwrap_or(last) } else { last }
}

/// The cache directory of a build.
pub fn dir(name: &str, version: &str) -> PathBuf {
    cache_dir().join(format!("go-{name}-v{version}"))
}

/// The directory with every command of `build`, building the ones missing.
pub fn ensure(build: &Build) -> Result<PathBuf> {
    let dest = dir(build.name, build.version);
    let bin = dest.join("bin");
    let binary = |pkg: &str| bin.join(binary_name(pkg));
    let missing: Vec<&str> = build.commands.iter().copied().filter(|c| !binary(c).is_file()).collect();
    if missing.is_empty() {
        return Ok(bin);
    }
    go_available()?;
    let started = Instant::now();
    println!(
        "testenv: building {} from the Go module {}@v{} (once; cached in {})",
        missing.iter().map(|c| binary_name(c)).collect::<Vec<_>>().join(", "),
        build.module,
        build.version,
        dest.display()
    );
    let module = dest.join("module");
    std::fs::create_dir_all(&module).with_context(|| format!("creating {}", module.display()))?;
    let mut text = format!(
        "// Written by `cargo xtask testenv`: builds {} from its published module.\nmodule kube9.io/testenv-{}\n\ngo 1.25.0\n\nrequire {} v{}\n\ntool (\n",
        build.module, build.name, build.module, build.version
    );
    for command in build.commands {
        text.push_str(&format!("\t{command}\n"));
    }
    text.push_str(")\n");
    if !build.replaces.is_empty() {
        text.push_str("\nreplace (\n");
        for line in &build.replaces {
            text.push_str(&format!("\t{line}\n"));
        }
        text.push_str(")\n");
    }
    let go_mod = module.join("go.mod");
    if std::fs::read_to_string(&go_mod).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&go_mod, &text).with_context(|| format!("writing {}", go_mod.display()))?;
        let _ = std::fs::remove_file(module.join("go.sum"));
    }
    run_logged(go(&module).args(["mod", "tidy"]), &dest.join("tidy.log"))
        .with_context(|| format!("resolving {}@v{} through the Go module proxy", build.module, build.version))?;

    let tmp = dest.join("bin.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let ldflags = std::iter::once("-s -w".to_owned())
        .chain(build.ldflags.iter().map(|x| format!("-X {x}")))
        .collect::<Vec<_>>()
        .join(" ");
    let log = dest.join("build.log");
    run_logged(
        go(&module)
            .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
            .arg(format!("{}/", tmp.display()))
            .args(&missing),
        &log,
    )
    .with_context(|| format!("building {}@v{}", build.module, build.version))?;
    std::fs::create_dir_all(&bin)?;
    for command in &missing {
        let name = binary_name(command);
        std::fs::rename(tmp.join(name), bin.join(name)).with_context(|| format!("publishing {name}"))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let seconds = started.elapsed().as_secs();
    println!("testenv: built {} v{} in {}m{:02}s", build.name, build.version, seconds / 60, seconds % 60);
    let _ = std::fs::write(dest.join("build-seconds"), format!("{seconds}\n"));
    Ok(bin)
}

/// `go` in `dir`, with the build cache under the project's cache dir (so it is kept with
/// the binaries), static binaries, the machine's own Go and module-mode resolution.
pub(crate) fn go(dir: &Path) -> Process {
    let mut cmd = Process::new(go_binary());
    cmd.current_dir(dir)
        .env("GOCACHE", cache_dir().join("gocache"))
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod");
    cmd
}

/// `go` on the PATH, else the official install's /usr/local/go/bin/go (a shell that did not
/// read the profile adding it to the PATH still finds it).
fn go_binary() -> PathBuf {
    let on_path =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("go").is_file()));
    let installed = Path::new("/usr/local/go/bin/go");
    if !on_path && installed.is_file() { installed.to_path_buf() } else { PathBuf::from("go") }
}

fn go_available() -> Result<()> {
    match Process::new(go_binary()).arg("version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!(
            "building the current Kubernetes needs Go (1.25 or later) on PATH and the Go module proxy; \
             or run the oldest supported version with --kubernetes 1.20"
        ),
    }
}

/// `go mod download -json module@v<version>`: the module fetched into the module cache.
fn download(module: &str, version: &str) -> Result<serde_json::Value> {
    let out = Process::new(go_binary())
        .args(["mod", "download", "-json", &format!("{module}@v{version}")])
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .output()
        .context("running go mod download")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("go mod download {module}@v{version}: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(error) = json["Error"].as_str() {
        bail!("go mod download {module}@v{version}: {error}");
    }
    Ok(json)
}

/// The go.mod of `module@v<version>`.
fn module_go_mod(module: &str, version: &str) -> Result<String> {
    let json = download(module, version)?;
    let path = json["GoMod"].as_str().context("go mod download printed no GoMod")?;
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

/// The unpacked source of `module@v<version>` in the module cache.
pub fn module_dir(module: &str, version: &str) -> Result<PathBuf> {
    let json = download(module, version)?;
    json["Dir"].as_str().map(PathBuf::from).context("go mod download printed no Dir")
}

/// The `replace` lines pinning each staging module of kubernetes `version` to its published
/// `v0.<minor>.<patch>`.
pub fn staging_replaces(version: &str) -> Result<Vec<String>> {
    let staging = format!("v0.{}", version.split_once('.').map(|(_, rest)| rest).unwrap_or(version));
    let text = module_go_mod("k8s.io/kubernetes", version)?;
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (old, new) = l.trim().split_once("=>")?;
            new.trim().starts_with("./staging/").then(|| format!("{0} => {0} {staging}", old.trim()))
        })
        .collect();
    if lines.is_empty() {
        bail!(
            "the go.mod of k8s.io/kubernetes v{version} has no ./staging replaces: not a release this xtask knows how to build"
        );
    }
    Ok(lines)
}

/// The etcd release the current control plane runs (Debian's 3.4 lacks the watch-progress
/// requests a current API server's watch cache and clients rely on).
pub const ETCD_VERSION: &str = "3.6.16";

/// etcd, built from `go.etcd.io/etcd/server/v3` (whose main package is the etcd server).
pub fn etcd() -> Result<PathBuf> {
    let package = "go.etcd.io/etcd/server/v3";
    let bin = ensure(&Build {
        name: "etcd",
        module: package,
        version: ETCD_VERSION,
        commands: &[package],
        ldflags: vec![],
        replaces: vec![],
    })?;
    // Named `etcd`, as `testenv status` and `down` recognise the process by its binary.
    let etcd = bin.join("etcd");
    if !etcd.is_file() {
        std::fs::hard_link(bin.join(binary_name(package)), &etcd).context("naming the etcd binary")?;
    }
    Ok(etcd)
}

/// The containerd release the node of a Go-built Kubernetes runs: a 2.x, since kubelets from
/// 1.36 on refuse containerd 1.x (Debian bookworm ships 1.6).
pub const CONTAINERD_VERSION: &str = "2.4.2";

/// containerd, its runc shim and `ctr`, built from `github.com/containerd/containerd/v2`
/// (without cgo: the btrfs and zfs snapshotters are left out, overlayfs is what the node uses).
pub fn containerd() -> Result<PathBuf> {
    let module = "github.com/containerd/containerd/v2";
    ensure(&Build {
        name: "containerd",
        module,
        version: CONTAINERD_VERSION,
        commands: &[
            "github.com/containerd/containerd/v2/cmd/containerd",
            "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
            "github.com/containerd/containerd/v2/cmd/ctr",
        ],
        // So `containerd --version` and the node's runtime version name the release.
        ldflags: vec![format!("{module}/version.Version=v{CONTAINERD_VERSION}")],
        replaces: vec![],
    })
}

/// The kubernetes commands a control plane (and a node) needs, built at `version`.
pub fn kubernetes(version: &str, commands: &[&str]) -> Result<PathBuf> {
    let bin = dir("kubernetes", version).join("bin");
    if commands.iter().all(|c| bin.join(c).is_file()) {
        return Ok(bin);
    }
    let (major, rest) = version.split_once('.').context("a version such as 1.37.2")?;
    let minor = rest.split('.').next().unwrap_or(rest);
    let pkg = "k8s.io/component-base/version";
    let packages: Vec<String> = commands.iter().map(|c| format!("k8s.io/kubernetes/cmd/{c}")).collect();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    ensure(&Build {
        name: "kubernetes",
        module: "k8s.io/kubernetes",
        version,
        commands: &packages,
        // What the release build stamps in, so /version and the node report the real version.
        ldflags: vec![
            format!("{pkg}.gitVersion=v{version}"),
            format!("{pkg}.gitMajor={major}"),
            format!("{pkg}.gitMinor={minor}"),
            format!("{pkg}.gitTreeState=clean"),
            format!("{pkg}.buildDate=1970-01-01T00:00:00Z"),
        ],
        replaces: staging_replaces(version)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn binaries_are_named_as_go_build_names_them() {
        assert_eq!(super::binary_name("k8s.io/kubernetes/cmd/kube-apiserver"), "kube-apiserver");
        assert_eq!(super::binary_name("go.etcd.io/etcd/server/v3"), "server");
        assert_eq!(super::binary_name("sigs.k8s.io/kwok/cmd/kwok"), "kwok");
        assert_eq!(super::binary_name("github.com/containerd/containerd/v2/cmd/ctr"), "ctr");
    }
}
