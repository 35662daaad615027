//! Client path normalisation: the first half of the jail.
//!
//! Every path a client sends is turned into a [`VPath`], a list of plain components below the
//! account's root, before anything else looks at it. `..` can never climb above `/`, and names that
//! could mean something else to a filesystem or a log (NUL, control characters, backslashes, overlong
//! components) are refused here, once, for every protocol.

use std::fmt;

/// Longest accepted path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a client path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    /// One component is longer than [`MAX_NAME_BYTES`].
    #[error("a name in the path is longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong,
    /// NUL or another control character.
    #[error("path contains a control character (code {0:#04x}); names must be printable")]
    ControlCharacter(u32),
    /// A backslash: a Windows separator on the wire is a traversal attempt or a mistake.
    #[error("path contains a backslash; use `/` to separate folders")]
    Backslash,
    /// A bidirectional override or mark: `invoice\u{202e}fdp.exe` displays as `invoiceexe.pdf`
    /// to the person who later opens the exception folder.
    #[error(
        "path contains the bidirectional control character U+{0:04X}, which makes a name display as something it is not"
    )]
    BidiControl(u32),
}

/// Whether `c` reorders or marks text direction (LRM, RLM, embeddings, overrides, isolates).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A normalised path below an account's root: no `.`, no `..`, no empty components.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VPath(Vec<String>);

impl VPath {
    /// The account's root, `/`.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The last component, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This path with one more component (already validated by the caller).
    pub fn join(&self, name: &str) -> Self {
        let mut v = self.0.clone();
        v.push(name.to_string());
        Self(v)
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for c in &self.0 {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

/// Checks one name (a file or folder name a client wants to create or use).
///
/// # Errors
/// The reason the name is refused.
pub fn check_name(name: &str) -> Result<(), PathError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(PathError::NameTooLong);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(PathError::ControlCharacter(c as u32));
    }
    if let Some(c) = name.chars().find(|c| is_bidi_control(*c)) {
        return Err(PathError::BidiControl(c as u32));
    }
    if name.contains('\\') {
        return Err(PathError::Backslash);
    }
    Ok(())
}

/// Normalises a client path, absolute or relative to `/`.
///
/// # Errors
/// The reason the path is refused.
pub fn normalize(raw: &str) -> Result<VPath, PathError> {
    normalize_in(&VPath::root(), raw)
}

/// Normalises a client path relative to a working directory `cwd` (absolute paths ignore it).
///
/// # Errors
/// The reason the path is refused.
pub fn normalize_in(cwd: &VPath, raw: &str) -> Result<VPath, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let mut parts = if raw.starts_with('/') { Vec::new() } else { cwd.0.clone() };
    for comp in raw.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => {
                check_name(name)?;
                parts.push(name.to_string());
            }
        }
    }
    Ok(VPath(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize(s).map(|p| p.to_string()).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(norm("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("../../.."), "/");
        assert_eq!(norm("/invoices/../../../invoices/./a.pdf"), "/invoices/a.pdf");
        assert_eq!(norm("//invoices///a.pdf/"), "/invoices/a.pdf");
        let cwd = normalize("/invoices").unwrap_or_default();
        assert_eq!(normalize_in(&cwd, "../../x").map(|p| p.to_string()), Ok("/x".into()));
        assert_eq!(normalize_in(&cwd, "a.pdf").map(|p| p.to_string()), Ok("/invoices/a.pdf".into()));
    }

    #[test]
    fn hostile_characters_are_refused() {
        assert_eq!(normalize("/a\0b"), Err(PathError::ControlCharacter(0)));
        assert_eq!(normalize("/a\nb"), Err(PathError::ControlCharacter(10)));
        assert_eq!(normalize("/a\u{7f}"), Err(PathError::ControlCharacter(0x7f)));
        assert_eq!(normalize("/in/invoice\u{202e}fdp.exe"), Err(PathError::BidiControl(0x202e)));
        assert_eq!(normalize("/in/\u{2067}x.pdf"), Err(PathError::BidiControl(0x2067)));
        assert!(normalize("/in/Räkning ü.pdf").is_ok(), "other non-ASCII names are fine");
        assert_eq!(normalize("..\\..\\etc\\passwd"), Err(PathError::Backslash));
        // Percent-encoding is not decoded: it is a literal (harmless) name inside the jail.
        assert_eq!(norm("/%2e%2e/%2e%2e/etc"), "/%2e%2e/%2e%2e/etc");
    }

    #[test]
    fn length_limits() {
        let long = "a".repeat(256);
        assert_eq!(normalize(&format!("/{long}")), Err(PathError::NameTooLong));
        assert!(normalize(&format!("/{}", "a".repeat(255))).is_ok());
        let deep = "/ab".repeat(1400);
        assert_eq!(normalize(&deep), Err(PathError::TooLong));
    }
}
