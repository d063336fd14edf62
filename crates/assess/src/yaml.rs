//! YAML as kubectl reads it: YAML 1.1 scalars (sigs.k8s.io/yaml decodes through go-yaml v2),
//! merge keys and anchors, with the line of every node kept for errors and findings.
//!
//! The parser is libyaml's (as a safe Rust port: go-yaml v2, which kubectl uses, is itself a
//! port of libyaml, so both accept the same text); what a plain scalar means is decided here,
//! the way go-yaml v2 resolves it: `yes`/`no`/`on`/`off`/`y`/`n` are booleans, `0400` is octal, `0x1F` hex,
//! `0b101` binary, `1_000` an integer, `~` null. Quoted and block scalars are strings.
//! `<<` merges a mapping (or a list of them) in place: keys that follow override it, and the
//! first of a list wins over later ones, as go-yaml v2 does.

use std::collections::HashMap;

use libyaml_safer::{EventData, Parser, ScalarStyle};

/// A YAML node and the 1-based line where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in the order written; a later duplicate overrides an earlier one (merged
    /// entries are spliced in where the `<<` key stood).
    Map(Vec<(String, Node)>),
}

/// A document that is not YAML, with the line where reading stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl Node {
    /// The value of `key` in a mapping (the last one written wins, as in the decoded object).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The deepest node on `path` (mapping keys and sequence indexes), and its line.
    pub fn line_of<'p>(&self, path: impl IntoIterator<Item = &'p str>) -> usize {
        let mut node = self;
        for segment in path {
            let next = match &node.value {
                Value::Map(_) => node.get(segment),
                Value::Seq(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.line
    }

    /// The JSON value kubectl would send, consuming the node.
    pub fn into_json(self) -> serde_json::Value {
        match self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => serde_json::Value::from(i),
            Value::Float(f) => {
                serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Value::Str(s) => serde_json::Value::String(s),
            Value::Seq(items) => serde_json::Value::Array(items.into_iter().map(Node::into_json).collect()),
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k, v.into_json());
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

/// Parses one YAML stream into its documents (empty documents are left out). Lines count from
/// `first_line`.
pub fn parse(text: &str, first_line: usize) -> Result<Vec<Node>, SyntaxError> {
    // libyaml-safer 0.3 panics on a block scalar that ends the input without a line break.
    let owned;
    let text = if text.ends_with('\n') {
        text
    } else {
        owned = format!("{text}\n");
        &owned
    };
    std::panic::catch_unwind(|| parse_text(text, first_line)).unwrap_or_else(|_| {
        Err(SyntaxError { line: first_line, message: "the YAML reader failed on this document".into() })
    })
}

fn parse_text(text: &str, first_line: usize) -> Result<Vec<Node>, SyntaxError> {
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut builder = Builder::default();
    let mut documents = Vec::new();
    loop {
        let event = parser.parse().map_err(|e| SyntaxError {
            line: e.problem_mark().map_or(first_line, |m| m.line as usize + first_line),
            message: e.problem().to_owned(),
        })?;
        let line = event.start_mark.line as usize + first_line;
        match event.data {
            EventData::StreamEnd => break,
            EventData::DocumentStart { .. } => builder.anchors.clear(),
            EventData::DocumentEnd { .. } => {
                if let Some(root) = builder.root.take()
                    && root.value != Value::Null
                {
                    documents.push(root);
                }
            }
            data => builder.event(data, line)?,
        }
    }
    Ok(documents)
}

enum Open {
    Seq(Node),
    /// The mapping, and the key read when its value is awaited (with whether it is `<<`).
    Map(Node, Option<(String, bool)>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Open, Option<String>)>,
    anchors: HashMap<String, Node>,
    root: Option<Node>,
}

impl Builder {
    fn event(&mut self, event: EventData, line: usize) -> Result<(), SyntaxError> {
        match event {
            EventData::Scalar { value: text, style, anchor, tag, .. } => {
                let plain = style == ScalarStyle::Plain;
                // A mapping awaiting a key takes the scalar as a key, kept as written.
                if let Some((Open::Map(_, key @ None), _)) = self.stack.last_mut() {
                    let merge = plain && text == "<<" && tag.is_none();
                    let name = if plain && tag.is_none() { key_text(resolve(text)) } else { text };
                    *key = Some((name, merge));
                    return Ok(());
                }
                let value = if plain { scalar(text, tag.as_deref()) } else { Value::Str(text) };
                self.value(Node { line, value }, anchor, line)
            }
            EventData::SequenceStart { anchor, .. } => {
                self.stack.push((Open::Seq(Node { line, value: Value::Seq(Vec::new()) }), anchor));
                Ok(())
            }
            EventData::MappingStart { anchor, .. } => {
                self.stack.push((Open::Map(Node { line, value: Value::Map(Vec::new()) }, None), anchor));
                Ok(())
            }
            EventData::SequenceEnd | EventData::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some((Open::Seq(node) | Open::Map(node, _), anchor)) => (node, anchor),
                    None => return Ok(()),
                };
                self.value(node, anchor, line)
            }
            EventData::Alias { anchor } => match self.anchors.get(&anchor) {
                Some(node) => {
                    let node = node.clone();
                    // A key that is an alias (`*name: value`) is taken by its text form.
                    if let Some((Open::Map(_, key @ None), _)) = self.stack.last_mut() {
                        *key = Some((key_text(node.value), false));
                        return Ok(());
                    }
                    self.value(node, None, line)
                }
                None => Err(SyntaxError { line, message: format!("alias *{anchor} to an unknown anchor") }),
            },
            _ => Ok(()),
        }
    }

    /// Places a finished node in its parent (or as the document's root).
    fn value(&mut self, node: Node, anchor: Option<String>, line: usize) -> Result<(), SyntaxError> {
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Open::Seq(Node { value: Value::Seq(items), .. }), _)) => items.push(node),
            Some((Open::Map(map, key), _)) => {
                let Value::Map(entries) = &mut map.value else { unreachable!("an open mapping holds a map") };
                match key.take() {
                    Some((_, true)) => merge(entries, node, line)?,
                    Some((name, false)) => entries.push((name, node)),
                    // A mapping or sequence used as a key: go-yaml cannot make that JSON either.
                    None => {
                        return Err(SyntaxError {
                            line,
                            message: "a mapping key must be a scalar to be read as JSON".into(),
                        });
                    }
                }
            }
            Some((Open::Seq(_), _)) => unreachable!("an open sequence holds a sequence"),
        }
        Ok(())
    }
}

/// `<<: *base` or `<<: [*a, *b]`: the merged entries, spliced where the key stood.
fn merge(entries: &mut Vec<(String, Node)>, node: Node, line: usize) -> Result<(), SyntaxError> {
    let bad = || SyntaxError { line, message: "a merge key (<<) takes a mapping or a list of mappings".into() };
    match node.value {
        Value::Map(merged) => entries.extend(merged),
        // The first mapping of the list wins: added last.
        Value::Seq(list) => {
            for item in list.into_iter().rev() {
                match item.value {
                    Value::Map(merged) => entries.extend(merged),
                    _ => return Err(bad()),
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

/// A key as JSON names it: a plain `true`, `1` or `~` becomes its text form.
fn key_text(value: Value) -> String {
    match value {
        Value::Str(s) => s,
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Seq(_) | Value::Map(_) => String::new(),
    }
}

/// A plain scalar, honouring an explicit `!!str` (or the non-specific `!`); other tags change
/// nothing JSON can express.
fn scalar(text: String, tag: Option<&str>) -> Value {
    match tag {
        Some("tag:yaml.org,2002:str" | "!") => Value::Str(text),
        _ => resolve(text),
    }
}

/// What go-yaml v2 makes of a plain scalar.
pub fn resolve(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Value::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(i) = integer(&text) {
            return Value::Int(i);
        }
        if float_syntax(&text)
            && let Ok(f) = text.parse::<f64>()
        {
            return Value::Float(f);
        }
    }
    Value::Str(text)
}

/// Go's `strconv.ParseInt(s, 0, 64)` after removing underscores: a sign, then `0x`, `0o`,
/// `0b` or a leading `0` (octal) prefix, or decimal.
fn integer(text: &str) -> Option<i64> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (negative, digits) = match clean.as_bytes().first()? {
        b'-' => (true, &clean[1..]),
        b'+' => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let (radix, body) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// go-yaml v2's float pattern: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn float_syntax(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json(text: &str) -> serde_json::Value {
        let mut docs = parse(text, 1).unwrap();
        assert_eq!(docs.len(), 1, "{docs:?}");
        docs.remove(0).into_json()
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1_like_kubectl() {
        let v = json(
            "octal: 0400\nhex: 0x1F\nbin: 0b101\nunderscore: 1_000\nyes: yes\nno: No\non: on\noff: OFF\nwhy: y\n\
             float: 1.5\nexp: 1e3\nleading: 08\nnull: ~\nempty:\nquoted: '0400'\nversion: 1.10\ntext: 1.2.3\ndate: 2024-01-01\n",
        );
        assert_eq!(v["octal"], 256);
        assert_eq!((v["hex"].as_i64(), v["bin"].as_i64(), v["underscore"].as_i64()), (Some(31), Some(5), Some(1000)));
        // Keys resolve too: kubectl sends `yes:` as "true".
        assert_eq!((v["true"].clone(), v["false"].clone()), (json!(true), json!(false)));
        assert_eq!(v["why"], true);
        assert_eq!(
            (v["float"].as_f64(), v["exp"].as_f64(), v["leading"].as_f64()),
            (Some(1.5), Some(1000.0), Some(8.0))
        );
        assert_eq!((v["null"].clone(), v["empty"].clone()), (json!(null), json!(null)));
        assert_eq!(v["quoted"], "0400");
        assert_eq!(v["version"].as_f64(), Some(1.1));
        assert_eq!((v["text"].as_str(), v["date"].as_str()), (Some("1.2.3"), Some("2024-01-01")));
    }

    #[test]
    fn merge_keys_and_aliases_are_expanded_as_go_yaml_v2_does() {
        let v = json(
            "base: &base {privileged: true, runAsUser: 0}\nother: &other {runAsUser: 5, readOnly: true}\n\
             one: {<<: *base, runAsUser: 1000}\nlist: {<<: [*base, *other]}\nalias: *base\n",
        );
        assert_eq!(v["one"], json!({"privileged": true, "runAsUser": 1000}));
        assert_eq!(v["list"], json!({"privileged": true, "runAsUser": 0, "readOnly": true}), "the first map wins");
        assert_eq!(v["alias"], json!({"privileged": true, "runAsUser": 0}));
    }

    #[test]
    fn nodes_keep_their_lines_and_errors_name_theirs() {
        let docs = parse(
            "# c\n---\napiVersion: v1\nkind: List\nitems:\n  - kind: Pod\n    spec:\n      x: 1\n---\n{a: 1}\n",
            1,
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[0].get("items").map(|i| i.line_of(["0", "spec", "x"])), Some(8));
        assert_eq!(docs[1].line, 10, "a flow mapping document");
        let err = parse("a: 1\nb: [1, 2\nc: 3\n", 10).unwrap_err();
        assert!(err.line >= 11, "{err:?}");
    }
}
