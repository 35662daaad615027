//! A rule file exactly as written: serde structs, nothing compiled or checked yet. As in
//! [`crate::config`], unknown keys are not refused by serde (that would stop at the first one);
//! `serde_ignored` collects them all and [`super::load`] reports each, located.
//!
//! Values whose meaning depends on other keys (a capture's `type`, the `conflict` policy, content
//! kinds) stay strings here, so that a wrong one is reported at its own key with a helpful message
//! instead of serde's "unknown variant".

use serde::Deserialize;
use std::collections::BTreeMap;

/// Top level of `rules/<channel>.toml`.
#[derive(Debug, Deserialize)]
pub struct RawRules {
    /// Refuse an upload whose name matches no accept entry at open time (SFTP open, FTP STOR).
    #[serde(default)]
    pub reject_unmatched_names: bool,
    /// Write a receipt (`<name>.ack.json` / `<name>.nack.json`) for the sender after each outcome.
    #[serde(default)]
    pub receipts: bool,
    /// `[[accept]]`: which files the channel takes, first match wins.
    #[serde(default)]
    pub accept: Vec<RawAccept>,
    /// `[metadata]`: what is attached to an accepted file.
    #[serde(default)]
    pub metadata: RawMetadata,
    /// `[target]`: where an accepted file goes.
    pub target: Option<RawTarget>,
    /// `[workflow]`: a workflow instance (an approval) an accepted file waits for before delivery.
    pub workflow: Option<RawWorkflow>,
    /// `[[test]]`: inline cases run by `wharf rules test`.
    #[serde(default)]
    pub test: Vec<RawTest>,
}

/// A size: bytes as an integer, or a string with a unit (`"50 MiB"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    /// Plain bytes.
    Bytes(u64),
    /// `"<n> <unit>"`.
    Text(String),
}

/// One value or a list of them (`content = "pdf"` or `content = ["pdf", "docx"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `[[accept]]`.
#[derive(Debug, Deserialize)]
pub struct RawAccept {
    /// Entry name, used in reasons and in `Outcome::Accepted`.
    pub name: String,
    /// Anchored regex with named captures.
    pub pattern: String,
    /// Typed captures: `{ year = { type = "integer", min = 2000 } }`.
    #[serde(default)]
    pub captures: BTreeMap<String, RawCapture>,
    /// Largest body accepted.
    pub max_size: Option<RawSize>,
    /// Allowed file extensions, without the dot.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
    /// Expected content kind(s), checked by magic bytes.
    pub content: Option<OneOrMany>,
    /// Limits for zip-based content.
    pub archive: Option<RawArchive>,
    /// Metadata fields of this entry only (override `[metadata].fields` of the same name).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Destination of this entry only (overrides `[target].destination`).
    pub destination: Option<String>,
}

/// A typed capture.
#[derive(Debug, Deserialize)]
pub struct RawCapture {
    /// `integer` or `date`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Integer: smallest value.
    pub min: Option<i64>,
    /// Integer: largest value.
    pub max: Option<i64>,
    /// Date: chrono format, e.g. `%Y%m%d`.
    pub format: Option<String>,
}

/// `[accept.archive]`.
#[derive(Debug, Deserialize)]
pub struct RawArchive {
    /// Most entries (files, folders) an archive may hold.
    pub max_entries: Option<u64>,
    /// Most bytes all entries may inflate to.
    pub max_total_size: Option<RawSize>,
    /// Largest uncompressed/compressed ratio.
    pub max_ratio: Option<u64>,
}

/// `[metadata]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawMetadata {
    /// Field name → template.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Table lookups, evaluated in order.
    #[serde(default)]
    pub lookups: Vec<RawLookup>,
    /// The `<name>.meta.json` policy.
    pub sidecar: Option<RawSidecar>,
    /// Fields a sidecar or a resubmit override may set.
    #[serde(default)]
    pub overridable: Vec<String>,
    /// Fields that must be non-empty.
    #[serde(default)]
    pub required: Vec<String>,
    /// Field name → value check.
    #[serde(default)]
    pub checks: BTreeMap<String, RawCheck>,
}

/// One lookup in a CSV table.
#[derive(Debug, Deserialize)]
pub struct RawLookup {
    /// The metadata field it sets.
    pub field: String,
    /// Table name: `rules/tables/<table>.csv`.
    pub table: String,
    /// Template of the key to look up.
    pub key: String,
    /// Column whose value is taken.
    pub column: String,
    /// Column the key is matched against (default: the first).
    pub key_column: Option<String>,
    /// `"except"` (default) or `{ default = "..." }`.
    pub missing: Option<RawMissing>,
}

/// What a lookup does when the key is not in the table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawMissing {
    /// `"except"`.
    Word(String),
    /// `{ default = "..." }`.
    Default {
        /// The value used instead.
        default: String,
    },
}

/// `sidecar = { policy = "optional", wait_secs = 300 }`.
#[derive(Debug, Deserialize)]
pub struct RawSidecar {
    /// `none`, `optional` or `required`.
    pub policy: String,
    /// How long the pipeline waits for the sidecar after the file.
    pub wait_secs: Option<u64>,
}

/// A value check on a metadata field.
#[derive(Debug, Deserialize)]
pub struct RawCheck {
    /// The value must match this regex (anchor it yourself if needed).
    pub regex: Option<String>,
    /// The value must be one of these.
    pub one_of: Option<Vec<String>>,
}

/// `[target]`.
#[derive(Debug, Deserialize)]
pub struct RawTarget {
    /// A target of the main config.
    pub name: String,
    /// Template of the relative path under the target.
    pub destination: String,
    /// `version`, `rename`, `reject` or `overwrite`.
    pub conflict: Option<String>,
    /// Retries of transient delivery failures.
    pub retry: Option<RawRetry>,
}

/// `retry = { attempts, backoff_secs, max_age_secs }`.
#[derive(Debug, Deserialize)]
pub struct RawRetry {
    /// Delivery attempts in all (first one included).
    pub attempts: Option<u32>,
    /// Delay before the first retry; doubled for each further one.
    pub backoff_secs: Option<u64>,
    /// Give up (to exceptions) once the transfer is this old.
    pub max_age_secs: Option<u64>,
}

/// `[[test]]`.
#[derive(Debug, Deserialize)]
pub struct RawTest {
    /// Name in reports; default the file name. Must be unique in the file.
    pub name: Option<String>,
    /// File name of the synthetic upload.
    pub file: String,
    /// Body to synthesise; default from the file's extension.
    pub content: Option<String>,
    /// Size the spool reports (the synthesised body stays small).
    pub size: Option<RawSize>,
    /// `name` and attributes of the uploading account.
    #[serde(default)]
    pub account: BTreeMap<String, String>,
    /// Transfer fields (`id`, `sha256`, `received_at`, `protocol`).
    #[serde(default)]
    pub transfer: BTreeMap<String, String>,
    /// Sidecar fields, sent as a `<name>.meta.json` object.
    pub sidecar: Option<BTreeMap<String, String>>,
    /// Sidecar text as uploaded (to test malformed sidecars).
    pub sidecar_raw: Option<String>,
    /// Resubmit override fields.
    pub overrides: Option<BTreeMap<String, String>>,
    /// `accepted` or `excepted`.
    pub expect: String,
    /// Accepted: the entry that must match.
    pub entry: Option<String>,
    /// Accepted: fields that must have these values (others are not compared).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Accepted: the destination.
    pub destination: Option<String>,
    /// Excepted: a substring of the reason.
    pub reason: Option<String>,
    /// Excepted: the rejection kind (`name`, `content`, `size`, ...).
    pub kind: Option<String>,
}

/// `[workflow]`.
#[derive(Debug, Deserialize)]
pub struct RawWorkflow {
    /// A workflow connection of the gateway config.
    pub engine: String,
    /// Template of the process definition key (routing: `"{asset_type}-approval"`).
    pub definition: String,
    /// Template of the business key (default `wharf-{transfer.id}`).
    pub business_key: Option<String>,
    /// Process variables: name → template.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// An instance still open after this long goes to exceptions.
    pub timeout_secs: Option<u64>,
    /// How often the watcher looks at the instance.
    pub check_every_secs: Option<u64>,
    /// The variable holding the outcome (default `outcome`).
    pub outcome_variable: Option<String>,
    /// Outcomes that deliver (default `["approved"]`).
    pub approved: Option<Vec<String>>,
    /// Outcomes that reject (default `["rejected"]`).
    pub rejected: Option<Vec<String>>,
    /// The variable holding the reviewer's comment (default `comment`).
    pub comment_variable: Option<String>,
}
