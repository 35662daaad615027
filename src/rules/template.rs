//! Templates (`{year}/{vendor}/{file.name}`): parsed once at load time, rendered per file.
//!
//! A template is text with `{…}` placeholders; `{{` and `}}` stand for literal braces. Placeholders:
//! `{capture}` (a named group of the matched pattern), `{account.name}`, `{account.<attribute>}`,
//! `{transfer.id|sha256|received_at|protocol|size}`, `{file.name|stem|ext}` and `{meta.<field>}`.
//! Names are checked at load time ([`Template::vars`] lets the loader do that); rendering never
//! panics and refuses output longer than [`MAX_OUTPUT`].

use std::fmt;

/// Longest rendered template, in bytes: metadata values and paths stay readable and bounded.
pub const MAX_OUTPUT: usize = 4096;
/// Longest destination path, in bytes.
pub const MAX_PATH: usize = 1024;
/// Longest single component of a destination path, in bytes (common filesystem limit).
pub const MAX_COMPONENT: usize = 255;

/// One placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// A named capture of the accept pattern.
    Capture(String),
    /// `account.name` or an account attribute.
    Account(String),
    /// A transfer field.
    Transfer(TransferField),
    /// A field of the item's source (`{transfer.source.path}`), for connector-fed channels.
    Source(String),
    /// A part of the file name.
    File(FileField),
    /// A metadata field computed earlier.
    Meta(String),
}

/// Fields of `{transfer.X}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferField {
    /// The transfer's ULID.
    Id,
    /// SHA-256 of the body, hex.
    Sha256,
    /// When the upload completed (RFC 3339).
    ReceivedAt,
    /// `sftp`, `ftp`, `ftps`, `hotfolder`, ...
    Protocol,
    /// Body size in bytes.
    Size,
}

impl TransferField {
    const NAMES: [&'static str; 5] = ["id", "sha256", "received_at", "protocol", "size"];

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Sha256 => "sha256",
            Self::ReceivedAt => "received_at",
            Self::Protocol => "protocol",
            Self::Size => "size",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "id" => Self::Id,
            "sha256" => Self::Sha256,
            "received_at" => Self::ReceivedAt,
            "protocol" => Self::Protocol,
            "size" => Self::Size,
            _ => return None,
        })
    }
}

/// Fields of `{file.X}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileField {
    /// The whole name.
    Name,
    /// The name without its last extension.
    Stem,
    /// The last extension, without the dot (empty if none).
    Ext,
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Var::Capture(c) => write!(f, "{{{c}}}"),
            Var::Account(a) => write!(f, "{{account.{a}}}"),
            Var::Transfer(t) => write!(f, "{{transfer.{}}}", t.name()),
            Var::Source(s) => write!(f, "{{transfer.source.{s}}}"),
            Var::File(FileField::Name) => f.write_str("{file.name}"),
            Var::File(FileField::Stem) => f.write_str("{file.stem}"),
            Var::File(FileField::Ext) => f.write_str("{file.ext}"),
            Var::Meta(m) => write!(f, "{{meta.{m}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// A field or attribute name: what may follow `account.` or `meta.` or stand alone as a capture.
pub fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_var(name: &str) -> Result<Var, String> {
    let bad = |what: &str| Err(format!("`{{{name}}}`: {what}"));
    match name.split_once('.') {
        None if is_ident(name) => Ok(Var::Capture(name.to_string())),
        None => bad("not a placeholder name (letters, digits and `_`)"),
        Some(("account", a)) if is_ident(a) => Ok(Var::Account(a.to_string())),
        Some(("meta", m)) if is_ident(m) => Ok(Var::Meta(m.to_string())),
        Some(("transfer", t)) if t.strip_prefix("source.").is_some_and(is_ident) => {
            Ok(Var::Source(t["source.".len()..].to_string()))
        }
        Some(("transfer", t)) => TransferField::parse(t).map(Var::Transfer).ok_or_else(|| {
            format!("`{{{name}}}`: unknown transfer field; use one of {}, or source.X", TransferField::NAMES.join(", "))
        }),
        Some(("file", "name")) => Ok(Var::File(FileField::Name)),
        Some(("file", "stem")) => Ok(Var::File(FileField::Stem)),
        Some(("file", "ext")) => Ok(Var::File(FileField::Ext)),
        Some(("file", _)) => bad("unknown file field; use file.name, file.stem or file.ext"),
        Some(_) => bad("unknown placeholder; use a capture, account.X, transfer.X, file.X or meta.X"),
    }
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    /// An unbalanced brace or an unknown placeholder, described for the rule author.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!("unclosed `{{` in `{source}` (write `{{{{` for a brace)"));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var(parse_var(name.trim())?));
                }
                '}' => return Err(format!("unmatched `}}` in `{source}` (write `}}}}` for a brace)")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { source: source.to_string(), pieces })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholders, in order.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v),
            Piece::Lit(_) => None,
        })
    }

    /// Renders the template; `value` resolves each placeholder.
    ///
    /// # Errors
    /// The first placeholder without a value (`value` returned `Err`), or output over [`MAX_OUTPUT`].
    pub fn render(&self, value: impl Fn(&Var) -> Result<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => out.push_str(&value(v)?),
            }
            if out.len() > MAX_OUTPUT {
                return Err(format!("`{}` renders to more than {MAX_OUTPUT} bytes", self.source));
            }
        }
        Ok(out)
    }
}

/// The parts of a file name for `{file.X}`: `(stem, ext)`, the extension without the dot.
pub fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext),
        _ => (name, ""),
    }
}

/// Checks that a rendered destination is a safe relative path.
///
/// # Errors
/// What is wrong: absolute, a `.` or `..` component, an empty component, a backslash or control
/// character, or too long.
pub fn check_destination(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    if path.starts_with('/') {
        return Err(format!("`{path}` is absolute; a destination is relative to its target"));
    }
    if let Some(c) = path.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(format!("`{}` contains the character {c:?}, which is not allowed in a path", path.escape_debug()));
    }
    for comp in path.split('/') {
        match comp {
            "" => return Err(format!("`{path}` has an empty folder name (`//` or a trailing `/`)")),
            "." | ".." => return Err(format!("`{path}` contains `{comp}`, which could leave the target's folder")),
            c if c.len() > MAX_COMPONENT => {
                return Err(format!("`{path}` has a name longer than {MAX_COMPONENT} bytes"));
            }
            c if c.trim() != c => return Err(format!("`{path}` has a name with leading or trailing spaces")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str) -> Result<String, String> {
        let t = Template::parse(t)?;
        t.render(|v| match v {
            Var::Capture(c) if c == "year" => Ok("2026".into()),
            Var::File(FileField::Name) => Ok("a.pdf".into()),
            other => Err(format!("{other} has no value")),
        })
    }

    #[test]
    fn placeholders_render_and_braces_escape() {
        assert_eq!(render("{year}/{file.name}").as_deref(), Ok("2026/a.pdf"));
        assert_eq!(render("{{literal}} {year}").as_deref(), Ok("{literal} 2026"));
        assert_eq!(render("{vendor}"), Err("{vendor} has no value".into()));
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        assert!(Template::parse("{year").unwrap_err().contains("unclosed"));
        assert!(Template::parse("year}").unwrap_err().contains("unmatched"));
        assert!(Template::parse("{transfer.size2}").unwrap_err().contains("unknown transfer field"));
        assert!(Template::parse("{a-b}").unwrap_err().contains("not a placeholder name"));
        assert!(Template::parse("{x.y}").unwrap_err().contains("unknown placeholder"));
    }

    #[test]
    fn output_is_capped() {
        let t = Template::parse("{year}").expect("parses");
        let long = "x".repeat(MAX_OUTPUT + 1);
        assert!(t.render(|_| Ok(long.clone())).unwrap_err().contains("more than"));
    }

    #[test]
    fn unsafe_destinations_are_refused() {
        assert!(check_destination("2026/ACME/a.pdf").is_ok());
        for bad in ["", "/abs/a.pdf", "a/../b", "./a", "a//b", "a/", "a\\b", "a\nb", "a/ b"] {
            assert!(check_destination(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(check_destination(&"a/".repeat(600)).is_err());
        assert!(check_destination(&"x".repeat(256)).is_err());
    }

    #[test]
    fn names_split_into_stem_and_extension() {
        assert_eq!(split_name("a.b.pdf"), ("a.b", "pdf"));
        assert_eq!(split_name("README"), ("README", ""));
        assert_eq!(split_name(".hidden"), (".hidden", ""));
    }

    #[test]
    fn source_fields_of_polled_items_are_placeholders() {
        let t = Template::parse("{transfer.source.folder}/{file.name}").expect("parses");
        let vars: Vec<String> = t.vars().map(ToString::to_string).collect();
        assert_eq!(vars, ["{transfer.source.folder}", "{file.name}"]);
        assert!(Template::parse("{transfer.source.}").unwrap_err().contains("unknown transfer field"));
        assert!(Template::parse("{transfer.source.a-b}").unwrap_err().contains("source.X"));
    }
}
