//! Evaluating one file against a channel's rules: name, entry checks, metadata, destination.
//! Pure apart from reading the body; every failure is a [`Rejection`] value, never a panic.
//! [`RuleSet::explain`] runs the same code with a trace for people.

use super::archive::{self, bytes};
use super::content::{ContentKind, Sniffed, sniff};
use super::model::{Entry, Site};
use super::template::{FileField, MAX_OUTPUT, Template, TransferField, Var, check_destination, split_name};
use super::{Input, Outcome, Rejection, RejectionKind as K, RuleSet, SidecarMode, sidecar_name};
use std::collections::{BTreeMap, BTreeSet};

/// Largest sidecar or override document read.
pub const MAX_SIDECAR: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A real decision: anything that cannot be checked is a rejection.
    Evaluate,
    /// `wharf rules explain`: what cannot be checked (no body) is skipped and said so.
    Explain,
}

struct Trace {
    on: bool,
    lines: Vec<String>,
}

impl Trace {
    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.on {
            self.lines.push(line());
        }
    }
}

/// A file name as quoted in reasons: escaped and bounded.
fn shown(name: &str) -> String {
    let cut: String = name.chars().take(200).collect();
    let more = if cut.len() < name.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

/// What templates are rendered from.
struct Ctx<'a> {
    input: &'a Input,
    caps: &'a BTreeMap<String, String>,
    size: Option<u64>,
}

impl Ctx<'_> {
    fn render(&self, t: &Template, meta: &BTreeMap<String, String>) -> Result<String, String> {
        t.render(|v| self.value(v, meta))
    }

    fn value(&self, v: &Var, meta: &BTreeMap<String, String>) -> Result<String, String> {
        let input = self.input;
        match v {
            Var::Capture(c) => self.caps.get(c).cloned().ok_or_else(|| format!("`{v}` has no value")),
            Var::Account(a) if a == "name" => Ok(input.account.name.clone()),
            Var::Account(a) => input
                .account
                .attributes
                .get(a)
                .cloned()
                .ok_or_else(|| format!("account `{}` has no attribute `{a}`", input.account.name)),
            Var::Transfer(TransferField::Id) => Ok(input.transfer.id.clone()),
            Var::Transfer(TransferField::Sha256) => Ok(input.transfer.sha256.clone()),
            Var::Transfer(TransferField::ReceivedAt) => Ok(input.transfer.received_at.clone()),
            Var::Transfer(TransferField::Protocol) => Ok(input.transfer.protocol.clone()),
            Var::Transfer(TransferField::Size) => {
                self.size.map(|s| s.to_string()).ok_or_else(|| "the size is not known".into())
            }
            Var::Source(k) => input.transfer.source.get(k).cloned().ok_or_else(|| {
                if input.transfer.source.is_empty() {
                    format!("`{v}`: this file did not come from a source poll")
                } else {
                    format!("`{v}`: the source gave no `{k}`")
                }
            }),
            Var::File(FileField::Name) => Ok(input.name.clone()),
            Var::File(FileField::Stem) => Ok(split_name(&input.name).0.to_string()),
            Var::File(FileField::Ext) => Ok(split_name(&input.name).1.to_string()),
            Var::Meta(m) => meta.get(m).cloned().ok_or_else(|| format!("field `{m}` has no value")),
        }
    }
}

/// Parses a sidecar or override document: a JSON object of names to texts, numbers or booleans.
fn parse_overrides(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.len() > MAX_SIDECAR {
        return Err(format!("is larger than {}", bytes(MAX_SIDECAR as u64)));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("is not valid JSON ({e})"))?;
    let Some(object) = value.as_object() else {
        return Err("is not a JSON object of field names to values".into());
    };
    let mut out = BTreeMap::new();
    for (k, v) in object {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                let what = if other.is_null() { "null" } else { "a list or object" };
                return Err(format!("sets `{}` to {what}; use a text, a number or true/false", shown(k)));
            }
        };
        if s.len() > MAX_OUTPUT || s.chars().any(char::is_control) {
            return Err(format!("sets `{}` to a value that is too long or has control characters", shown(k)));
        }
        out.insert(k.clone(), s);
    }
    Ok(out)
}

impl RuleSet {
    /// Decides what happens to one file.
    pub fn evaluate(&self, input: &Input) -> Outcome {
        self.run(input, Mode::Evaluate, &mut Trace { on: false, lines: Vec::new() })
    }

    /// Early refusal: whether some accept entry's pattern matches `name`.
    ///
    /// # Errors
    /// The reason quoting the expected names, as an unmatched file would get in its exception.
    pub fn name_matches(&self, name: &str) -> Result<(), String> {
        match self.matching(name, &mut Trace { on: false, lines: Vec::new() }) {
            Some(_) => Ok(()),
            None => Err(self.unmatched(name).reason),
        }
    }

    /// A step-by-step account of the evaluation of `input`, for `wharf rules explain`. Without a
    /// body, size (unless given) and content are reported as not checked.
    pub fn explain(&self, input: &Input) -> String {
        let mut trace = Trace { on: true, lines: Vec::new() };
        trace.note(|| format!("channel `{}` ({}), file {}", self.channel, self.source.display(), shown(&input.name)));
        let outcome = self.run(input, Mode::Explain, &mut trace);
        let mut out = trace.lines.join("\n");
        match outcome {
            Outcome::Accepted { entry, metadata, destination, target, conflict, workflow } => {
                out.push_str(&format!("\nACCEPTED by entry `{entry}`\n  metadata:"));
                for (k, v) in &metadata {
                    out.push_str(&format!("\n    {k} = {v}"));
                }
                out.push_str(&format!(
                    "\n  destination: {destination} on target `{target}` (conflict: {})",
                    conflict.name()
                ));
                if let Some(w) = workflow {
                    out.push_str(&format!(
                        "\n  then waits for workflow `{}` (business key {}, engine `{}`, timeout {} s) before delivery",
                        w.definition, w.business_key, w.engine, w.settings.timeout_secs
                    ));
                    for (k, v) in &w.variables {
                        out.push_str(&format!("\n    variable {k} = {v}"));
                    }
                }
            }
            Outcome::Excepted(r) => {
                out.push_str(&format!(
                    "\nEXCEPTED ({}) by {} at {}\n  reason: {}\n  remedy: {}",
                    r.kind.name(),
                    r.rule,
                    r.location,
                    r.reason,
                    r.remedy
                ));
            }
        }
        out
    }

    fn matching(&self, name: &str, trace: &mut Trace) -> Option<(&Entry, BTreeMap<String, String>)> {
        for (i, e) in self.entries.iter().enumerate() {
            let Some(c) = e.pattern.captures(name) else {
                trace.note(|| format!("accept[{i}] `{}`: pattern {} does not match", e.name, e.pattern_src));
                continue;
            };
            let caps: BTreeMap<String, String> = e
                .pattern
                .capture_names()
                .flatten()
                .map(|n| (n.to_string(), c.name(n).map_or("", |m| m.as_str()).to_string()))
                .collect();
            trace.note(|| {
                let list: Vec<String> = caps.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("accept[{i}] `{}` ({}): pattern matches; captures: {}", e.name, e.site.loc, list.join(" "))
            });
            return Some((e, caps));
        }
        None
    }

    fn unmatched(&self, name: &str) -> Rejection {
        let expected: Vec<String> = self.entries.iter().map(|e| format!("`{}` ({})", e.name, e.pattern_src)).collect();
        *self.accept_site.reject(
            K::Name,
            None,
            format!(
                "{} matches no accept entry of channel `{}`; expected {}",
                shown(name),
                self.channel,
                expected.join(" or ")
            ),
            "Rename the file to match an expected name and send it again (or move it, renamed, into retry/).",
        )
    }

    fn run(&self, input: &Input, mode: Mode, trace: &mut Trace) -> Outcome {
        let Some((entry, caps)) = self.matching(&input.name, trace) else {
            return Outcome::Excepted(self.unmatched(&input.name));
        };
        let size = input.size.or_else(|| input.body.as_ref().and_then(|b| b.len().ok()));
        let ctx = Ctx { input, caps: &caps, size };
        let result = self
            .check_entry(entry, &ctx, mode, trace)
            .and_then(|()| self.enrich(entry, &ctx, trace))
            .and_then(|meta| self.destination(entry, &ctx, &meta).map(|d| (meta, d)))
            .and_then(|(meta, d)| self.workflow_start(entry, &ctx, &meta).map(|w| (meta, d, w)));
        match result {
            Ok((metadata, destination, workflow)) => Outcome::Accepted {
                entry: entry.name.clone(),
                metadata,
                destination,
                target: self.target.name.clone(),
                conflict: self.target.conflict,
                workflow,
            },
            Err(r) => Outcome::Excepted(*r),
        }
    }

    fn check_entry(&self, entry: &Entry, ctx: &Ctx<'_>, mode: Mode, trace: &mut Trace) -> Result<(), Box<Rejection>> {
        let name = &ctx.input.name;
        let but = |s: String| format!("{} matches accept entry `{}` but {s}", shown(name), entry.name);
        let e = Some(entry.name.as_str());
        for c in &entry.captures {
            let v = ctx.caps.get(&c.name).map_or("", String::as_str);
            let fix = format!(
                "Correct the `{}` part of the file name and send it again (or move it, renamed, into retry/).",
                c.name
            );
            let problem = match &c.kind {
                super::model::CaptureType::Integer { min, max } => match v.parse::<i64>() {
                    Err(_) => Some(format!("its `{}` part `{}` is not a whole number", c.name, shown(v))),
                    Ok(n) => match (min, max) {
                        (Some(lo), _) if n < *lo => {
                            Some(format!("its `{}` part {n} is below the minimum {lo}", c.name))
                        }
                        (_, Some(hi)) if n > *hi => {
                            Some(format!("its `{}` part {n} is above the maximum {hi}", c.name))
                        }
                        _ => None,
                    },
                },
                super::model::CaptureType::Date { format } => chrono::NaiveDate::parse_from_str(v, format)
                    .err()
                    .map(|_| format!("its `{}` part `{}` is not a valid date of the form {format}", c.name, shown(v))),
            };
            if let Some(p) = problem {
                return Err(c.site.reject(K::Capture, e, but(p), fix));
            }
            trace.note(|| format!("  capture `{}` = {v}: ok", c.name));
        }
        let ext = split_name(name).1.to_ascii_lowercase();
        if let Some((exts, site)) = &entry.extensions {
            if !exts.contains(&ext) {
                let list: Vec<String> = exts.iter().map(|x| format!(".{x}")).collect();
                let what = if ext.is_empty() {
                    format!("it has no extension (expected {})", list.join(", "))
                } else {
                    format!("its extension .{ext} is not one of {}", list.join(", "))
                };
                return Err(site.reject(
                    K::Extension,
                    e,
                    but(what),
                    format!("Send the file with one of the extensions {}.", list.join(", ")),
                ));
            }
            trace.note(|| format!("  extension .{ext}: ok"));
        }
        if let Some((max, site)) = &entry.max_size {
            match ctx.size {
                Some(s) if s > *max => {
                    return Err(site.reject(
                        K::Size,
                        e,
                        but(format!("its size {} is over the limit of {}", bytes(s), bytes(*max))),
                        "Split or compress the file, or ask the channel's owner to raise `max_size`.",
                    ));
                }
                Some(s) => trace.note(|| format!("  size {} ≤ {}: ok", bytes(s), bytes(*max))),
                None if mode == Mode::Explain => trace.note(|| "  size: not checked (not given)".into()),
                None => return Err(unreadable(site, e, but("its size is not known".into()))),
            }
        }
        let Some((kinds, site)) = &entry.content else { return Ok(()) };
        let Some(body) = &ctx.input.body else {
            if mode == Mode::Explain {
                trace.note(|| "  content: not checked (no body given)".into());
                return Ok(());
            }
            return Err(unreadable(site, e, but("its body is not available for the content check".into())));
        };
        let sniffed =
            sniff(body).map_err(|err| unreadable(site, e, but(format!("its body cannot be read ({err})"))))?;
        // With several kinds allowed, the extension picks the one this file must be.
        let wanted: Vec<ContentKind> =
            ContentKind::for_extension(&ext).filter(|k| kinds.contains(k)).map_or_else(|| kinds.clone(), |k| vec![k]);
        if !wanted.iter().any(|k| sniffed.satisfies(*k)) {
            let labels: Vec<&str> = wanted.iter().map(|k| k.label()).collect();
            let remedy = if matches!(sniffed, Sniffed::BrokenZip(_)) {
                "The archive is damaged (cut off in transfer?): build it again and send it again.".to_string()
            } else {
                format!(
                    "Send the document itself as {} (renaming a file of another kind is not enough).",
                    labels.join(" or ")
                )
            };
            let reason = format!("its content is {}, not {}", sniffed.describe(), labels.join(" or "));
            return Err(site.reject(K::Content, e, but(reason), remedy));
        }
        trace.note(|| format!("  content: {}: ok", sniffed.describe()));
        if sniffed.is_zip() && wanted.iter().any(|k| k.is_zip_based()) {
            let (limits, asite) = &entry.archive;
            let read = body.len().and_then(|len| Ok((len, body.open()?)));
            let (len, reader) =
                read.map_err(|err| unreadable(site, e, but(format!("its body cannot be read ({err})"))))?;
            let report = archive::check(reader, len, limits)
                .map_err(|p| asite.reject(K::Archive, e, but(format!("its archive {}", p.reason)), p.remedy))?;
            trace.note(|| {
                format!(
                    "  archive: {} entries, {} inflated from {}: ok",
                    report.entries,
                    bytes(report.inflated),
                    bytes(len)
                )
            });
        }
        Ok(())
    }

    fn enrich(
        &self,
        entry: &Entry,
        ctx: &Ctx<'_>,
        trace: &mut Trace,
    ) -> Result<BTreeMap<String, String>, Box<Rejection>> {
        let name = &ctx.input.name;
        let but = |s: String| format!("{} matches accept entry `{}` but {s}", shown(name), entry.name);
        let e = Some(entry.name.as_str());
        let m = &self.metadata;
        let no_value =
            "Ask the channel's owner: the rule needs a value this file, its account or its transfer does not give.";
        let mut meta = BTreeMap::new();
        let own: BTreeSet<&str> = entry.fields.iter().map(|f| f.name.as_str()).collect();
        // An overridable field that cannot be made may still come from a sidecar or override.
        let mut unmade = Vec::new();
        for f in m.fields.iter().filter(|f| !own.contains(f.name.as_str())).chain(&entry.fields) {
            match ctx.render(&f.template, &BTreeMap::new()) {
                Ok(v) => {
                    meta.insert(f.name.clone(), v);
                }
                Err(err) if m.overridable.contains(&f.name) => unmade.push((f, err)),
                Err(err) => {
                    let why = but(format!("its field `{}` cannot be made: {err}", f.name));
                    return Err(f.site.reject(K::Metadata, e, why, no_value));
                }
            }
        }
        let mut overridden = BTreeSet::new();
        let sidecar = sidecar_name(name);
        match (&ctx.input.sidecar, m.sidecar.mode) {
            (Some(_), SidecarMode::None) => trace.note(|| format!("  sidecar {sidecar}: ignored (policy none)")),
            (Some(text), _) => {
                self.apply(text, &format!("sidecar {sidecar}"), entry, name, &mut meta, &mut overridden)?
            }
            // A resubmit's overrides stand in for the sidecar (the exception folder keeps it as
            // `<name>.meta.json`, which a resubmit reads as overrides).
            (None, SidecarMode::Required) if ctx.input.overrides.is_none() => {
                return Err(m.sidecar_site.reject(
                    K::SidecarMissing,
                    e,
                    but(format!("the channel requires a sidecar {sidecar} and none arrived")),
                    format!("Upload {sidecar} (a JSON object of metadata) beside the file, then resubmit the file."),
                ));
            }
            (None, _) => {}
        }
        if let Some(text) = &ctx.input.overrides {
            self.apply(text, "resubmit override", entry, name, &mut meta, &mut overridden)?;
        }
        if let Some((f, err)) = unmade.into_iter().find(|(f, _)| !overridden.contains(&f.name)) {
            let why = but(format!("its field `{}` cannot be made: {err}", f.name));
            let fix = format!(
                "Give `{}` in {sidecar} (a JSON object) and resubmit the file; `{}` may be overridden.",
                f.name, f.name
            );
            return Err(f.site.reject(K::Metadata, e, why, fix));
        }
        for l in &m.lookups {
            if overridden.contains(&l.field) {
                trace.note(|| format!("  lookup `{}`: skipped (set by override)", l.field));
                continue;
            }
            let key = ctx.render(&l.key, &meta).map_err(|err| {
                l.site.reject(
                    K::Metadata,
                    e,
                    but(format!("the key of lookup `{}` cannot be made: {err}", l.field)),
                    no_value,
                )
            })?;
            let value = match (l.values.get(&key), &l.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    return Err(l.site.reject(
                        K::Lookup,
                        e,
                        but(format!(
                            "`{}` is not in table `{}` (column `{}`), so `{}` has no value",
                            shown(&key),
                            l.table,
                            l.key_column,
                            l.field
                        )),
                        format!(
                            "Check `{}` in the file name; if it is new, ask for it to be added to rules/tables/{}.csv, then resubmit.",
                            shown(&key),
                            l.table
                        ),
                    ));
                }
            };
            trace.note(|| {
                format!(
                    "  lookup `{}`: {}.csv {} = {} → {} = {value}",
                    l.field,
                    l.table,
                    l.key_column,
                    shown(&key),
                    l.column
                )
            });
            meta.insert(l.field.clone(), value);
        }
        for f in &m.required {
            if meta.get(f).is_none_or(|v| v.trim().is_empty()) {
                let remedy = if m.overridable.contains(f) {
                    format!("Give `{f}` in {sidecar} (or with a resubmit) and send it again.")
                } else {
                    format!("Ask the channel's owner: the rule cannot fill `{f}` for this file.")
                };
                return Err(m.required_site.reject(
                    K::Required,
                    e,
                    but(format!("its required field `{f}` is empty")),
                    remedy,
                ));
            }
        }
        for c in &m.checks {
            let Some(v) = meta.get(&c.field) else { continue };
            let fix = if m.overridable.contains(&c.field) {
                format!(
                    "Correct `{}` (in the file name or in {sidecar}) and send it again (or move it, renamed, into retry/).",
                    c.field
                )
            } else {
                format!(
                    "Correct the part of the file name that gives `{}` and send it again (or move it, renamed, into retry/).",
                    c.field
                )
            };
            if let Some((re, src)) = &c.regex
                && !re.is_match(v)
            {
                return Err(c.site.reject(
                    K::Check,
                    e,
                    but(format!("its field `{}` = `{}` does not match {src}", c.field, shown(v))),
                    fix,
                ));
            }
            if let Some(list) = &c.one_of
                && !list.contains(v)
            {
                let allowed: Vec<String> = list.iter().map(|x| format!("`{x}`")).collect();
                let reason = format!("its field `{}` = `{}` is not one of {}", c.field, shown(v), allowed.join(", "));
                return Err(c.site.reject(K::Check, e, but(reason), fix));
            }
            trace.note(|| format!("  check `{}`: ok", c.field));
        }
        Ok(meta)
    }

    /// Applies a sidecar or override document: only `overridable` keys; any other is a rejection
    /// (silently dropping what a sender meant to set would deliver wrong metadata as if right).
    fn apply(
        &self,
        text: &str,
        what: &str,
        entry: &Entry,
        name: &str,
        meta: &mut BTreeMap<String, String>,
        overridden: &mut BTreeSet<String>,
    ) -> Result<(), Box<Rejection>> {
        let m = &self.metadata;
        let e = Some(entry.name.as_str());
        let but = |s: String| format!("{} matches accept entry `{}` but its {what} {s}", shown(name), entry.name);
        let allowed: Vec<&str> = m.overridable.iter().map(String::as_str).collect();
        let allowed = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
        let values = parse_overrides(text).map_err(|err| {
            m.sidecar_site.reject(
                K::Sidecar,
                e,
                but(err),
                format!("Fix the {what}: one JSON object of texts or numbers, setting only: {allowed}."),
            )
        })?;
        if let Some(bad) = values.keys().find(|k| !m.overridable.contains(*k)) {
            return Err(m.overridable_site.reject(
                K::Sidecar,
                e,
                but(format!("sets `{}`, which may not be overridden (overridable here: {allowed})", shown(bad))),
                format!("Remove `{}` from the {what}; it may set only: {allowed}.", shown(bad)),
            ));
        }
        for (k, v) in values {
            overridden.insert(k.clone());
            meta.insert(k, v);
        }
        Ok(())
    }

    /// `[workflow]` rendered for this file (its templates see what the destination sees).
    fn workflow_start(
        &self,
        entry: &Entry,
        ctx: &Ctx<'_>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<Box<super::WorkflowStart>>, Box<Rejection>> {
        let Some(w) = &self.workflow else { return Ok(None) };
        let e = Some(entry.name.as_str());
        let fail = |what: &str, err: String| {
            w.site.reject(
                K::Metadata,
                e,
                format!(
                    "{} matches accept entry `{}` but its workflow {what} cannot be made: {err}",
                    shown(&ctx.input.name),
                    entry.name
                ),
                "Give the file the metadata the workflow needs (or fix the [workflow] templates), then resubmit.",
            )
        };
        let definition = ctx.render(&w.definition, meta).map_err(|err| fail("definition", err))?;
        let business_key = ctx.render(&w.business_key, meta).map_err(|err| fail("business key", err))?;
        let mut variables = BTreeMap::new();
        for (name, t) in &w.variables {
            variables
                .insert(name.clone(), ctx.render(t, meta).map_err(|err| fail(&format!("variable `{name}`"), err))?);
        }
        Ok(Some(Box::new(super::WorkflowStart {
            engine: w.engine.clone(),
            definition,
            business_key,
            variables,
            settings: w.settings.clone(),
        })))
    }

    fn destination(
        &self,
        entry: &Entry,
        ctx: &Ctx<'_>,
        meta: &BTreeMap<String, String>,
    ) -> Result<String, Box<Rejection>> {
        let (t, site) =
            entry.destination.as_ref().map_or((&self.target.destination, &self.target.site), |(t, s)| (t, s));
        let e = Some(entry.name.as_str());
        let but = |s: String| format!("{} matches accept entry `{}` but {s}", shown(&ctx.input.name), entry.name);
        let fix = "Rename the file so that the parts used in the destination hold no `/`, `..` or control characters, or fix the destination template.";
        let dest = ctx.render(t, meta).map_err(|err| {
            site.reject(K::Destination, e, but(format!("its destination cannot be made: {err}")), fix)
        })?;
        check_destination(&dest)
            .map_err(|err| site.reject(K::Destination, e, but(format!("its destination {err}")), fix))?;
        Ok(dest)
    }
}

fn unreadable(site: &Site, entry: Option<&str>, reason: String) -> Box<Rejection> {
    site.reject(
        K::Unreadable,
        entry,
        reason,
        "This is a problem of the gateway, not of the file: retry the transfer; if it persists, tell the operator.",
    )
}
