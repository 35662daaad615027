//! The rules engine: what a channel accepts, what it attaches, where it delivers, as data.
//!
//! This module owns the rule-file model (`rules/<channel>.toml`, lookup tables in
//! `rules/tables/*.csv`), its validation with located errors, and the pure evaluation of one file
//! against it ([`RuleSet::evaluate`] → [`Outcome`]), plus the inline `[[test]]` cases
//! ([`RuleSet::run_tests`]) and a trace for people ([`RuleSet::explain`]). It does no I/O besides
//! reading rule files, tables and the body being checked; it does not move files, wait for sidecars,
//! deliver, retry or journal: the pipeline does that with what [`Outcome`] and the accessors say.
//! Rule files are never reachable from an account's mounts, and nothing uploaded changes a rule: a
//! sidecar can only set fields the rule lists as `overridable`.
//!
//! # Format
//! ```toml
//! reject_unmatched_names = false     # true: refuse an unmatched name at upload (SFTP open / FTP STOR)
//! receipts = false                   # true: <name>.ack.json / .nack.json in the sender's /outbound/receipts/
//!
//! [[accept]]                         # tried in order; the first whose pattern matches decides
//! name = "invoice"                   # used in reasons and in Outcome::Accepted
//! pattern = '^INV-(?P<vendor>[A-Z0-9]+)-(?P<year>\d{4})-(?P<seq>\d{4})\.pdf$'   # must be ^…$
//! captures = { year = { type = "integer", min = 2000, max = 2100 } }   # or { type = "date", format = "%Y%m%d" }
//! max_size = "50 MiB"                # or bytes; units B KB MB GB TB (1000) KiB MiB GiB TiB (1024)
//! extensions = ["pdf"]               # case-insensitive, without the dot
//! content = "pdf"                    # or a list: pdf zip docx xlsx xml text csv png jpeg
//! fields = { doc_type = "Invoice" }  # entry-only metadata (overrides [metadata].fields)
//! destination = "{year}/{file.name}" # entry-only destination (overrides [target].destination)
//! [accept.archive]                   # only with zip, docx or xlsx content; these are the defaults
//! max_entries = 10000
//! max_total_size = "1 GiB"
//! max_ratio = 100                    # uncompressed / archive size
//!
//! [metadata]
//! fields = { vendor = "{vendor}", partner = "{account.partner_id}", sha256 = "{transfer.sha256}" }
//! lookups = [ { field = "vendor_name", table = "vendors", key = "{vendor}", column = "name",
//!               key_column = "code", missing = "except" } ]          # or missing = { default = "…" }
//! sidecar = { policy = "optional", wait_secs = 300 }                  # none | optional | required
//! overridable = ["po_number"]        # the only fields a sidecar or resubmit override may set
//! required = ["vendor_name"]         # must be non-empty at the end
//! checks = { vendor = { regex = '^[A-Z0-9]+$' }, doc_type = { one_of = ["Invoice"] } }
//!
//! [target]
//! name = "demo-ecm"                  # a target of the main config
//! destination = "{year}/{vendor}/{file.name}"
//! conflict = "version"               # version | rename | reject (default) | overwrite
//! retry = { attempts = 5, backoff_secs = 30, max_age_secs = 86400 }
//!
//! [[test]]
//! file = "INV-ACME-2026-0001.pdf"    # body synthesised from `content` (default: by extension)
//! account = { name = "acme", partner_id = "ACME" }
//! expect = "accepted"                # with optional entry, metadata (subset), destination
//! metadata = { vendor_name = "Acme Corporation" }
//! ```
//! Templates: `{capture}`, `{account.name}`, `{account.<attribute>}`, `{transfer.id|sha256|received_at|protocol|size}`,
//! `{file.name|stem|ext}` and, in lookup keys and destinations, `{meta.<field>}`; `{{`/`}}` are braces.
//!
//! # Evaluation, in order
//! 1. Name: the first entry whose pattern matches; none → [`RejectionKind::Name`] quoting the patterns.
//! 2. Entry checks: typed captures, extension, size, content (magic bytes, and the extension's own kind
//!    when the entry allows several), archive limits and entry names for zip-based bodies.
//! 3. Metadata: fields (the entry's over `[metadata]`'s), then the sidecar and then resubmit overrides
//!    (only `overridable` keys; any other key is a rejection, not silently dropped), then lookups in
//!    order (a field already set by an override is not looked up), then `required` and `checks`.
//! 4. Destination: rendered and refused unless a safe relative path.
//!
//! # Use
//! ```text
//! let rules = Rules::load_dir(Path::new("rules"))?;          // config::Error: every problem, located
//! let set = rules.get("invoices").expect("channel");
//! set.name_matches("INV-ACME-2026-0001.pdf")?;               // early refusal (reject_unmatched_names)
//! match set.evaluate(&input) {                              // Input: name, size, body, account, transfer, sidecar
//!     Outcome::Accepted { entry, metadata, destination, target, conflict } => deliver(..),
//!     Outcome::Excepted(rejection) => except(rejection),    // reason + remedy + rule + file:line
//! }
//! set.retry(); set.sidecar(); set.run_tests(); set.explain(&Input::named("x.pdf"));
//! ```
//! Rejection locations use the rule file's path as given to [`Rules::load_dir`] / [`RuleSet::load`].
//!
//! See `rules/README.md` for the full reference with examples.

mod archive;
pub mod content;
mod eval;
pub mod live;
mod load;
mod load_meta;
mod load_workflow;
mod model;
mod raw;
mod selftest;
mod template;

pub use archive::{ArchiveLimits, bytes};
pub use content::{Body, ContentKind};
pub use model::{WorkflowSettings, WorkflowStart};
pub use selftest::TestResult;

use crate::config::{self, Problem};
use model::{Entry, Metadata, TargetRule, TestCase};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The rules of every channel, loaded from one folder.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    channels: BTreeMap<String, RuleSet>,
}

impl Rules {
    /// Loads every `<channel>.toml` in `dir`, with lookup tables from `dir/tables/`.
    ///
    /// # Errors
    /// Every problem of every file, so one pass fixes them all; nothing is loaded if any file fails.
    pub fn load_dir(dir: &Path) -> Result<Rules, config::Error> {
        let fail = |message: String| {
            config::Error(vec![Problem { file: dir.to_path_buf(), line: 0, col: 0, key: "(folder)".into(), message }])
        };
        let listing = std::fs::read_dir(dir).map_err(|e| fail(format!("cannot read the rules folder: {e}")))?;
        let mut files: Vec<PathBuf> = listing
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let tables = dir.join("tables");
        let mut problems = Vec::new();
        let mut channels = BTreeMap::new();
        for file in files {
            match RuleSet::load(&file, &tables) {
                Ok(set) => {
                    channels.insert(set.channel.clone(), set);
                }
                Err(e) => problems.extend(e.0),
            }
        }
        if problems.is_empty() { Ok(Rules { channels }) } else { Err(config::Error(problems)) }
    }

    /// The rules of one channel.
    pub fn get(&self, channel: &str) -> Option<&RuleSet> {
        self.channels.get(channel)
    }

    /// Every channel, by name.
    pub fn channels(&self) -> impl Iterator<Item = &RuleSet> {
        self.channels.values()
    }

    /// Runs the inline tests of every channel.
    pub fn run_tests(&self) -> Vec<TestResult> {
        self.channels.values().flat_map(RuleSet::run_tests).collect()
    }
}

/// The validated rules of one channel (`rules/<channel>.toml`).
#[derive(Debug, Clone)]
pub struct RuleSet {
    channel: String,
    source: PathBuf,
    reject_unmatched_names: bool,
    receipts: bool,
    entries: Vec<Entry>,
    metadata: Metadata,
    target: TargetRule,
    workflow: Option<model::WorkflowRule>,
    tests: Vec<TestCase>,
    /// Where unmatched-name rejections point: the first `[[accept]]`.
    accept_site: model::Site,
}

impl RuleSet {
    /// The channel name (the file's stem).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The rule file this was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether an unmatched name is refused at upload time instead of going to exceptions.
    pub fn reject_unmatched_names(&self) -> bool {
        self.reject_unmatched_names
    }

    /// Whether the sender gets a receipt after each outcome (in its outbound box, `receipts/`).
    pub fn receipts(&self) -> bool {
        self.receipts
    }

    /// Names of the accept entries, in order.
    pub fn entry_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The target named by `[target]` (checked against the main config by the caller).
    pub fn target(&self) -> &str {
        &self.target.name
    }

    /// What to do when the destination already exists.
    pub fn conflict(&self) -> Conflict {
        self.target.conflict
    }

    /// How transient delivery failures are retried.
    pub fn retry(&self) -> RetryPolicy {
        self.target.retry
    }

    /// The workflow connection the rules' `[workflow]` names, if any.
    pub fn workflow_engine(&self) -> Option<&str> {
        self.workflow.as_ref().map(|w| w.engine.as_str())
    }

    /// Whether (and how long) the pipeline waits for a `<name>.meta.json` before evaluating.
    pub fn sidecar(&self) -> SidecarPolicy {
        self.metadata.sidecar
    }

    /// Number of inline tests.
    pub fn test_count(&self) -> usize {
        self.tests.len()
    }
}

/// The file name of the sidecar of `name`.
pub fn sidecar_name(name: &str) -> String {
    format!("{name}.meta.json")
}

/// If `name` is a sidecar (`<file>.meta.json`), the name of the file it belongs to.
pub fn sidecar_owner(name: &str) -> Option<&str> {
    name.strip_suffix(".meta.json").filter(|f| !f.is_empty())
}

/// What the rules are evaluated on: one received file and where it came from.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The file name as uploaded (one path component).
    pub name: String,
    /// The body's length as journaled; `None`: taken from the body (or unknown in `explain`).
    pub size: Option<u64>,
    /// The body, for content and archive checks; `None` only in `explain`.
    pub body: Option<Body>,
    /// The uploading account.
    pub account: Account,
    /// Transfer fields for templates.
    pub transfer: Transfer,
    /// Text of the `<name>.meta.json` uploaded with the file, if any.
    pub sidecar: Option<String>,
    /// Text of the `<name>.meta.json` given with a resubmit (wins over the sidecar).
    pub overrides: Option<String>,
}

impl Input {
    /// An input with only a name: what `wharf rules explain NAME` evaluates.
    pub fn named(name: &str) -> Input {
        Input { name: name.to_string(), ..Input::default() }
    }
}

/// The account a file came from, as the rules see it.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// Login name (`{account.name}`).
    pub name: String,
    /// Attributes from the config (`{account.partner_id}`).
    pub attributes: BTreeMap<String, String>,
}

/// Transfer fields available to templates as `{transfer.X}`.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    /// ULID of the transfer.
    pub id: String,
    /// SHA-256 of the body, lowercase hex.
    pub sha256: String,
    /// When the upload completed, RFC 3339.
    pub received_at: String,
    /// How it arrived: `sftp`, `ftp`, `ftps`, `hotfolder`, `dropbox`, ...
    pub protocol: String,
    /// What its source said about it (`{transfer.source.X}`): path, id, rev, modified, ...;
    /// empty for uploads.
    pub source: BTreeMap<String, String>,
}

/// The decision for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Deliver it.
    Accepted {
        /// The accept entry that matched.
        entry: String,
        /// Metadata to deliver with it.
        metadata: BTreeMap<String, String>,
        /// Safe relative path under the target.
        destination: String,
        /// Target name (from the main config).
        target: String,
        /// What to do if the destination exists.
        conflict: Conflict,
        /// The workflow (approval) to wait for before delivering, if the rules ask for one.
        #[serde(skip_serializing_if = "Option::is_none")]
        workflow: Option<Box<WorkflowStart>>,
    },
    /// Put it into `exceptions/<channel>/` with this reason.
    Excepted(Rejection),
}

/// Why a file is not delivered, for the `.error.txt` (a person) and `.error.json` (machines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Which check failed.
    pub kind: RejectionKind,
    /// The rule's key path, e.g. `accept[0].content` or `metadata.lookups[0]`.
    pub rule: String,
    /// The accept entry that matched, if any.
    pub entry: Option<String>,
    /// `rules/<channel>.toml:<line>` of that rule.
    pub location: String,
    /// What is wrong, in a sentence that names the file.
    pub reason: String,
    /// What to do about it.
    pub remedy: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{} at {}] {}", self.reason, self.rule, self.location, self.remedy)
    }
}

/// The check a [`Rejection`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// The name matches no accept entry.
    Name,
    /// A typed capture is out of range or not a valid date.
    Capture,
    /// The extension is not allowed.
    Extension,
    /// The file is too large.
    Size,
    /// The bytes are not the expected kind.
    Content,
    /// A zip archive breaks a limit or has unsafe entries.
    Archive,
    /// The sidecar is malformed or sets a field it may not.
    Sidecar,
    /// The rule requires a sidecar and there is none (the pipeline waits first).
    SidecarMissing,
    /// A metadata template has no value for a placeholder.
    Metadata,
    /// A lookup key is not in its table.
    Lookup,
    /// A required field is empty.
    Required,
    /// A field fails its value check.
    Check,
    /// The destination is not a safe relative path.
    Destination,
    /// The body could not be read: a gateway problem; retry rather than blame the sender.
    Unreadable,
}

impl RejectionKind {
    /// Every kind.
    pub const ALL: [RejectionKind; 14] = [
        Self::Name,
        Self::Capture,
        Self::Extension,
        Self::Size,
        Self::Content,
        Self::Archive,
        Self::Sidecar,
        Self::SidecarMissing,
        Self::Metadata,
        Self::Lookup,
        Self::Required,
        Self::Check,
        Self::Destination,
        Self::Unreadable,
    ];

    /// The snake_case name used in JSON and in `[[test]] kind`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Capture => "capture",
            Self::Extension => "extension",
            Self::Size => "size",
            Self::Content => "content",
            Self::Archive => "archive",
            Self::Sidecar => "sidecar",
            Self::SidecarMissing => "sidecar_missing",
            Self::Metadata => "metadata",
            Self::Lookup => "lookup",
            Self::Required => "required",
            Self::Check => "check",
            Self::Destination => "destination",
            Self::Unreadable => "unreadable",
        }
    }
}

/// What a target does when the destination path already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    /// Add a new version of the existing document.
    Version,
    /// Deliver under a new name (`name (2).pdf`).
    Rename,
    /// Refuse: the transfer goes to exceptions.
    Reject,
    /// Replace the existing document.
    Overwrite,
}

impl Conflict {
    /// Names in rule files.
    pub const NAMES: [&'static str; 4] = ["version", "rename", "reject", "overwrite"];

    /// The name used in rule files.
    pub fn name(self) -> &'static str {
        match self {
            Conflict::Version => "version",
            Conflict::Rename => "rename",
            Conflict::Reject => "reject",
            Conflict::Overwrite => "overwrite",
        }
    }
}

/// Retries of transient delivery failures (`[target].retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Delay before the first retry; the pipeline doubles it (with jitter) each time.
    pub backoff: Duration,
    /// A transfer older than this goes to exceptions instead of being retried.
    pub max_age: Duration,
}

/// Whether a sidecar `<name>.meta.json` is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidecarPolicy {
    /// None, optional or required.
    pub mode: SidecarMode,
    /// How long the pipeline waits for it after the file was received.
    pub wait: Duration,
}

/// Sidecar policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarMode {
    /// Sidecars are not read (one uploaded anyway is ignored).
    None,
    /// Used when present within the wait.
    Optional,
    /// A file without one is excepted after the wait.
    Required,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_archive;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_sidecar;
#[cfg(test)]
mod tests_workflow;
