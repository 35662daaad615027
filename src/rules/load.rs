//! Loading a rule file: parse, report every unknown key, compile patterns and templates, check that
//! every name used exists, and locate every problem as `file:line:col: key: message` (the same
//! [`Problem`] as the main config). Nothing is evaluated here; a loaded [`RuleSet`] cannot fail to
//! load later.

use super::archive::ArchiveLimits;
use super::content::ContentKind;
use super::load_meta;
use super::model::{CaptureType, Entry, Field, Site, TargetRule, TypedCapture};
use super::raw::{RawAccept, RawRules, RawSize, RawTarget};
use super::template::{Template, Var, is_ident};
use super::{Conflict, RetryPolicy, RuleSet};
pub use crate::config::Checker;
use crate::config::{self, KeyPath, Problem, is_valid_name};
use regex::{Regex, RegexBuilder};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

/// Compiled size limit of one regex: a pattern is a few dozen characters; this refuses pathological
/// repetition (`(a{1000}){1000}`) instead of compiling it.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Longest pattern or check regex, in characters.
const MAX_REGEX_LEN: usize = 2048;

impl Checker<'_> {
    /// The site of `key`, for rejections.
    pub fn site(&self, key: &KeyPath) -> Site {
        Site { rule: key.to_string(), loc: format!("{}:{}", self.file.display(), self.line_col(key).0) }
    }
}

/// Which captures and metadata fields a template may use where it stands.
pub struct Scope<'s> {
    /// The entries whose captures it sees: `(entry name, group names)`.
    pub entries: Vec<(&'s str, &'s BTreeSet<String>)>,
    /// Fields `{meta.X}` may name; `None`: `{meta.X}` is not allowed here.
    pub meta: Option<&'s BTreeSet<String>>,
}

/// Parses a template and checks every placeholder against `scope`.
pub fn template(src: &str, key: &KeyPath, scope: &Scope<'_>, ck: &mut Checker<'_>) -> Option<Template> {
    let t = match Template::parse(src) {
        Ok(t) => t,
        Err(e) => {
            ck.report(key, e);
            return None;
        }
    };
    for var in t.vars() {
        match var {
            Var::Capture(c) => {
                for (entry, groups) in &scope.entries {
                    if !groups.contains(c) {
                        let have = if groups.is_empty() {
                            "none".to_string()
                        } else {
                            groups.iter().cloned().collect::<Vec<_>>().join(", ")
                        };
                        ck.report(
                            key,
                            format!("`{var}` is not a capture of accept entry `{entry}` (its captures: {have})"),
                        );
                    }
                }
            }
            Var::Meta(m) => match scope.meta {
                None => ck.report(
                    key,
                    format!("`{var}` cannot be used in a field; fields are made from captures, account and transfer"),
                ),
                Some(known) if !known.contains(m) => {
                    let have = known.iter().cloned().collect::<Vec<_>>().join(", ");
                    ck.report(key, format!("`{var}` names no field defined before this point (known: {have})"));
                }
                Some(_) => {}
            },
            Var::Account(_) | Var::Transfer(_) | Var::Source(_) | Var::File(_) => {}
        }
    }
    Some(t)
}

/// Compiles a regex with size and nesting limits.
///
/// # Errors
/// The regex error, on one line.
pub fn compile(src: &str) -> Result<Regex, String> {
    if src.chars().count() > MAX_REGEX_LEN {
        return Err(format!("longer than {MAX_REGEX_LEN} characters"));
    }
    RegexBuilder::new(src).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT).nest_limit(64).build().map_err(
        |e| match e {
            regex::Error::Syntax(s) => {
                let last = s.lines().rev().find_map(|l| l.strip_prefix("error: ")).map(str::to_string);
                format!("not a valid regex: {}", last.unwrap_or(s))
            }
            regex::Error::CompiledTooBig(n) => format!("compiles to more than {n} bytes; simplify it"),
            other => format!("not a valid regex: {other}"),
        },
    )
}

fn escaped(p: &str, i: usize) -> bool {
    p.as_bytes()[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
}

/// Whether a pattern is written as anchored at both ends (`^…$` or `\A…\z`).
pub fn is_anchored(p: &str) -> bool {
    let start = p.starts_with('^') || p.starts_with("\\A");
    let end = (p.len() >= 2 && p.ends_with('$') && !escaped(p, p.len() - 1))
        || (p.len() >= 3 && p.ends_with("\\z") && !escaped(p, p.len() - 2));
    start && end
}

/// Parses `"50 MiB"`, `"500 KB"`, `"100 B"` or plain bytes.
///
/// # Errors
/// A message with examples.
pub fn parse_size(raw: &RawSize) -> Result<u64, String> {
    let bad = |s: &str| {
        format!(
            "`{s}` is not a size; write bytes (`1048576`) or a whole number and a unit (`50 MiB`, `500 KB`, `1 GiB`)"
        )
    };
    let n = match raw {
        RawSize::Bytes(n) => *n,
        RawSize::Text(s) => {
            let t = s.trim();
            let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(digits);
            let num: u64 = num.parse().map_err(|_| bad(s))?;
            let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "kb" => 1_000,
                "mb" => 1_000_000,
                "gb" => 1_000_000_000,
                "tb" => 1_000_000_000_000,
                "kib" => 1 << 10,
                "mib" => 1 << 20,
                "gib" => 1 << 30,
                "tib" => 1 << 40,
                _ => return Err(bad(s)),
            };
            num.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))?
        }
    };
    if n == 0 { Err("must be more than 0 bytes".into()) } else { Ok(n) }
}

impl RuleSet {
    /// Reads and validates one rule file; `tables_dir` holds its lookup tables (`<table>.csv`).
    ///
    /// # Errors
    /// Every problem found, located by file, line, column and key.
    pub fn load(path: &Path, tables_dir: &Path) -> Result<RuleSet, config::Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            config::Error(vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                key: "(file)".into(),
                message: format!("cannot read rule file: {e}"),
            }])
        })?;
        Self::parse(path, &text, tables_dir)
    }

    /// Validates rule-file text as if read from `path` (the channel is the file stem).
    ///
    /// # Errors
    /// Every problem found.
    pub fn parse(path: &Path, text: &str, tables_dir: &Path) -> Result<RuleSet, config::Error> {
        let (raw, mut ck): (RawRules, _) = config::parse_document(path, text)?;
        let root = KeyPath::root();
        let channel = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if !is_valid_name(&channel) {
            ck.report(&root, format!("`{channel}` is not a valid channel name (1-64 of A-Z a-z 0-9 . _ -)"));
        }
        if raw.accept.is_empty() {
            ck.report(&root, "no [[accept]] entry: every file of this channel would go to exceptions");
        }
        let mut names = HashMap::new();
        let entries: Vec<Entry> = raw
            .accept
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let key = root.key("accept").index(i);
                if let Some(first) = names.insert(a.name.clone(), i) {
                    ck.report(&key.key("name"), format!("accept entry `{}` is also accept[{first}]", a.name));
                }
                build_entry(a, &key, &mut ck)
            })
            .collect();
        let accept_site = ck.site(&root.key("accept").index(0));
        let metadata = load_meta::build_metadata(&raw, &entries, tables_dir, &mut ck);
        let target = build_target(raw.target.as_ref(), &raw, &entries, &metadata, &mut ck);
        let workflow = super::load_workflow::build_workflow(&raw, &entries, &metadata, &mut ck);
        let tests = load_meta::build_tests(&raw, &entries, &metadata, &mut ck);
        match target {
            Some(target) if ck.problems.is_empty() => Ok(RuleSet {
                channel,
                source: path.to_path_buf(),
                reject_unmatched_names: raw.reject_unmatched_names,
                receipts: raw.receipts,
                entries,
                metadata,
                target,
                workflow,
                tests,
                accept_site,
            }),
            _ => Err(config::Error(ck.problems)),
        }
    }
}

/// The named groups of an entry's pattern (computed again for scopes: cheap, and keeps [`Entry`] small).
pub fn groups(e: &Entry) -> BTreeSet<String> {
    e.pattern.capture_names().flatten().map(str::to_string).collect()
}

fn build_entry(a: &RawAccept, key: &KeyPath, ck: &mut Checker<'_>) -> Option<Entry> {
    if !is_valid_name(&a.name) {
        ck.report(&key.key("name"), format!("`{}` is not a valid entry name (1-64 of A-Z a-z 0-9 . _ -)", a.name));
    }
    let pk = key.key("pattern");
    if !is_anchored(&a.pattern) {
        ck.report(&pk, "must be anchored: start with `^` and end with `$`, so that it matches the whole name");
    }
    let pattern = match compile(&format!("\\A(?:{})\\z", a.pattern)) {
        Ok(r) => r,
        Err(e) => {
            ck.report(&pk, e);
            return None;
        }
    };
    let groups: BTreeSet<String> = pattern.capture_names().flatten().map(str::to_string).collect();
    let mut captures = Vec::new();
    for (name, c) in &a.captures {
        let ckey = key.key("captures").key(name);
        if !groups.contains(name) {
            ck.report(&ckey, format!("the pattern has no group `(?P<{name}>…)`"));
            continue;
        }
        let only = |ck: &mut Checker<'_>, field: &str, present: bool| {
            if present {
                ck.report(&ckey.key(field), format!("`{field}` does not apply to a `{}` capture", c.kind));
            }
        };
        let kind = match c.kind.as_str() {
            "integer" => {
                only(ck, "format", c.format.is_some());
                if let (Some(lo), Some(hi)) = (c.min, c.max)
                    && lo > hi
                {
                    ck.report(&ckey.key("min"), format!("min {lo} is above max {hi}"));
                }
                CaptureType::Integer { min: c.min, max: c.max }
            }
            "date" => {
                only(ck, "min", c.min.is_some());
                only(ck, "max", c.max.is_some());
                let Some(format) = c.format.clone() else {
                    ck.report(&ckey, "a date capture needs `format`, e.g. `%Y%m%d`");
                    continue;
                };
                if let Err(e) = check_date_format(&format) {
                    ck.report(&ckey.key("format"), e);
                }
                CaptureType::Date { format }
            }
            other => {
                ck.report(&ckey.key("type"), format!("unknown capture type `{other}`; use `integer` or `date`"));
                continue;
            }
        };
        captures.push(TypedCapture { name: name.clone(), kind, site: ck.site(&ckey) });
    }
    let max_size = a.max_size.as_ref().and_then(|s| {
        let k = key.key("max_size");
        parse_size(s).map_err(|e| ck.report(&k, e)).ok().map(|n| (n, ck.site(&k)))
    });
    let extensions = a.extensions.as_ref().map(|list| {
        let k = key.key("extensions");
        let exts = list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let e = e.strip_prefix('.').unwrap_or(e).to_ascii_lowercase();
                if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
                    ck.report(&k.index(i), format!("`{e}` is not an extension (letters and digits, e.g. `pdf`)"));
                }
                e
            })
            .collect();
        (exts, ck.site(&k))
    });
    let content = a.content.as_ref().map(|c| {
        let k = key.key("content");
        let kinds: Vec<ContentKind> = c
            .to_vec()
            .iter()
            .filter_map(|s| {
                let kind = ContentKind::parse(s);
                if kind.is_none() {
                    let all: Vec<_> = ContentKind::ALL.iter().map(|k| k.name()).collect();
                    ck.report(&k, format!("unknown content kind `{s}`; use any of {}", all.join(", ")));
                }
                kind
            })
            .collect();
        if c.to_vec().is_empty() {
            ck.report(&k, "lists no content kind");
        }
        (kinds, ck.site(&k))
    });
    let archive = build_archive(a, key, content.as_ref().map(|c| c.0.as_slice()), ck);
    let scope_groups = groups.clone();
    let scope = Scope { entries: vec![(a.name.as_str(), &scope_groups)], meta: None };
    let fields = a
        .fields
        .iter()
        .filter_map(|(name, src)| {
            let k = key.key("fields").key(name);
            if !is_ident(name) {
                ck.report(&k, format!("`{name}` is not a field name (letters, digits and `_`)"));
            }
            let template = template(src, &k, &scope, ck)?;
            Some(Field { name: name.clone(), template, site: ck.site(&k) })
        })
        .collect();
    // An entry destination may use {meta.X}; checked with the other destinations in build_target.
    let destination = a.destination.as_ref().and_then(|d| {
        let k = key.key("destination");
        Template::parse(d).map_err(|e| ck.report(&k, e)).ok().map(|t| (t, ck.site(&k)))
    });
    Some(Entry {
        name: a.name.clone(),
        site: ck.site(key),
        pattern_src: a.pattern.clone(),
        pattern,
        captures,
        extensions,
        max_size,
        content,
        archive,
        fields,
        destination,
    })
}

fn build_archive(
    a: &RawAccept,
    key: &KeyPath,
    content: Option<&[ContentKind]>,
    ck: &mut Checker<'_>,
) -> (ArchiveLimits, Site) {
    let k = key.key("archive");
    let mut limits = ArchiveLimits::default();
    if let Some(raw) = &a.archive {
        if !content.is_some_and(|c| c.iter().any(|k| k.is_zip_based())) {
            ck.report(&k, "archive limits apply only to zip-based content: add `zip`, `docx` or `xlsx` to `content`");
        }
        if let Some(n) = raw.max_entries {
            limits.max_entries = n;
        }
        if let Some(s) = &raw.max_total_size {
            match parse_size(s) {
                Ok(n) => limits.max_total_size = n,
                Err(e) => ck.report(&k.key("max_total_size"), e),
            }
        }
        if let Some(r) = raw.max_ratio {
            if r == 0 {
                ck.report(&k.key("max_ratio"), "must be at least 1");
            }
            limits.max_ratio = r;
        }
    }
    (limits, ck.site(if a.archive.is_some() { &k } else { key }))
}

fn check_date_format(format: &str) -> Result<(), String> {
    use chrono::NaiveDate;
    use chrono::format::{Item, StrftimeItems};
    use std::fmt::Write;
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(format!("`{format}` is not a chrono date format (e.g. `%Y%m%d`, `%Y-%m-%d`)"));
    }
    let sample = NaiveDate::from_ymd_opt(2026, 12, 31).ok_or("no sample date")?;
    let mut s = String::new();
    write!(s, "{}", sample.format(format)).map_err(|_| format!("`{format}` cannot format a date"))?;
    NaiveDate::parse_from_str(&s, format)
        .map(|_| ())
        .map_err(|e| format!("`{format}` does not describe a whole date (year, month and day): {e}"))
}

fn build_target(
    raw: Option<&RawTarget>,
    rules: &RawRules,
    entries: &[Entry],
    metadata: &super::model::Metadata,
    ck: &mut Checker<'_>,
) -> Option<TargetRule> {
    let key = KeyPath::root().key("target");
    let known = load_meta::all_fields(rules, metadata);
    // Entry destinations see their own captures and every field.
    for (i, e) in entries.iter().enumerate() {
        if let Some((t, _)) = &e.destination {
            let g = groups(e);
            let scope = Scope { entries: vec![(e.name.as_str(), &g)], meta: Some(&known) };
            template(t.source(), &KeyPath::root().key("accept").index(i).key("destination"), &scope, ck);
        }
    }
    let Some(t) = raw else {
        ck.report(&KeyPath::root(), "no [target]: say where accepted files go (`name` and `destination`)");
        return None;
    };
    if t.name.trim().is_empty() {
        ck.report(&key.key("name"), "must name a target of the gateway config");
    }
    let all_groups: Vec<(&str, BTreeSet<String>)> =
        entries.iter().filter(|e| e.destination.is_none()).map(|e| (e.name.as_str(), groups(e))).collect();
    let scope = Scope { entries: all_groups.iter().map(|(n, g)| (*n, g)).collect(), meta: Some(&known) };
    let destination = template(&t.destination, &key.key("destination"), &scope, ck);
    let conflict = match t.conflict.as_deref() {
        None | Some("reject") => Conflict::Reject,
        Some("version") => Conflict::Version,
        Some("rename") => Conflict::Rename,
        Some("overwrite") => Conflict::Overwrite,
        Some(other) => {
            ck.report(&key.key("conflict"), format!("unknown policy `{other}`; use {}", Conflict::NAMES.join(", ")));
            Conflict::Reject
        }
    };
    let r = t.retry.as_ref();
    let retry = RetryPolicy {
        attempts: r.and_then(|r| r.attempts).unwrap_or(5),
        backoff: Duration::from_secs(r.and_then(|r| r.backoff_secs).unwrap_or(30)),
        max_age: Duration::from_secs(r.and_then(|r| r.max_age_secs).unwrap_or(86_400)),
    };
    if retry.attempts == 0 {
        ck.report(&key.key("retry").key("attempts"), "must be at least 1 (the first delivery counts)");
    }
    Some(TargetRule {
        name: t.name.clone(),
        destination: destination?,
        site: ck.site(&key.key("destination")),
        conflict,
        retry,
    })
}
