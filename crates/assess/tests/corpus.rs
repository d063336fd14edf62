//! The offline assessment over the real-world corpus (`../shared/fixtures/realcorpus`: 2,500
//! documents from 25 public projects, each file's origin in its SOURCES.tsv), when present:
//! every valid document is read, and every finding's file and line hold the object it names.
//! Skipped (with a note) where the corpus is not checked out beside the project.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kube9_assess::input::{self, Loaded};
use kube9_checks::Options;

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/realcorpus");
    dir.is_dir().then_some(dir)
}

fn load() -> Option<Loaded> {
    let Some(dir) = corpus() else {
        eprintln!("skipped: no ../shared/fixtures/realcorpus beside the project");
        return None;
    };
    Some(input::load(&[dir]))
}

/// Documents of the corpus the API server refuses too: templates with placeholders left in
/// fields that must be numbers. (file, line of the field)
const INVALID: &[(&str, usize)] = &[
    // containerPort: PORT, port: PORT (to be replaced by sed before applying)
    ("gke-samples/networking/sctp/sctp-deployment.yaml", 33),
    ("gke-samples/networking/sctp/sctp-deployment.yaml", 45),
    // lun: "<ADD LUN ID Here>"
    ("kubernetes-examples/_archived/volumes/fibre_channel/fc.yaml", 17),
];

#[test]
fn no_valid_document_of_the_corpus_is_left_unread() {
    let Some(loaded) = load() else { return };
    let errors: Vec<String> = loaded
        .errors
        .iter()
        .filter(|e| !INVALID.iter().any(|(path, line)| e.path.ends_with(path) && e.line == Some(*line)))
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{} unread:\n{}", errors.len(), errors.join("\n"));
    assert_eq!(loaded.errors.len(), INVALID.len(), "each invalid document is still reported");
    assert!(loaded.documents > 2000, "{} documents", loaded.documents);
}

/// The object whose text starts at `line` of `text`: the document (or List item) from there
/// to the next document marker, read by a YAML reader other than the one under test.
fn object_at(text: &str, line: usize) -> Option<serde_yaml::Value> {
    let lines: Vec<&str> = text.lines().collect();
    let rest: Vec<&str> = lines
        .get(line - 1..)?
        .iter()
        .take_while(|l| l.trim_end() != "---" && !l.starts_with("--- "))
        .copied()
        .collect();
    // Trailing lines of an enclosing List (`kind: List` after `items:`) do not belong to the
    // item: cut at the first line indented less than the object's first line.
    let indent = rest.first()?.len() - rest.first()?.trim_start_matches([' ', '-']).len();
    let object: Vec<&str> = rest
        .iter()
        .enumerate()
        .take_while(|(i, l)| {
            *i == 0
                || l.trim().is_empty()
                || l.trim_start().starts_with('#')
                || l.len() - l.trim_start().len() >= indent
        })
        .map(|(i, l)| if i == 0 { &l[indent.min(l.len() - l.trim_start_matches([' ', '-']).len())..] } else { l })
        .collect();
    let dedented: String = object
        .iter()
        .enumerate()
        .map(
            |(i, l)| if i == 0 { format!("{l}\n") } else { format!("{}\n", l.get(indent..).unwrap_or(l.trim_start())) },
        )
        .collect();
    serde_yaml::from_str(&dedented)
        .or_else(|_| serde_yaml::from_str(&rest.join("\n")))
        .ok()
        .or_else(|| composed(&dedented))
}

/// The same through libyaml's own composer (which, unlike serde_yaml, takes duplicate keys, as
/// kubectl does): just the strings kind, metadata.name, metadata.generateName and
/// metadata.namespace, the last of each duplicate winning.
fn composed(text: &str) -> Option<serde_yaml::Value> {
    use libyaml_safer::{Document, NodeData, Parser};
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let document = Document::load(&mut parser).ok()?;
    let scalar = |i: i32| match &document.get_node(i)?.data {
        NodeData::Scalar { value, .. } => Some(value.clone()),
        _ => None,
    };
    let get = |map: i32, key: &str| match &document.get_node(map)?.data {
        NodeData::Mapping { pairs, .. } => {
            pairs.iter().rev().find(|p| scalar(p.key).as_deref() == Some(key)).map(|p| p.value)
        }
        _ => None,
    };
    let mut root = 1;
    if let NodeData::Sequence { items, .. } = &document.get_node(1)?.data {
        root = *items.first()?;
    }
    let mut object = serde_yaml::Mapping::new();
    object.insert("kind".into(), get(root, "kind").and_then(scalar)?.into());
    let mut meta = serde_yaml::Mapping::new();
    let metadata = get(root, "metadata")?;
    for field in ["name", "generateName", "namespace"] {
        if let Some(v) = get(metadata, field).and_then(scalar) {
            meta.insert(field.into(), v.into());
        }
    }
    object.insert("metadata".into(), meta.into());
    Some(object.into())
}

#[test]
fn every_finding_of_the_corpus_names_its_own_file_and_line() {
    let Some(loaded) = load() else { return };
    let report = kube9_checks::run(&loaded.snapshot, &Options::default());
    let mut files: HashMap<String, String> = HashMap::new();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for found in report.findings().into_iter().chain(report.exempted()) {
        let hit = found.hit;
        let origin = loaded.origin(hit.source).unwrap_or_else(|| panic!("no origin for {hit:?}"));
        let text = files.entry(origin.path.clone()).or_insert_with(|| std::fs::read_to_string(&origin.path).unwrap());
        let object = object_at(text, origin.line);
        let field = |o: &serde_yaml::Value, path: &[&str]| {
            path.iter().try_fold(o, |v, k| v.get(k)).and_then(|v| v.as_str()).map(str::to_owned)
        };
        let kind = object.as_ref().and_then(|o| field(o, &["kind"]));
        let name = object.as_ref().and_then(|o| {
            field(o, &["metadata", "name"]).or_else(|| field(o, &["metadata", "generateName"]).map(|g| format!("{g}*")))
        });
        let namespace = object.as_ref().and_then(|o| field(o, &["metadata", "namespace"]));
        checked += 1;
        if kind.as_deref() != Some(hit.kind) || name.as_deref() != Some(hit.name.as_str()) || namespace != hit.namespace
        {
            wrong.push(format!(
                "{}:{}: {} names {} {:?}/{} but holds {kind:?} {namespace:?}/{name:?}",
                origin.path, origin.line, found.check.id, hit.kind, hit.namespace, hit.name
            ));
        }
    }
    assert!(checked > 1000, "{checked} findings");
    assert!(
        wrong.is_empty(),
        "{} of {checked} findings in the wrong place:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}
