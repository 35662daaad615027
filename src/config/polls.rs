//! `[[polls]]`: connector-fed channels. A poll asks a source (a Dropbox folder) for what changed
//! since its cursor, on an interval, and turns each new or changed file into a transfer of its
//! channel, exactly as an upload would be; after the outcome it can write back to the source.
//!
//! ```toml
//! [[polls]]
//! name = "dropbox-final"
//! channel = "contracts"
//! account = "dropbox-intake"       # whose attributes the rules see
//! every_secs = 60                 # or: schedule = "*/15 7-19 * * 1-5" + time_zone = "Europe/Berlin"
//! [polls.source]
//! type = "dropbox"
//! target = "dropbox"               # a `dropbox` target: its connection is used
//! path = "/Projects"
//! recursive = true
//! name = '^/Projects/[^/]+/Final/[^/]+$'   # regex over the file's path
//! [polls.write_back]
//! delivered = "filed"              # move into this folder beside the file (or an absolute path)
//! excepted = "rejected"
//!
//! [[polls]]
//! name = "approved-pages"
//! channel = "approved-docs"
//! account = "confluence-intake"
//! [polls.source]
//! type = "confluence"
//! target = "confluence"            # a `confluence` target: its connection is used
//! cql = 'type=page AND space="ENG" AND label="approved"'   # or: space = "ENG" + label = "approved"
//! [polls.write_back]
//! label = "filed-in-ecm"           # added to the page after delivery
//! property = "wharf-receipt"       # content property holding the target's receipt (JSON)
//! ```

use super::{Checker, KeyPath, TargetKind, is_valid_name};
use regex::Regex;
use serde::Deserialize;
use std::time::Duration;

/// `[[polls]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawPoll {
    /// Name (journal, logs).
    pub name: String,
    /// The channel its items become transfers of.
    pub channel: String,
    /// The account the items are attributed to.
    pub account: String,
    /// Seconds between polls.
    pub every_secs: Option<u64>,
    /// Cron expression (5 or 6 fields) for the polls, instead of `every_secs`.
    pub schedule: Option<String>,
    /// IANA zone the `schedule` is read in (default UTC).
    pub time_zone: Option<String>,
    /// `[polls.source]`.
    pub source: RawPollSource,
    /// `[polls.write_back]`.
    #[serde(default)]
    pub write_back: RawWriteBack,
}

/// `[polls.source]`.
#[derive(Debug, Deserialize)]
pub struct RawPollSource {
    /// `dropbox` or `confluence`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The target whose connection is used.
    pub target: String,
    /// dropbox: folder.
    #[serde(default)]
    pub path: String,
    /// confluence: the CQL selecting the pages.
    pub cql: Option<String>,
    /// confluence: space key (with `label`, instead of `cql`).
    pub space: Option<String>,
    /// confluence: label the pages carry (with `space`, instead of `cql`).
    pub label: Option<String>,
    /// confluence: what becomes of a page's attachments: `none` (default), `items` (each
    /// attachment version its own transfer) or `zip` (the page and its attachments in one zip).
    pub attachments: Option<String>,
    /// Include subfolders.
    #[serde(default)]
    pub recursive: bool,
    /// Regex over the file's path.
    pub name: Option<String>,
    /// canto: schemes searched (`image|document`).
    pub scheme: Option<String>,
    /// canto: search keyword.
    pub keyword: Option<String>,
    /// canto: approval status searched (`approved`, `pending`, `restricted`, `expired`).
    pub approval: Option<String>,
    /// canto: take assets whose date in this custom field (display name or id, e.g.
    /// `Rights expiry`) falls within `expiring_within_days`, once per date (rights reviews).
    pub expiring_field: Option<String>,
    /// canto: the window of `expiring_field`, in days from today.
    pub expiring_within_days: Option<u32>,
    /// canto: one item per region for each new or changed asset (localisation: one workflow per
    /// region), instead of one per asset.
    pub regions: Option<Vec<String>>,
    /// contentstack: the content type whose entries are taken (default: the target's).
    pub content_type: Option<String>,
    /// contentstack: a CMA `query` object (JSON text) selecting the entries, e.g.
    /// `{"status": "approved"}`.
    pub query: Option<String>,
}

/// `[polls.write_back]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawWriteBack {
    /// Folder to move a delivered file into.
    pub delivered: Option<String>,
    /// Folder to move an excepted file into.
    pub excepted: Option<String>,
    /// confluence: label added to a page after its delivery.
    pub label: Option<String>,
    /// confluence: content property set to the target's receipt after delivery.
    pub property: Option<String>,
    /// confluence: label added to a page whose transfer went to the exception folder.
    pub excepted_label: Option<String>,
    /// canto: approval status set after delivery.
    pub approval: Option<String>,
    /// canto: custom fields (id = value) set after delivery.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// canto: approval status set after an exception.
    pub excepted_approval: Option<String>,
    /// canto: custom fields set after an exception.
    pub excepted_fields: Option<std::collections::BTreeMap<String, String>>,
}

/// What a `confluence` poll selects and writes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfluencePoll {
    /// The CQL selecting the pages (without `ORDER BY`: the poll adds its own).
    pub cql: String,
    /// Label added after delivery.
    pub label: Option<String>,
    /// Content property set to the receipt after delivery.
    pub property: Option<String>,
    /// Label added after an exception (removed again by nothing: people clear it when fixed).
    pub excepted_label: Option<String>,
    /// What becomes of the pages' attachments.
    pub attachments: PageAttachments,
}

/// What a Confluence poll does with a page's attachments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PageAttachments {
    /// Only the page travels.
    #[default]
    None,
    /// Each attachment version is its own transfer (after its page), with the page's fields.
    Items,
    /// The page travels as `<title>.zip`: the HTML file, `attachments/<name>` and a
    /// `manifest.json` with each file's sha256.
    Zip,
}

/// What a `contentstack` poll takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentstackPoll {
    /// The content type.
    pub content_type: String,
    /// The `query` object the entries must match (empty: all).
    pub query: serde_json::Map<String, serde_json::Value>,
}

fn contentstack_source(
    p: &RawPoll,
    config: &super::Config,
    sk: &KeyPath,
    ck: &mut Checker<'_>,
) -> Option<ContentstackPoll> {
    let target_ct = config.targets.iter().find(|t| t.name == p.source.target).and_then(|t| match &t.kind {
        TargetKind::Contentstack(c) => Some(c.content_type.clone()),
        _ => None,
    });
    let content_type = p.source.content_type.clone().or(target_ct)?;
    if content_type.is_empty() || !content_type.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        ck.report(&sk.key("content_type"), "must be a content type uid (letters, digits, `_`)");
    }
    let query = match p.source.query.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        None => serde_json::Map::new(),
        Some(Ok(serde_json::Value::Object(m))) => m,
        Some(_) => {
            ck.report(&sk.key("query"), "must be a JSON object, e.g. '{\"status\": \"approved\"}'");
            serde_json::Map::new()
        }
    };
    if !p.source.path.is_empty() || p.source.cql.is_some() || p.source.scheme.is_some() {
        ck.report(&sk.key("path"), "`path`, `cql` and `scheme` do not belong to `contentstack` sources");
    }
    Some(ContentstackPoll { content_type, query })
}

/// A validated poll.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Name.
    pub name: String,
    /// Channel.
    pub channel: String,
    /// Account.
    pub account: String,
    /// Interval (with a `schedule`: the base of the backoff after a failure).
    pub every: Duration,
    /// When polls run, if at fixed times rather than on an interval.
    pub schedule: Option<crate::outbound::schedule::Schedule>,
    /// Target (connection).
    pub target: String,
    /// Folder.
    pub path: String,
    /// Include subfolders.
    pub recursive: bool,
    /// Path filter.
    pub name_filter: Option<Regex>,
    /// Move delivered files here (relative: beside the file).
    pub on_delivered: Option<String>,
    /// Move excepted files here.
    pub on_excepted: Option<String>,
    /// Set for a `confluence` source.
    pub confluence: Option<ConfluencePoll>,
    /// contentstack: the content type and query.
    pub contentstack: Option<ContentstackPoll>,
}

/// A CQL string literal.
fn cql_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a label is one Confluence accepts (no whitespace, none of `:;,.?&[]()#^*@!<>`).
fn valid_label(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.chars().any(|c| c.is_whitespace() || ":;,.?&[]()#^*@!<>".contains(c))
}

fn confluence_source(p: &RawPoll, key: &KeyPath, ck: &mut Checker<'_>) -> Option<ConfluencePoll> {
    let (sk, wk) = (key.key("source"), key.key("write_back"));
    let before = ck.problems.len();
    let cql = match (&p.source.cql, &p.source.space, &p.source.label) {
        (Some(c), None, None) if !c.trim().is_empty() => {
            if c.to_lowercase().contains("order by") {
                ck.report(&sk.key("cql"), "leave out ORDER BY: the poll orders by lastmodified itself");
            }
            c.trim().to_string()
        }
        (None, Some(s), Some(l)) => {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '~' || c == '_') {
                ck.report(&sk.key("space"), "must be a space key such as `ENG`");
            }
            if !valid_label(l) {
                ck.report(&sk.key("label"), "must be a Confluence label (no spaces or punctuation)");
            }
            format!("type=page AND space={} AND label={}", cql_quote(s), cql_quote(l))
        }
        _ => {
            ck.report(&sk.key("cql"), "a `confluence` source needs `cql`, or `space` and `label` (not both)");
            String::new()
        }
    };
    if !p.source.path.is_empty() || p.source.name.is_some() || p.source.recursive {
        ck.report(&sk.key("path"), "`path`, `name` and `recursive` belong to `dropbox` sources");
    }
    if p.write_back.delivered.is_some() || p.write_back.excepted.is_some() {
        ck.report(&wk.key("delivered"), "a `confluence` source writes back `label` and `property`, not folders");
    }
    if let Some(l) = &p.write_back.label
        && !valid_label(l)
    {
        ck.report(&wk.key("label"), "must be a Confluence label (no spaces or punctuation)");
    }
    if let Some(l) = &p.write_back.excepted_label
        && !valid_label(l)
    {
        ck.report(&wk.key("excepted_label"), "must be a Confluence label (no spaces or punctuation)");
    }
    if let Some(k) = &p.write_back.property
        && (k.trim().is_empty() || k.len() > 255)
    {
        ck.report(&wk.key("property"), "must be a content property key (1..255 characters)");
    }
    let attachments = match p.source.attachments.as_deref() {
        None | Some("none") => PageAttachments::None,
        Some("items") => PageAttachments::Items,
        Some("zip") => PageAttachments::Zip,
        Some(other) => {
            ck.report(&sk.key("attachments"), format!("`{other}` is not one of `none`, `items`, `zip`"));
            PageAttachments::None
        }
    };
    (ck.problems.len() == before).then(|| ConfluencePoll {
        cql,
        label: p.write_back.label.clone(),
        property: p.write_back.property.clone(),
        excepted_label: p.write_back.excepted_label.clone(),
        attachments,
    })
}

/// `schedule` (+ `time_zone`): cron instead of an interval; not both.
fn poll_schedule(p: &RawPoll, key: &KeyPath, ck: &mut Checker<'_>) -> Option<crate::outbound::schedule::Schedule> {
    let Some(expr) = &p.schedule else {
        if p.time_zone.is_some() {
            ck.report(&key.key("time_zone"), "`time_zone` only applies with `schedule`");
        }
        return None;
    };
    if p.every_secs.is_some() {
        ck.report(&key.key("schedule"), "give `schedule` (cron) or `every_secs` (interval), not both");
    }
    let tz = p.time_zone.as_deref().unwrap_or("UTC");
    crate::outbound::schedule::Schedule::parse(expr, tz)
        .map_err(|e| {
            let k = if e.starts_with(&format!("`{tz}`")) { "time_zone" } else { "schedule" };
            ck.report(&key.key(k), e)
        })
        .ok()
}

fn folder(raw: &Option<String>, key: &KeyPath, ck: &mut Checker<'_>) -> Option<String> {
    let f = raw.as_ref()?.trim_end_matches('/').to_string();
    let body = f.strip_prefix('/').unwrap_or(&f);
    if body.is_empty()
        || body.split('/').any(|c| c.is_empty() || c == ".." || c == ".")
        || f.chars().any(char::is_control)
    {
        ck.report(key, "must be a folder name (`filed`) or an absolute path (`/Archive/filed`), without `.` or `..`");
        return None;
    }
    Some(f)
}

/// Validates every `[[polls]]` entry.
pub fn build(raw: &[RawPoll], config: &super::Config, ck: &mut Checker<'_>) -> Vec<PollConfig> {
    let mut names = std::collections::HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let key = KeyPath::root().key("polls").index(i);
            let before = ck.problems.len();
            if !is_valid_name(&p.name) || !names.insert(p.name.clone()) {
                ck.report(&key.key("name"), format!("`{}` is not a valid, unique poll name", p.name));
            }
            if !is_valid_name(&p.channel) {
                ck.report(&key.key("channel"), format!("`{}` is not a valid channel name", p.channel));
            }
            if config.account(&p.account).is_none() {
                ck.report(&key.key("account"), format!("no account named `{}`", p.account));
            }
            if config.pipeline.is_none() {
                ck.report(&key.key("channel"), "a poll needs [pipeline]: nothing would process its items");
            }
            let every = p.every_secs.unwrap_or(60);
            if every == 0 {
                ck.report(&key.key("every_secs"), "must be at least 1");
            }
            let schedule = poll_schedule(p, &key, ck);
            let sk = key.key("source");
            let kind_of = |t: &super::TargetConfig| match t.kind {
                TargetKind::Dropbox(_) => "dropbox",
                TargetKind::Confluence(_) => "confluence",
                TargetKind::Canto(_) => "canto",
                TargetKind::Contentstack(_) => "contentstack",
                _ => "",
            };
            let confluence = if p.source.kind == "confluence" { confluence_source(p, &key, ck) } else { None };
            if !["dropbox", "confluence", "canto", "contentstack"].contains(&p.source.kind.as_str()) {
                ck.report(
                    &sk.key("type"),
                    format!(
                        "unknown source type `{}`; use `dropbox`, `confluence`, `canto` or `contentstack`",
                        p.source.kind
                    ),
                );
            } else if !config.targets.iter().any(|t| t.name == p.source.target && kind_of(t) == p.source.kind) {
                ck.report(
                    &sk.key("target"),
                    format!("no `{}` target named `{}` in [[targets]]", p.source.kind, p.source.target),
                );
            }
            if p.source.kind == "dropbox"
                && (p.source.cql.is_some()
                    || p.source.space.is_some()
                    || p.source.label.is_some()
                    || p.source.attachments.is_some()
                    || p.write_back.label.is_some()
                    || p.write_back.excepted_label.is_some()
                    || p.write_back.property.is_some())
            {
                ck.report(
                    &sk.key("cql"),
                    "`cql`, `space`, `label`, `attachments`, `property` and `excepted_label` belong to `confluence` sources",
                );
            }
            if !p.source.path.is_empty() && !p.source.path.starts_with('/') {
                ck.report(&sk.key("path"), "must be an absolute Dropbox folder (`/Projects`), or empty for the root");
            }
            let name_filter =
                p.source.name.as_ref().and_then(|r| {
                    Regex::new(r).map_err(|e| ck.report(&sk.key("name"), format!("not a regex: {e}"))).ok()
                });
            let contentstack = if p.source.kind == "contentstack" {
                contentstack_source(p, config, &sk, ck)
            } else {
                if p.source.query.is_some() || p.source.content_type.is_some() {
                    ck.report(&sk.key("query"), "`query` and `content_type` belong to `contentstack` sources");
                }
                None
            };
            let wk = key.key("write_back");
            let on_delivered = folder(&p.write_back.delivered, &wk.key("delivered"), ck);
            let on_excepted = folder(&p.write_back.excepted, &wk.key("excepted"), ck);
            if ck.problems.len() != before {
                return None;
            }
            Some(PollConfig {
                name: p.name.clone(),
                channel: p.channel.clone(),
                account: p.account.clone(),
                every: Duration::from_secs(every),
                schedule,
                target: p.source.target.clone(),
                path: p.source.path.trim_end_matches('/').to_string(),
                recursive: p.source.recursive,
                name_filter,
                on_delivered,
                on_excepted,
                confluence,
                contentstack,
            })
        })
        .collect()
}

/// What a `canto` poll searches and writes back (kept beside [`PollConfig`], by poll name, in
/// `Config::canto_polls`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CantoPoll {
    /// Schemes joined by `|` (empty: all).
    pub scheme: String,
    /// Search keyword (empty: none).
    pub keyword: String,
    /// Approval filter (empty: any).
    pub approval: String,
    /// Approval status set after delivery.
    pub delivered_approval: Option<String>,
    /// Custom fields set after delivery.
    pub delivered_fields: std::collections::BTreeMap<String, String>,
    /// Approval status set after an exception.
    pub excepted_approval: Option<String>,
    /// Custom fields set after an exception.
    pub excepted_fields: std::collections::BTreeMap<String, String>,
    /// Expiry mode: the date field and the window (days); each poll searches everything.
    pub expiring: Option<(String, u32)>,
    /// Fan-out: one item per region for each new or changed asset.
    pub regions: Vec<String>,
}

const CANTO_SCHEMES: [&str; 6] = ["image", "video", "audio", "document", "presentation", "other"];

fn canto_source(p: &RawPoll, key: &KeyPath, ck: &mut Checker<'_>) -> Option<CantoPoll> {
    let (sk, wk) = (key.key("source"), key.key("write_back"));
    let before = ck.problems.len();
    let scheme = p.source.scheme.clone().unwrap_or_default();
    if !scheme.is_empty() && !scheme.split('|').all(|s| CANTO_SCHEMES.contains(&s)) {
        ck.report(
            &sk.key("scheme"),
            "must be schemes joined by `|`: image, video, audio, document, presentation, other",
        );
    }
    let approval = p.source.approval.clone().unwrap_or_default();
    if !approval.is_empty() && !["approved", "pending", "restricted", "expired"].contains(&approval.as_str()) {
        ck.report(&sk.key("approval"), "must be `approved`, `pending`, `restricted` or `expired`");
    }
    if !p.source.path.is_empty() || p.source.name.is_some() || p.source.cql.is_some() || p.source.space.is_some() {
        ck.report(&sk.key("path"), "`path`, `name`, `cql` and `space` do not belong to `canto` sources");
    }
    if p.write_back.delivered.is_some() || p.write_back.excepted.is_some() || p.write_back.label.is_some() {
        ck.report(&wk.key("delivered"), "a `canto` source writes back `approval` and `fields`, not folders or labels");
    }
    for (k, a) in [("approval", &p.write_back.approval), ("excepted_approval", &p.write_back.excepted_approval)] {
        if let Some(a) = a
            && !["approved", "pending", "restricted"].contains(&a.to_lowercase().as_str())
        {
            ck.report(&wk.key(k), "must be `approved`, `pending` or `restricted`");
        }
    }
    for (k, f) in [("fields", &p.write_back.fields), ("excepted_fields", &p.write_back.excepted_fields)] {
        for id in f.iter().flat_map(|m| m.keys()) {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                ck.report(&wk.key(k).key(id), "must be a Canto custom field id such as `meta_rights_status`");
            }
        }
    }
    let expiring = match (&p.source.expiring_field, p.source.expiring_within_days) {
        (None, None) => None,
        (Some(f), Some(d)) if !f.trim().is_empty() && (1..=3660).contains(&d) => Some((f.trim().to_string(), d)),
        _ => {
            ck.report(
                &sk.key("expiring_within_days"),
                "give `expiring_field` (a custom field holding a date) and `expiring_within_days` (1 to 3660) together",
            );
            None
        }
    };
    let regions = p.source.regions.clone().unwrap_or_default();
    for r in &regions {
        if r.is_empty() || r.len() > 16 || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            ck.report(&sk.key("regions"), format!("`{r}` is not a region code (letters, digits, `-`)"));
        }
    }
    if !regions.is_empty() && expiring.is_some() {
        ck.report(&sk.key("regions"), "`regions` and `expiring_field` are two different polls");
    }
    (ck.problems.len() == before).then(|| CantoPoll {
        expiring,
        regions,
        scheme,
        keyword: p.source.keyword.clone().unwrap_or_default(),
        approval,
        delivered_approval: p.write_back.approval.clone(),
        delivered_fields: p.write_back.fields.clone().unwrap_or_default(),
        excepted_approval: p.write_back.excepted_approval.clone(),
        excepted_fields: p.write_back.excepted_fields.clone().unwrap_or_default(),
    })
}

/// The settings of every `canto` poll, by poll name; problems reported with their keys.
pub fn build_canto(raw: &[RawPoll], ck: &mut Checker<'_>) -> std::collections::BTreeMap<String, CantoPoll> {
    raw.iter()
        .enumerate()
        .filter(|(_, p)| p.source.kind == "canto")
        .filter_map(|(i, p)| {
            let key = KeyPath::root().key("polls").index(i);
            canto_source(p, &key, ck).map(|c| (p.name.clone(), c))
        })
        .collect()
}
