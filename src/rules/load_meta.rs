//! Loading `[metadata]` (fields, lookups with their CSV tables, sidecar policy, overridable,
//! required, checks) and `[[test]]` cases. Problems inside a table are located in the table
//! (`rules/tables/vendors.csv:3:1: code: duplicate key …`).

use super::load::{Checker, Scope, compile, groups, parse_size, template};
use super::model::{Entry, Expect, Field, FieldCheck, Lookup, Metadata, TestCase};
use super::raw::{RawMissing, RawRules};
use super::selftest::BODIES;
use super::template::{is_ident, split_name};
use super::{Account, ContentKind, RejectionKind, SidecarMode, SidecarPolicy};
use crate::config::{KeyPath, Problem, is_valid_name};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Every field name an evaluation can produce: fields (global and per entry), lookups, overridable.
pub fn all_fields(raw: &RawRules, metadata: &Metadata) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = raw.metadata.fields.keys().cloned().collect();
    known.extend(raw.accept.iter().flat_map(|a| a.fields.keys().cloned()));
    known.extend(metadata.lookups.iter().map(|l| l.field.clone()));
    known.extend(metadata.overridable.iter().cloned());
    known
}

/// A lookup table: header row = column names.
struct Table {
    path: PathBuf,
    columns: Vec<String>,
    /// `(line, values)`.
    rows: Vec<(u64, Vec<String>)>,
}

fn table_problem(path: &Path, line: u64, key: &str, message: String) -> Problem {
    Problem { file: path.to_path_buf(), line: line as usize, col: 1, key: key.to_string(), message }
}

fn read_table(path: &Path) -> Result<Table, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| table_problem(path, 0, "(table)", format!("cannot read table: {e}")))?;
    let located = |e: csv::Error| {
        let line = e.position().map_or(1, csv::Position::line);
        table_problem(path, line, "(table)", format!("not a valid CSV table: {e}"))
    };
    let columns: Vec<String> = reader.headers().map_err(located)?.iter().map(str::to_string).collect();
    if columns.iter().any(String::is_empty) {
        return Err(table_problem(path, 1, "(header)", "the header row has an empty column name".into()));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(located)?;
        let line = record.position().map_or(0, csv::Position::line);
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(Table { path: path.to_path_buf(), columns, rows })
}

/// Builds `[metadata]`.
pub fn build_metadata(raw: &RawRules, entries: &[Entry], tables_dir: &Path, ck: &mut Checker<'_>) -> Metadata {
    let key = KeyPath::root().key("metadata");
    let m = &raw.metadata;
    let mut overridable = BTreeSet::new();
    for (i, f) in m.overridable.iter().enumerate() {
        if !is_ident(f) {
            ck.report(&key.key("overridable").index(i), format!("`{f}` is not a field name (letters, digits and `_`)"));
        }
        overridable.insert(f.clone());
    }
    let entry_groups: Vec<(String, BTreeSet<String>)> = entries.iter().map(|e| (e.name.clone(), groups(e))).collect();
    let entry_fields: BTreeSet<String> = raw.accept.iter().flat_map(|a| a.fields.keys().cloned()).collect();
    let mut fields = Vec::new();
    for (name, src) in &m.fields {
        let k = key.key("fields").key(name);
        if !is_ident(name) {
            ck.report(&k, format!("`{name}` is not a field name (letters, digits and `_`)"));
        }
        // A field an entry defines itself is not made from the global template for that entry.
        let scope = Scope {
            entries: entries
                .iter()
                .zip(&entry_groups)
                .filter(|(e, _)| !e.fields.iter().any(|f| &f.name == name))
                .map(|(e, (_, g))| (e.name.as_str(), g))
                .collect(),
            meta: None,
        };
        if let Some(template) = template(src, &k, &scope, ck) {
            fields.push(Field { name: name.clone(), template, site: ck.site(&k) });
        }
    }
    let mut known: BTreeSet<String> = m.fields.keys().cloned().collect();
    known.extend(entry_fields);
    known.extend(overridable.iter().cloned());
    let mut tables: HashMap<String, Option<Arc<Table>>> = HashMap::new();
    let mut lookups = Vec::new();
    for (i, l) in m.lookups.iter().enumerate() {
        let k = key.key("lookups").index(i);
        if !is_ident(&l.field) {
            ck.report(&k.key("field"), format!("`{}` is not a field name (letters, digits and `_`)", l.field));
        } else if known.contains(&l.field) && !overridable.contains(&l.field) {
            ck.report(&k.key("field"), format!("field `{}` is already set before this lookup", l.field));
        }
        let scope = Scope { entries: entry_groups.iter().map(|(n, g)| (n.as_str(), g)).collect(), meta: Some(&known) };
        let key_template = template(&l.key, &k.key("key"), &scope, ck);
        let default = match &l.missing {
            None => None,
            Some(RawMissing::Word(w)) if w == "except" => None,
            Some(RawMissing::Word(w)) => {
                ck.report(&k.key("missing"), format!("`{w}`: use `\"except\"` or `{{ default = \"…\" }}`"));
                None
            }
            Some(RawMissing::Default { default }) => Some(default.clone()),
        };
        known.insert(l.field.clone());
        let table = if is_valid_name(&l.table) {
            tables
                .entry(l.table.clone())
                .or_insert_with(|| {
                    let path = tables_dir.join(format!("{}.csv", l.table));
                    if !path.is_file() {
                        ck.report(
                            &k.key("table"),
                            format!("no table `{}`: `{}` does not exist", l.table, path.display()),
                        );
                        return None;
                    }
                    read_table(&path).map_err(|p| ck.problems.push(p)).ok().map(Arc::new)
                })
                .clone()
        } else {
            ck.report(&k.key("table"), format!("`{}` is not a table name (a file stem in rules/tables/)", l.table));
            None
        };
        let (Some(table), Some(key_template)) = (table, key_template) else { continue };
        let column = |name: &str, field: &str, ck: &mut Checker<'_>| {
            let at = table.columns.iter().position(|c| c == name);
            if at.is_none() {
                ck.report(
                    &k.key(field),
                    format!("table `{}` has no column `{name}` (columns: {})", l.table, table.columns.join(", ")),
                );
            }
            at
        };
        let key_column = l.key_column.clone().unwrap_or_else(|| table.columns.first().cloned().unwrap_or_default());
        let (Some(vc), Some(kc)) = (column(&l.column, "column", ck), column(&key_column, "key_column", ck)) else {
            continue;
        };
        let mut values = HashMap::new();
        let mut first_line = HashMap::new();
        for (line, row) in &table.rows {
            let (Some(kv), Some(v)) = (row.get(kc), row.get(vc)) else { continue };
            if kv.is_empty() {
                ck.problems.push(table_problem(&table.path, *line, &key_column, "a row with an empty key".into()));
            } else if let Some(first) = first_line.insert(kv.clone(), *line) {
                let msg = format!("duplicate key `{kv}` (first on line {first})");
                ck.problems.push(table_problem(&table.path, *line, &key_column, msg));
            } else {
                values.insert(kv.clone(), v.clone());
            }
        }
        lookups.push(Lookup {
            field: l.field.clone(),
            table: l.table.clone(),
            column: l.column.clone(),
            key_column,
            key: key_template,
            values: Arc::new(values),
            default,
            site: ck.site(&k),
        });
    }
    let sidecar = build_sidecar(raw, &key, ck);
    let required: Vec<String> = m.required.clone();
    for (i, f) in required.iter().enumerate() {
        if !known.contains(f) {
            ck.report(&key.key("required").index(i), format!("`{f}` is never set: not a field, lookup or overridable"));
        }
    }
    let mut checks = Vec::new();
    for (field, c) in &m.checks {
        let k = key.key("checks").key(field);
        if !known.contains(field) {
            ck.report(&k, format!("`{field}` is never set: not a field, lookup or overridable"));
        }
        if c.regex.is_none() && c.one_of.is_none() {
            ck.report(&k, "a check needs `regex` or `one_of`");
        }
        let regex = c.regex.as_ref().and_then(|r| match compile(r) {
            Ok(re) => Some((re, r.clone())),
            Err(e) => {
                ck.report(&k.key("regex"), e);
                None
            }
        });
        if c.one_of.as_ref().is_some_and(Vec::is_empty) {
            ck.report(&k.key("one_of"), "lists no value: nothing could pass");
        }
        checks.push(FieldCheck { field: field.clone(), regex, one_of: c.one_of.clone(), site: ck.site(&k) });
    }
    Metadata {
        fields,
        lookups,
        sidecar,
        sidecar_site: ck.site(&key.key("sidecar")),
        overridable,
        overridable_site: ck.site(&key.key("overridable")),
        required,
        required_site: ck.site(&key.key("required")),
        checks,
    }
}

fn build_sidecar(raw: &RawRules, key: &KeyPath, ck: &mut Checker<'_>) -> SidecarPolicy {
    let Some(s) = &raw.metadata.sidecar else {
        return SidecarPolicy { mode: SidecarMode::None, wait: Duration::ZERO };
    };
    let k = key.key("sidecar");
    let mode = match s.policy.as_str() {
        "none" => SidecarMode::None,
        "optional" => SidecarMode::Optional,
        "required" => SidecarMode::Required,
        other => {
            ck.report(&k.key("policy"), format!("unknown policy `{other}`; use none, optional or required"));
            SidecarMode::None
        }
    };
    if mode != SidecarMode::None && raw.metadata.overridable.is_empty() {
        ck.report(&k, "a sidecar can only set `overridable` fields, and none are listed");
    }
    SidecarPolicy { mode, wait: Duration::from_secs(s.wait_secs.unwrap_or(300)) }
}

/// Builds the `[[test]]` cases.
pub fn build_tests(raw: &RawRules, entries: &[Entry], metadata: &Metadata, ck: &mut Checker<'_>) -> Vec<TestCase> {
    let known = all_fields(raw, metadata);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut tests = Vec::new();
    for (i, t) in raw.test.iter().enumerate() {
        let k = KeyPath::root().key("test").index(i);
        let name = t.name.clone().unwrap_or_else(|| t.file.clone());
        if let Some(first) = seen.insert(name.clone(), i) {
            let at = if t.name.is_some() { k.key("name") } else { k.key("file") };
            ck.report(&at, format!("test `{name}` is also test[{first}]; give one of them a distinct `name`"));
        }
        let body = t.content.clone().unwrap_or_else(|| {
            let ext = split_name(&t.file).1;
            ContentKind::for_extension(ext).map_or("text", ContentKind::name).to_string()
        });
        if !BODIES.contains(&body.as_str()) {
            ck.report(&k.key("content"), format!("unknown test body `{body}`; use any of {}", BODIES.join(", ")));
        }
        let size = t.size.as_ref().and_then(|s| parse_size(s).map_err(|e| ck.report(&k.key("size"), e)).ok());
        let mut attributes = t.account.clone();
        let account_name = attributes.remove("name").unwrap_or_else(|| "test-account".into());
        for f in t.transfer.keys() {
            let source_field = f.strip_prefix("source.").is_some_and(super::template::is_ident);
            if !source_field && !["id", "sha256", "received_at", "protocol"].contains(&f.as_str()) {
                ck.report(
                    &k.key("transfer").key(f),
                    "not a transfer field; use id, sha256, received_at, protocol or source.X",
                );
            }
        }
        if t.sidecar.is_some() && t.sidecar_raw.is_some() {
            ck.report(&k.key("sidecar_raw"), "give `sidecar` or `sidecar_raw`, not both");
        }
        let sidecar = t.sidecar_raw.clone().or_else(|| t.sidecar.as_ref().and_then(|m| serde_json::to_string(m).ok()));
        let overrides = t.overrides.as_ref().and_then(|m| serde_json::to_string(m).ok());
        let only = |ck: &mut Checker<'_>, field: &str, present: bool, expect: &str| {
            if present {
                ck.report(&k.key(field), format!("`{field}` applies only to expect = \"{expect}\""));
            }
        };
        let expect = match t.expect.as_str() {
            "accepted" => {
                only(ck, "reason", t.reason.is_some(), "excepted");
                only(ck, "kind", t.kind.is_some(), "excepted");
                if let Some(e) = &t.entry
                    && !entries.iter().any(|x| &x.name == e)
                {
                    ck.report(&k.key("entry"), format!("no accept entry `{e}`"));
                }
                for f in t.metadata.keys() {
                    if !known.contains(f) {
                        ck.report(&k.key("metadata").key(f), format!("`{f}` is never set by this rule file"));
                    }
                }
                Expect::Accepted {
                    entry: t.entry.clone(),
                    metadata: t.metadata.clone(),
                    destination: t.destination.clone(),
                }
            }
            "excepted" => {
                only(ck, "entry", t.entry.is_some(), "accepted");
                only(ck, "metadata", !t.metadata.is_empty(), "accepted");
                only(ck, "destination", t.destination.is_some(), "accepted");
                let kind = t.kind.as_ref().and_then(|s| {
                    let kind = RejectionKind::ALL.into_iter().find(|k| k.name() == s);
                    if kind.is_none() {
                        let all: Vec<_> = RejectionKind::ALL.iter().map(|k| k.name()).collect();
                        ck.report(&k.key("kind"), format!("unknown kind `{s}`; use any of {}", all.join(", ")));
                    }
                    kind
                });
                Expect::Excepted { reason: t.reason.clone(), kind }
            }
            other => {
                ck.report(&k.key("expect"), format!("`{other}`: use \"accepted\" or \"excepted\""));
                continue;
            }
        };
        tests.push(TestCase {
            name,
            site: ck.site(&k),
            file: t.file.clone(),
            body,
            size,
            account: Account { name: account_name, attributes },
            transfer: t.transfer.clone(),
            sidecar,
            overrides,
            expect,
        });
    }
    tests
}
