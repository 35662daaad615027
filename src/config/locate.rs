//! Maps a key path inside a TOML document (`accounts[1].mounts[0].box`) back to its line and column,
//! so that every config and rule-file error can name the exact place a person has to edit.

use super::{Error, Problem};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array (arrays of tables included).
    Index(usize),
}

/// A path of keys from the document root, printed as `accounts[1].mounts[0].box`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The root of the document.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.to_string()));
        Self(v)
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        if first {
            f.write_str("(document)")?;
        }
        Ok(())
    }
}

/// The key path of a key that `serde_ignored` reported as unknown.
pub fn from_ignored(path: &serde_ignored::Path<'_>) -> KeyPath {
    use serde_ignored::Path as P;
    match path {
        P::Root => KeyPath::root(),
        P::Seq { parent, index } => from_ignored(parent).index(*index),
        P::Map { parent, key } => from_ignored(parent).key(key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => from_ignored(parent),
    }
}

/// 1-based line and column of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

/// Finds the span of the value (or, failing that, of the deepest existing parent) at `path`.
///
/// Returns the span of the *key* when the path ends at a table key, so that the reported column points
/// at the name a person recognises.
pub fn locate(text: &str, path: &KeyPath) -> Option<Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<Range<usize>> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in &path.0 {
        match seg {
            Seg::Key(k) => {
                let t = match (table, value) {
                    (Some(t), _) => t,
                    (None, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k.as_str()) else {
                    break;
                };
                best = Some(key.span());
                table = None;
                value = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(items)) = value else { break };
                let Some(item) = items.get(*i) else { break };
                best = Some(item.span());
                table = None;
                value = Some(item.get_ref());
            }
        }
    }
    best
}

/// Collects problems with their key paths while validating one document (a config or a rule
/// file), each located at its key.
pub struct Checker<'a> {
    /// The file being checked.
    pub file: &'a Path,
    text: &'a str,
    /// Problems so far.
    pub problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    /// A checker for `text`, read from `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self { file, text, problems: Vec::new() }
    }

    /// Records a problem at `key`.
    pub fn report(&mut self, key: &KeyPath, message: impl Into<String>) {
        let (line, col) = self.line_col(key);
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Where `key` is (or its deepest existing parent); `(1, 1)` if nothing of it exists.
    pub fn line_col(&self, key: &KeyPath) -> (usize, usize) {
        locate(self.text, key).map_or((1, 1), |span| line_col(self.text, span.start))
    }
}

/// Parses a TOML document into `T`, collecting every unknown key (instead of stopping at the
/// first) as a located problem in the returned [`Checker`], which validation then continues.
///
/// # Errors
/// A syntax or type error, located.
pub fn parse_document<'a, T: serde::de::DeserializeOwned>(
    path: &'a Path,
    text: &'a str,
) -> Result<(T, Checker<'a>), Error> {
    let mut unknown = Vec::new();
    let de = toml::de::Deserializer::parse(text).map_err(|e| syntax_error(path, text, &e))?;
    let value: T =
        serde_ignored::deserialize(de, |p| unknown.push(from_ignored(&p))).map_err(|e| syntax_error(path, text, &e))?;
    let mut ck = Checker::new(path, text);
    for key in &unknown {
        let name = match key.0.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => key.to_string(),
        };
        ck.report(key, format!("unknown field `{name}`: not a setting here (misspelt, or in the wrong section?)"));
    }
    Ok((value, ck))
}

/// A TOML syntax (or type) error as a located problem.
pub fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let (line, col, key) = match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            let key = text.get(span.clone()).unwrap_or("").trim().to_string();
            (l, c, if key.is_empty() || key.len() > 60 { "(syntax)".into() } else { key })
        }
        None => (1, 1, "(syntax)".to_string()),
    };
    Error(vec![Problem { file: path.to_path_buf(), line, col, key, message: e.message().trim().to_string() }])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[spool]\nroot = \"x\"\n\n[[accounts]]\nname = \"a\"\n\n[[accounts]]\nname = \"b\"\nmounts = [\n  { path = \"/in\", box = \"nope\" },\n]\n";

    fn at(path: &KeyPath) -> (usize, usize) {
        let span = locate(DOC, path).expect("located");
        line_col(DOC, span.start)
    }

    #[test]
    fn locates_keys_in_arrays_of_tables_and_inline_tables() {
        let p = KeyPath::root().key("accounts").index(1).key("mounts").index(0).key("box");
        assert_eq!(p.to_string(), "accounts[1].mounts[0].box");
        assert_eq!(at(&p), (10, 19));
        assert_eq!(at(&KeyPath::root().key("accounts").index(1).key("name")), (8, 1));
        assert_eq!(at(&KeyPath::root().key("spool").key("root")), (2, 1));
    }

    #[test]
    fn missing_key_falls_back_to_deepest_parent() {
        let p = KeyPath::root().key("accounts").index(0).key("mounts");
        assert_eq!(at(&p), (4, 1), "the [[accounts]] header of the table that lacks the key");
    }
}
