//! `cargo xtask docs`: the documentation checked against the tree, so that it cannot drift
//! without a failing test (`cargo test -p xtask` runs the same checks).
//!
//! - README.md is a product README: at most 10 KiB, the two project commands on its first
//!   screen.
//! - README.md, CONTRIBUTING.md, docs/*.md and the charts' READMEs name no path outside the
//!   repository and carry no note addressed to whoever edits them; every relative link (and
//!   its `#anchor`, for Markdown targets) resolves inside the repository.
//! - docs/architecture.md names every crate under crates/, names only paths that exist, and its
//!   layer table names exactly the operator's modules: each named module exists, and each
//!   module is named (itself or a folder above it).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A README of the models (controller-rs, cert-manager) is 5–8 KB; past this it is a manual.
const README_MAX_BYTES: usize = 10 * 1024;
/// What a reader sees before scrolling much.
const FIRST_SCREEN_LINES: usize = 60;
/// The commands that run and test the project, which a newcomer looks for first.
const PROJECT_COMMANDS: &[&str] = &["cargo xtask demo", "cargo xtask ci"];
/// Where files outside the repository were once referred to; a reader has no such folder.
const OUTSIDE_PATH: &str = "../shared";
/// The operator crate, whose modules the layer table names.
const OPERATOR_SRC: &str = "crates/operator/src";

/// The upper-case word that marks a note to whoever edits a file. Built from pieces so that
/// `git grep` for it finds no file, this one included.
fn note_marker() -> String {
    ["HEL", "PER"].concat()
}

pub fn run(root: &Path) -> Result<()> {
    let problems = problems(root)?;
    if problems.is_empty() {
        println!("docs: README, CONTRIBUTING, docs/ and the charts' READMEs hold together");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    bail!("{} problem(s) in the documentation", problems.len())
}

/// Every problem found, each naming its file (and line where there is one).
pub fn problems(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let readme = read(root, "README.md")?;
    problems.extend(readme_problems(&readme));
    for file in documents(root)? {
        let name = relative(root, &file);
        let text = fs::read_to_string(&file).with_context(|| format!("reading {name}"))?;
        problems.extend(forbidden_text(&name, &text));
        problems.extend(broken_links(root, &file, &text));
    }
    let architecture = read(root, "docs/architecture.md")?;
    problems.extend(architecture_problems(root, &architecture)?);
    Ok(problems)
}

fn read(root: &Path, name: &str) -> Result<String> {
    fs::read_to_string(root.join(name)).with_context(|| format!("reading {name}"))
}

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap_or(file).display().to_string()
}

/// README.md, CONTRIBUTING.md, docs/*.md and charts/*/README.md; a missing README or
/// CONTRIBUTING is an error, since the links and the checks assume them.
fn documents(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    for file in &files {
        if !file.is_file() {
            bail!("{} is missing", relative(root, file));
        }
    }
    for entry in fs::read_dir(root.join("docs")).context("reading docs/")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    for entry in fs::read_dir(root.join("charts")).context("reading charts/")? {
        let readme = entry?.path().join("README.md");
        if readme.is_file() {
            files.push(readme);
        }
    }
    files.sort();
    Ok(files)
}

fn readme_problems(readme: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if readme.len() > README_MAX_BYTES {
        problems
            .push(format!("README.md: {} bytes, over {README_MAX_BYTES}; move the detail into docs/", readme.len()));
    }
    let first_screen: Vec<&str> = readme.lines().take(FIRST_SCREEN_LINES).collect();
    for command in PROJECT_COMMANDS {
        if !first_screen.iter().any(|line| line.contains(command)) {
            problems.push(format!("README.md: `{command}` is not in the first {FIRST_SCREEN_LINES} lines"));
        }
    }
    problems
}

fn forbidden_text(name: &str, text: &str) -> Vec<String> {
    let marker = note_marker();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.contains(OUTSIDE_PATH) {
            problems.push(format!("{name}:{}: names `{OUTSIDE_PATH}`, a path outside the repository", index + 1));
        }
        if line.contains(&marker) {
            problems.push(format!("{name}:{}: a note to whoever edits the file ({marker})", index + 1));
        }
    }
    problems
}

/// Relative links whose file, or whose `#anchor` in a Markdown file, does not exist, and links
/// that leave the repository. Fenced code blocks hold no links.
fn broken_links(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let name = relative(root, file);
    let dir = file.parent().unwrap_or(root);
    let mut problems = Vec::new();
    let mut fenced = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for target in link_targets(line) {
            if let Some(why) = link_problem(root, dir, file, &target) {
                problems.push(format!("{name}:{}: link `{target}`: {why}", index + 1));
            }
        }
    }
    problems
}

/// The targets of `[text](target)` and of a reference definition `[label]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].to_owned());
        rest = &after[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some(position) = trimmed.find("]: ")
    {
        targets.push(trimmed[position + 3..].to_owned());
    }
    targets
        .into_iter()
        .filter_map(|t| t.split_whitespace().next().map(|t| t.trim_matches(['<', '>']).to_owned()))
        .collect()
}

fn link_problem(root: &Path, dir: &Path, file: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let resolved = if path.is_empty() { file.to_path_buf() } else { normalize(&dir.join(path)) };
    if !resolved.starts_with(root) {
        return Some("points outside the repository".to_owned());
    }
    if !resolved.exists() {
        return Some("no such file".to_owned());
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    if resolved.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let text = fs::read_to_string(&resolved).ok()?;
    if anchors(&text).contains(anchor) { None } else { Some(format!("no heading makes the anchor #{anchor}")) }
}

/// `a/b/../c` as `a/c`, without touching the file system (the target may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The anchors GitHub makes of a Markdown file's headings: lower case, punctuation other
/// than `-` and `_` dropped, spaces as hyphens.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        anchors.insert(slug);
    }
    anchors
}

fn architecture_problems(root: &Path, text: &str) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let paths = crate_paths(text);
    for path in &paths {
        if !root.join(path).exists() {
            problems.push(format!("docs/architecture.md: names `{path}`, which does not exist"));
        }
    }
    let named: BTreeSet<&str> = paths.iter().filter_map(|p| p.split('/').nth(1)).collect();
    for member in workspace_members(root)? {
        if let Some(crate_dir) = member.strip_prefix("crates/")
            && !named.contains(crate_dir)
        {
            problems.push(format!("docs/architecture.md: the workspace member `{member}` is not named"));
        }
    }
    let modules = layer_table_modules(text);
    if modules.is_empty() {
        problems.push("docs/architecture.md: no layer table (`| layer | modules | … |`) found".to_owned());
    }
    for module in &modules {
        if !module_exists(root, module) {
            problems.push(format!("docs/architecture.md: the layer table names `{module}`, which does not exist"));
        }
    }
    for module in operator_modules(&root.join(OPERATOR_SRC))? {
        let covered = modules.iter().any(|m| module == *m || module.starts_with(&format!("{m}::")));
        if !covered {
            problems.push(format!("docs/architecture.md: the module `{module}` is missing from the layer table"));
        }
    }
    Ok(problems)
}

/// Every `crates/…` path in the text, up to the first character that cannot be in a path.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("crates/") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
            .unwrap_or(tail.len());
        let path = tail[..end].trim_end_matches(['.', '/']);
        if path.len() > "crates/".len() {
            paths.insert(path.to_owned());
        }
        rest = &tail[end.max(1)..];
    }
    paths
}

/// The `members` of the root Cargo.toml's `[workspace]`.
fn workspace_members(root: &Path) -> Result<Vec<String>> {
    let manifest = read(root, "Cargo.toml")?;
    let start = manifest.find("members").context("Cargo.toml has no workspace members")?;
    let list = &manifest[start..];
    let open = list.find('[').context("Cargo.toml: members is not a list")?;
    let close = list.find(']').context("Cargo.toml: members is not a list")?;
    Ok(list[open + 1..close]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect())
}

/// The module paths in backticks in the modules column of the table headed
/// `| layer | modules | …`, with `a::{b, c}` read as `a::b` and `a::c`.
fn layer_table_modules(text: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    let mut lines = text.lines().skip_while(|l| !l.replace(' ', "").starts_with("|layer|modules|"));
    lines.next();
    for row in lines.take_while(|l| l.starts_with('|')) {
        let Some(cell) = row.split('|').nth(2) else { continue };
        for span in cell.split('`').skip(1).step_by(2) {
            modules.extend(expand(span));
        }
    }
    modules.retain(|m| !m.chars().all(|c| c == '-' || c == ':'));
    modules
}

fn expand(span: &str) -> Vec<String> {
    match span.split_once('{') {
        Some((prefix, group)) => {
            group.trim_end_matches('}').split(',').map(|item| format!("{prefix}{}", item.trim())).collect()
        }
        None => vec![span.trim().to_owned()],
    }
}

/// A module path as a file or folder: under crates/operator/src, or, when its first segment
/// is a crate (`kube9_checks::engine`), under that crate's src.
fn module_exists(root: &Path, module: &str) -> bool {
    let mut segments: Vec<&str> = module.split("::").collect();
    let src = match segments.first().and_then(|s| s.strip_prefix("kube9_").or_else(|| s.strip_prefix("kube9-"))) {
        Some(crate_name) => {
            let src = root.join("crates").join(crate_name.replace('_', "-")).join("src");
            segments.remove(0);
            src
        }
        None => root.join(OPERATOR_SRC),
    };
    let path = segments.iter().fold(src, |path, segment| path.join(segment));
    path.is_dir() || path.with_extension("rs").is_file()
}

/// Every module file of the operator crate as a path (`status::plan`), leaving out the files
/// that only declare their children (`lib.rs`, a folder's `mod.rs`).
fn operator_modules(src: &Path) -> Result<Vec<String>> {
    let mut modules = Vec::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let is_rust = path.extension().is_some_and(|e| e == "rs");
            let is_index = path.file_name().is_some_and(|n| n == "lib.rs" || n == "mod.rs");
            if !is_rust || is_index {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap_or(&path).with_extension("");
            let segments: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            modules.push(segments.join("::"));
        }
    }
    modules.sort();
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documentation_holds_together() {
        let problems = problems(&crate::root()).expect("the documentation can be read");
        assert!(problems.is_empty(), "documentation problems:\n{}", problems.join("\n"));
    }

    #[test]
    fn a_long_readme_or_one_without_the_project_commands_on_its_first_screen_fails() {
        let short = "# x\n\n`cargo xtask demo` and `cargo xtask ci`\n";
        assert!(readme_problems(short).is_empty());

        let long = format!("{short}{}", "a line of prose that goes on\n".repeat(400));
        let problems = readme_problems(&long);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("over 10240"), "{problems:?}");

        let late = format!("# x\n{}`cargo xtask demo` and `cargo xtask ci`\n", "\n".repeat(FIRST_SCREEN_LINES));
        assert_eq!(readme_problems(&late).len(), 2);
    }

    #[test]
    fn outside_paths_and_notes_to_editors_are_found_with_their_lines() {
        let text = format!("fine\nsee ../shared/fixtures/x\n> {}: read this\nhelpers are fine\n", note_marker());
        let problems = forbidden_text("docs/x.md", &text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("docs/x.md:2:"), "{problems:?}");
        assert!(problems[1].starts_with("docs/x.md:3:"), "{problems:?}");
    }

    #[test]
    fn relative_links_must_reach_a_file_and_a_heading_inside_the_repository() {
        let root = crate::root();
        let readme = root.join("README.md");
        let good = "[a](docs/architecture.md), [b](docs/architecture.md#the-crates), [c](https://x.io/nope)";
        assert!(broken_links(&root, &readme, good).is_empty(), "{:?}", broken_links(&root, &readme, good));

        let bad = "[a](docs/nope.md) [b](docs/architecture.md#no-such-heading)\n\n```\n[c](in/a/fence.md)\n```\n[d]: ../outside.md";
        let problems = broken_links(&root, &readme, bad);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("docs/nope.md") && problems[0].contains("no such file"), "{problems:?}");
        assert!(problems[1].contains("no heading"), "{problems:?}");
        assert!(problems[2].starts_with("README.md:6:") && problems[2].contains("outside"), "{problems:?}");
    }

    #[test]
    fn headings_become_github_anchors() {
        let anchors =
            anchors("# Top\n## `kube9-operator query`\n```\n# not a heading\n```\n## High availability: one leader");
        let expected: BTreeSet<String> =
            ["top", "kube9-operator-query", "high-availability-one-leader"].map(String::from).into();
        assert_eq!(anchors, expected);
    }

    #[test]
    fn the_layer_table_is_read_with_brace_groups() {
        let text = "| layer | modules | what |\n|---|---|---|\n| rules | `status::{tier, plan}`, `gather` | x |\n| wiring | `operator` (and `main`) | y |\n\nafter `not::this`";
        let modules: Vec<String> = layer_table_modules(text).into_iter().collect();
        assert_eq!(modules, ["gather", "main", "operator", "status::plan", "status::tier"]);
    }

    #[test]
    fn an_architecture_page_that_drifted_from_the_tree_fails() {
        let root = crate::root();
        assert!(module_exists(&root, "status::plan"));
        assert!(module_exists(&root, "collections"));
        assert!(module_exists(&root, "kube9_checks::engine"));
        assert!(!module_exists(&root, "status::nope"));
        assert!(!module_exists(&root, "kube9_checks::nope"));

        let drifted = "`crates/api` `crates/nope/src`\n\n| layer | modules | what |\n|---|---|---|\n| rules | `status::{plan, gone}` | x |\n";
        let problems = architecture_problems(&root, drifted).expect("the tree can be read");
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert!(has("`crates/nope/src`, which does not exist"), "{problems:?}");
        assert!(has("member `crates/store` is not named"), "{problems:?}");
        assert!(!has("member `crates/api`"), "{problems:?}");
        assert!(has("names `status::gone`, which does not exist"), "{problems:?}");
        assert!(has("module `collections::held` is missing"), "{problems:?}");
        assert!(!has("module `status::plan` is missing"), "{problems:?}");
    }
}
