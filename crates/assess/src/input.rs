//! Reading manifests for the offline assessment: files, directories (recursively), and
//! standard input; multi-document YAML (read as kubectl reads it, see [`crate::yaml`]), JSON
//! (one or more values), and `List` objects.
//!
//! Every document is parsed on its own, so one that does not parse is reported with its path
//! and the line of the offending field, and the others are still assessed. Each object is
//! tagged with where it came from (its `metadata.uid` is replaced by a source id, since a
//! manifest's uid means nothing offline), so every finding names its own file and line even
//! when two files hold objects of the same kind, namespace and name.

use std::path::{Path, PathBuf};

use kube9_checks::Snapshot;
use kube9_checks::snapshot::Skip;
use kube9_checks::subject::SOURCE_UID_PREFIX;

use crate::yaml;

/// Where an object came from: a path (`-` for standard input) and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub path: String,
    pub line: usize,
}

/// Something that could not be read, parsed or assessed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InputError {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Everything read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Snapshot,
    /// Where each object came from, by the source id in its uid.
    pub origins: Vec<Origin>,
    pub files: usize,
    /// Documents read (a `List` is one document).
    pub documents: usize,
    /// Documents and objects that could not be read or taken by the engine.
    pub errors: Vec<InputError>,
}

impl Loaded {
    /// Where the object with this source number (`Hit::source`) came from.
    pub fn origin(&self, source: Option<u32>) -> Option<&Origin> {
        self.origins.get(source? as usize)
    }
}

/// Reads every input; `-` is standard input.
pub fn load(inputs: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    for input in inputs {
        if input == Path::new("-") {
            let mut text = String::new();
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                Ok(_) => add_text(&mut loaded, "-", &text),
                Err(e) => loaded.errors.push(error("-", None, format!("cannot read standard input: {e}"))),
            }
        } else if input.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files, &mut loaded.errors);
            files.sort();
            for file in files {
                add_file(&mut loaded, &file);
            }
        } else {
            add_file(&mut loaded, input);
        }
    }
    loaded
}

fn error(path: &str, line: Option<usize>, message: String) -> InputError {
    InputError { path: path.to_owned(), line, message }
}

/// Manifest files under `dir`: `.yaml`, `.yml` and `.json`, hidden entries skipped.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return errors.push(error(&dir.display().to_string(), None, format!("cannot read directory: {e}"))),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, files, errors);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            files.push(path);
        }
    }
}

fn add_file(loaded: &mut Loaded, path: &Path) {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => add_text(loaded, &shown, &text),
        Err(e) => loaded.errors.push(error(&shown, None, format!("cannot read: {e}"))),
    }
}

/// Adds the objects in one file's text.
pub fn add_text(loaded: &mut Loaded, path: &str, text: &str) {
    loaded.files += 1;
    let trimmed = text.trim_start();
    // A JSON stream (one or more values, as `kubectl get -o json` writes); a YAML flow
    // mapping (`{apiVersion: v1, ...}`) starts the same way and falls through to YAML.
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match json_values(text) {
            Ok(values) => {
                for (start, end, value) in values {
                    add_json_value(loaded, path, &text[start..end], line_at(text, start), value);
                }
                return;
            }
            Err(e) if path.ends_with(".json") && yaml::parse(text, 1).is_err() => {
                loaded.errors.push(error(path, Some(e.line()), format!("not valid JSON: {e}")));
                return;
            }
            Err(_) => {}
        }
    }
    for (line, chunk) in yaml_documents(text) {
        match yaml::parse(chunk, line) {
            Ok(nodes) => {
                for (index, node) in nodes.into_iter().enumerate() {
                    let source = Source { path, text: chunk, first_line: line, document: index, element: None };
                    add_node(loaded, &source, node);
                }
            }
            Err(e) => {
                loaded.documents += 1;
                loaded.errors.push(error(path, Some(e.line), format!("not valid YAML: {}", e.message)));
            }
        }
    }
}

/// Where a document's text is, to find the line of a field when its object is refused.
#[derive(Clone, Copy)]
struct Source<'a> {
    path: &'a str,
    text: &'a str,
    first_line: usize,
    /// Which document of `text`.
    document: usize,
    /// Which element, when the document is a JSON array of objects.
    element: Option<usize>,
}

impl Source<'_> {
    /// The line of `field` (dotted, as the engine names it) in item `item` (of a List) or the
    /// document itself. Reads the text again: only done for an object the engine refused.
    fn line_of(&self, item: Option<usize>, field: &str) -> Option<usize> {
        fn nth(node: yaml::Node, i: usize) -> Option<yaml::Node> {
            match node.value {
                yaml::Value::Seq(mut items) if i < items.len() => Some(items.swap_remove(i)),
                _ => None,
            }
        }
        let mut docs = yaml::parse(self.text, self.first_line).ok()?;
        let mut node = (self.document < docs.len()).then(|| docs.swap_remove(self.document))?;
        if let Some(i) = self.element {
            node = nth(node, i)?;
        }
        if let Some(i) = item {
            node = nth(node.get("items")?.clone(), i)?;
        }
        Some(node.line_of(segments(field)))
    }
}

/// `spec.containers[0].ports[1].containerPort` as keys and indexes:
/// `spec`, `containers`, `0`, `ports`, `1`, `containerPort`.
fn segments(field: &str) -> impl Iterator<Item = &str> {
    field.split('.').flat_map(|part| part.split(['[', ']'])).filter(|s| !s.is_empty())
}

fn json_values(text: &str) -> Result<Vec<(usize, usize, serde_json::Value)>, serde_json::Error> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => return Ok(values),
            Some(Ok(value)) => {
                let start = offset + text[offset..].len() - text[offset..].trim_start().len();
                values.push((start, stream.byte_offset(), value));
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// A JSON value: an object, a `List`, or an array of objects. It is read again as YAML (JSON
/// is YAML's flow style) for the lines of its items and fields.
fn add_json_value(loaded: &mut Loaded, path: &str, text: &str, line: usize, value: serde_json::Value) {
    let source = Source { path, text, first_line: line, document: 0, element: None };
    match yaml::parse(text, line) {
        Ok(mut nodes) if nodes.len() == 1 => match nodes.remove(0) {
            yaml::Node { value: yaml::Value::Seq(items), .. } => {
                for (index, item) in items.into_iter().enumerate() {
                    add_node(loaded, &Source { element: Some(index), ..source }, item);
                }
            }
            node => add_node(loaded, &source, node),
        },
        // JSON the YAML reader does not take: every error at the value's first line.
        _ => {
            let items = match value {
                serde_json::Value::Array(items) => items,
                value => vec![value],
            };
            for value in items {
                loaded.documents += 1;
                add_object(loaded, path, line, value, |_| None);
            }
        }
    }
}

/// One document: an object, or a `List` of them.
fn add_node(loaded: &mut Loaded, source: &Source<'_>, mut node: yaml::Node) {
    loaded.documents += 1;
    let is_list = node.get("kind").and_then(yaml::Node::as_str).is_some_and(|k| k.ends_with("List"))
        && matches!(node.get("items").map(|i| &i.value), Some(yaml::Value::Seq(_)));
    if is_list {
        let items = match &mut node.value {
            yaml::Value::Map(entries) => entries
                .iter_mut()
                .rev()
                .find(|(k, _)| k == "items")
                .map(|(_, v)| std::mem::replace(&mut v.value, yaml::Value::Null)),
            _ => None,
        };
        if let Some(yaml::Value::Seq(items)) = items {
            for (index, item) in items.into_iter().enumerate() {
                let line = item.line;
                add_object(loaded, source.path, line, item.into_json(), |field| source.line_of(Some(index), field));
            }
        }
        return;
    }
    let line = node.line;
    add_object(loaded, source.path, line, node.into_json(), |field| source.line_of(None, field));
}

/// One object: tagged with its source, handed to the engine; what the engine refuses is
/// reported at the line of the offending field.
fn add_object(
    loaded: &mut Loaded,
    path: &str,
    line: usize,
    mut value: serde_json::Value,
    line_of: impl Fn(&str) -> Option<usize>,
) {
    let id = loaded.origins.len();
    loaded.origins.push(Origin { path: path.to_owned(), line });
    if let Some(map) = value.as_object_mut() {
        let meta = map.entry("metadata").or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("uid".into(), format!("{SOURCE_UID_PREFIX}{id}").into());
        }
    }
    for skip in loaded.snapshot.add(value) {
        let at = match &skip {
            Skip::Invalid { field: Some(field), .. } => line_of(field).unwrap_or(line),
            _ => line,
        };
        loaded.errors.push(error(path, Some(at), skip.to_string()));
    }
}

/// Splits YAML text into documents at `---` lines (and after `...`), each with its first line.
fn yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let (mut start, mut start_line) = (0, 1);
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        let marker = bare == "---" || bare.starts_with("--- ") || bare == "...";
        if marker {
            documents.push((start_line, &text[start..offset]));
            // Content after `--- ` on the same line belongs to the next document.
            let rest = if bare.starts_with("--- ") { 4 } else { line.len() };
            start = offset + rest.min(line.len());
            start_line = index + 1 + usize::from(rest >= line.len());
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The origin of the `index`th workload, which must be named `name`.
    fn origin<'l>(l: &'l Loaded, name: &str, index: usize) -> Option<&'l Origin> {
        let w = &l.snapshot.workloads[index];
        assert_eq!(w.metadata.name.as_deref(), Some(name));
        l.origin(kube9_checks::subject::source_of(&w.metadata))
    }

    fn loaded(text: &str) -> Loaded {
        let mut loaded = Loaded::default();
        add_text(&mut loaded, "m.yaml", text);
        loaded
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    spec:\n      containers: [{name: app, image: web}]\n";

    #[test]
    fn documents_keep_their_first_line_and_a_bad_one_does_not_stop_the_rest() {
        let text = format!(
            "# leading comment\n---\n{DEPLOYMENT}---\napiVersion: v1\nkind: a: b\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop}}\n"
        );
        let l = loaded(&text);
        assert_eq!(l.snapshot.workloads.len(), 1);
        assert_eq!(l.snapshot.services.len(), 1);
        assert_eq!(origin(&l, "web", 0), Some(&Origin { path: "m.yaml".into(), line: 3 }));
        assert_eq!(l.origins[1], Origin { path: "m.yaml".into(), line: 17 });
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert_eq!((l.errors[0].path.as_str(), l.errors[0].line), ("m.yaml", Some(15)));
        assert!(l.errors[0].message.starts_with("not valid YAML"), "{}", l.errors[0]);
    }

    #[test]
    fn lists_and_json_streams_are_read() {
        let list = format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{}]}}\n\n{{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {{\"name\": \"shop\"}}}}",
            serde_json::to_string(&serde_yaml::from_str::<serde_json::Value>(DEPLOYMENT).unwrap()).unwrap()
        );
        let l = loaded(&list);
        assert_eq!((l.snapshot.workloads.len(), l.snapshot.namespaces.len(), l.documents), (1, 1, 2));
        assert_eq!(
            l.origin(kube9_checks::subject::source_of(&l.snapshot.namespaces[0].metadata)).map(|o| o.line),
            Some(3)
        );
        let broken = loaded("{\"kind\": \n\n  ]");
        assert_eq!(broken.errors[0].line, Some(3), "{:?}", broken.errors);
    }

    #[test]
    fn an_object_the_engine_cannot_read_is_reported_where_it_is() {
        let l = loaded(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: odd}\nspec:\n  selector: {}\n  replicas: many\n",
        );
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].line, Some(6), "the offending field's line: {}", l.errors[0]);
        assert!(l.errors[0].message.contains("spec.replicas"), "{}", l.errors[0]);
        assert!(l.errors[0].message.contains("Deployment odd"), "{}", l.errors[0]);
    }

    #[test]
    fn directories_are_walked_recursively_in_order() {
        let dir = std::env::temp_dir().join(format!("kube9-assess-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nested/.hidden")).unwrap();
        std::fs::write(dir.join("b.yaml"), DEPLOYMENT).unwrap();
        std::fs::write(dir.join("nested/a.yml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n").unwrap();
        std::fs::write(dir.join("nested/.hidden/c.yaml"), DEPLOYMENT).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let l = load(std::slice::from_ref(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((l.files, l.documents, l.errors.len()), (2, 2, 0), "{:?}", l.errors);
        let missing = load(&[PathBuf::from("/nonexistent/kube9.yaml")]);
        assert!(missing.errors[0].message.starts_with("cannot read"), "{:?}", missing.errors);
    }
}
