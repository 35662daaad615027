//! Dropbox paths: validation (`malformed_path`, `disallowed_name`), case folding, parents and the
//! autorename alternatives.
//!
//! Paths are case-insensitive: the key of an entry is its `path_lower` (Unicode lower case), the
//! display path keeps the case it was created with. The root is `""`.

/// Why a write path is refused (WriteError `malformed_path` or `disallowed_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    Malformed(String),
    Disallowed,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::Malformed(m) => write!(f, "malformed path: {m}"),
            PathError::Disallowed => write!(f, "disallowed name"),
        }
    }
}

/// Decision (UNVERIFIED): names Dropbox refuses to store (it ignores them in its desktop client and
/// answers `disallowed_name` over the API): `desktop.ini`, `thumbs.db`, `.ds_store`, `icon\r`,
/// `.dropbox`, `.dropbox.attr`, case-insensitively.
const DISALLOWED: &[&str] = &["desktop.ini", "thumbs.db", ".ds_store", "icon\r", ".dropbox", ".dropbox.attr"];

/// Checks a display path of a file or folder to write: `/` then non-empty components, no trailing
/// slash, no `.`/`..` components, no NUL; components may not end with a space (Decision
/// (UNVERIFIED): Dropbox strips or refuses them; we refuse as `malformed_path`).
pub fn check_write_path(p: &str) -> Result<(), PathError> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(PathError::Malformed("the path must start with \"/\"".into()));
    };
    if rest.is_empty() {
        return Err(PathError::Malformed("the root folder cannot be written".into()));
    }
    for c in rest.split('/') {
        if c.is_empty() {
            return Err(PathError::Malformed("empty path component".into()));
        }
        if c == "." || c == ".." {
            return Err(PathError::Malformed("\".\" and \"..\" are not allowed".into()));
        }
        if c.contains('\0') || c.ends_with(' ') {
            return Err(PathError::Malformed(format!("invalid component {c:?}")));
        }
        if DISALLOWED.contains(&c.to_lowercase().as_str()) {
            return Err(PathError::Disallowed);
        }
    }
    Ok(())
}

/// The case-folded key of a display path.
pub fn lower(p: &str) -> String {
    p.to_lowercase()
}

/// The parent of a path (`""` for a top-level entry and for the root).
pub fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => &p[..i],
        None => "",
    }
}

/// The last component of a path.
pub fn name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Every proper ancestor of a path, nearest to the root first (not the root itself).
pub fn ancestors(p: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut a = parent(p);
    while !a.is_empty() {
        out.push(a);
        a = parent(a);
    }
    out.reverse();
    out
}

/// Whether `p` lies strictly under `dir` (both keys; `dir == ""` is the root).
pub fn is_under(p: &str, dir: &str) -> bool {
    if dir.is_empty() {
        return !p.is_empty();
    }
    p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/'
}

/// The `n`-th autorename alternative of a display path (`n` from 2 for `add`/`overwrite`, "document
/// (2).txt"; from 1 for `update`, "document (conflicted copy).txt", then "(conflicted copy 2)").
/// The extension is kept for files; folders get the suffix at the end. Decision (UNVERIFIED):
/// folders and moves autorename like `add` ("name (2)").
pub fn alternative(p: &str, n: u32, conflicted: bool, is_file: bool) -> String {
    let dir = parent(p);
    let base = name(p);
    let (stem, ext) = match base.rfind('.') {
        Some(i) if is_file && i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    let suffix = match (conflicted, n) {
        (true, 1) => " (conflicted copy)".to_string(),
        (true, n) => format!(" (conflicted copy {n})"),
        (false, n) => format!(" ({n})"),
    };
    format!("{dir}/{stem}{suffix}{ext}")
}

/// A path argument as the API names the thing: a path, an `id:`, a `rev:` or (unsupported) `ns:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A display path (`""` = root).
    Path(String),
    Id(String),
    Rev(String),
}

/// Parses a path argument. `allow_rev`: ReadPath accepts `rev:`. The pattern mismatch is a 400 in
/// Dropbox (the argument fails validation), so this returns the message for that 400.
/// Decision (UNVERIFIED): `ns:<id>` paths (team spaces) are not emulated: 400 as if malformed.
pub fn target(p: &str, allow_root: bool, allow_rev: bool) -> Result<Target, String> {
    if p.is_empty() && allow_root {
        return Ok(Target::Path(String::new()));
    }
    if let Some(id) = p.strip_prefix("id:") {
        return Ok(Target::Id(format!("id:{id}")));
    }
    if allow_rev && let Some(r) = p.strip_prefix("rev:") {
        if r.len() >= 9 && r.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Ok(Target::Rev(r.to_string()));
        }
        return Err(format!("'{p}' did not match pattern 'rev:[0-9a-f]{{9,}}'"));
    }
    if p.starts_with('/') {
        return Ok(Target::Path(p.to_string()));
    }
    let pattern = match (allow_root, allow_rev) {
        (true, _) => "(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)",
        (false, true) => "(/(.|[\\r\\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/.*)?)",
        (false, false) => "(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)|(id:.*)",
    };
    Err(format!("'{p}' did not match pattern '{pattern}'"))
}
