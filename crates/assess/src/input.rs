//! Reading manifests for the offline assessment: files, directories (recursively), and
//! standard input; multi-document YAML, JSON (one or more values), and `List` objects.
//!
//! Every document is parsed on its own, so one that does not parse is reported with its path
//! and line and the others are still assessed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kube9_checks::Snapshot;

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

/// An object's identity, as findings name it: kind, namespace, name.
pub type Key = (String, Option<String>, String);

/// Everything read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub origins: HashMap<Key, Origin>,
    pub files: usize,
    pub documents: usize,
    pub errors: Vec<InputError>,
}

impl Loaded {
    pub fn origin(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&Origin> {
        self.origins.get(&(kind.to_owned(), namespace.map(str::to_owned), name.to_owned()))
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
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        add_json(loaded, path, text);
    } else {
        for (line, document) in yaml_documents(text) {
            match serde_yaml::from_str::<serde_json::Value>(document) {
                Ok(serde_json::Value::Null) => {}
                Ok(value) => add_value(loaded, path, line, value),
                Err(e) => {
                    let at = e.location().map_or(line, |l| line + l.line() - 1);
                    loaded.errors.push(error(
                        path,
                        Some(at),
                        format!("not valid YAML: {}", strip_location(&e.to_string())),
                    ));
                }
            }
        }
    }
}

fn add_json(loaded: &mut Loaded, path: &str, text: &str) {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let start = offset + text[offset..].len() - text[offset..].trim_start().len();
                let line = text[..start].matches('\n').count() + 1;
                match value {
                    serde_json::Value::Array(items) => {
                        for item in items {
                            add_value(loaded, path, line, item);
                        }
                    }
                    value => add_value(loaded, path, line, value),
                }
            }
            Some(Err(e)) => {
                loaded.errors.push(error(path, Some(e.line()), format!("not valid JSON: {e}")));
                break;
            }
        }
    }
}

/// serde_yaml appends " at line L column C"; the caller reports the line itself.
fn strip_location(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
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

fn add_value(loaded: &mut Loaded, path: &str, line: usize, value: serde_json::Value) {
    loaded.documents += 1;
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_owned();
    let items: Vec<&serde_json::Value> = match value.get("items").and_then(|i| i.as_array()) {
        Some(items) if kind.ends_with("List") => items.iter().collect(),
        _ => vec![&value],
    };
    for item in items {
        let meta =
            |field: &str| item.pointer(&format!("/metadata/{field}")).and_then(|v| v.as_str()).map(str::to_owned);
        if let (Some(kind), Some(name)) = (item.get("kind").and_then(|k| k.as_str()), meta("name")) {
            let origin = Origin { path: path.to_owned(), line };
            loaded.origins.entry((kind.to_owned(), meta("namespace"), name)).or_insert(origin);
        }
    }
    for skip in loaded.snapshot.add(value) {
        loaded.errors.push(error(path, Some(line), skip.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(l.origin("Deployment", Some("shop"), "web"), Some(&Origin { path: "m.yaml".into(), line: 3 }));
        assert_eq!(l.origin("Service", Some("shop"), "web").map(|o| o.line), Some(17));
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
        assert_eq!(l.origin("Namespace", None, "shop").map(|o| o.line), Some(3));
        let broken = loaded("{\"kind\": \n\n  ]");
        assert_eq!(broken.errors[0].line, Some(3), "{:?}", broken.errors);
    }

    #[test]
    fn an_object_the_engine_cannot_read_is_reported_where_it_is() {
        let l = loaded("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: odd}\nspec: {replicas: many}\n");
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].line, Some(1));
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
