//! The compiled form of a rule file: what [`super::load`] builds and [`super::eval`] runs. Every
//! check keeps its [`Site`] (key path and `file:line`), so a rejection names the rule to edit.

use super::archive::ArchiveLimits;
use super::content::ContentKind;
use super::template::Template;
use super::{Account, Conflict, Rejection, RejectionKind, RetryPolicy, SidecarPolicy};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Where a rule is: its key path and `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Site {
    /// Key path, e.g. `accept[0].content`.
    pub rule: String,
    /// `rules/invoices.toml:12`.
    pub loc: String,
}

impl Site {
    /// A rejection by this rule (boxed: it travels through `Result`s and is large).
    pub fn reject(
        &self,
        kind: RejectionKind,
        entry: Option<&str>,
        reason: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Box<Rejection> {
        Box::new(Rejection {
            kind,
            rule: self.rule.clone(),
            entry: entry.map(str::to_string),
            location: self.loc.clone(),
            reason: reason.into(),
            remedy: remedy.into(),
        })
    }
}

/// One `[[accept]]`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// `accept[i]`.
    pub site: Site,
    /// The pattern as written (for reasons).
    pub pattern_src: String,
    /// Compiled, anchored as `\A(?:…)\z`.
    pub pattern: Regex,
    /// Typed captures.
    pub captures: Vec<TypedCapture>,
    /// Extensions (lowercase) and the rule.
    pub extensions: Option<(Vec<String>, Site)>,
    /// Largest size.
    pub max_size: Option<(u64, Site)>,
    /// Allowed content kinds.
    pub content: Option<(Vec<ContentKind>, Site)>,
    /// Archive limits for zip-based content.
    pub archive: (ArchiveLimits, Site),
    /// Entry-only fields.
    pub fields: Vec<Field>,
    /// Entry-only destination.
    pub destination: Option<(Template, Site)>,
}

/// A capture with a type.
#[derive(Debug, Clone)]
pub struct TypedCapture {
    /// Group name.
    pub name: String,
    /// The type.
    pub kind: CaptureType,
    /// `accept[i].captures.<name>`.
    pub site: Site,
}

/// Types of captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureType {
    /// A whole number in an optional range.
    Integer {
        /// Smallest value.
        min: Option<i64>,
        /// Largest value.
        max: Option<i64>,
    },
    /// A calendar date in a chrono format.
    Date {
        /// e.g. `%Y%m%d`.
        format: String,
    },
}

/// A metadata field from a template.
#[derive(Debug, Clone)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Its template.
    pub template: Template,
    /// Where it is defined.
    pub site: Site,
}

/// A lookup in a CSV table, with the column's values indexed by key at load time.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The field it sets.
    pub field: String,
    /// Table name.
    pub table: String,
    /// Column taken.
    pub column: String,
    /// Column matched.
    pub key_column: String,
    /// Template of the key.
    pub key: Template,
    /// Key → value of `column`.
    pub values: Arc<HashMap<String, String>>,
    /// Value when the key is missing; `None` = except.
    pub default: Option<String>,
    /// `metadata.lookups[i]`.
    pub site: Site,
}

/// A value check on a field.
#[derive(Debug, Clone)]
pub struct FieldCheck {
    /// The field.
    pub field: String,
    /// Regex (and its source) the value must match.
    pub regex: Option<(Regex, String)>,
    /// Values allowed.
    pub one_of: Option<Vec<String>>,
    /// `metadata.checks.<field>`.
    pub site: Site,
}

/// `[metadata]`.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Global fields.
    pub fields: Vec<Field>,
    /// Lookups, in order.
    pub lookups: Vec<Lookup>,
    /// Sidecar policy.
    pub sidecar: SidecarPolicy,
    /// `metadata.sidecar`.
    pub sidecar_site: Site,
    /// Fields a sidecar or override may set.
    pub overridable: BTreeSet<String>,
    /// `metadata.overridable`.
    pub overridable_site: Site,
    /// Fields that must be non-empty.
    pub required: Vec<String>,
    /// `metadata.required`.
    pub required_site: Site,
    /// Value checks.
    pub checks: Vec<FieldCheck>,
}

/// `[target]`.
#[derive(Debug, Clone)]
pub struct TargetRule {
    /// Target name.
    pub name: String,
    /// Destination template.
    pub destination: Template,
    /// `target.destination`.
    pub site: Site,
    /// Conflict policy.
    pub conflict: Conflict,
    /// Retry policy.
    pub retry: RetryPolicy,
}

/// One `[[test]]`.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Name in reports.
    pub name: String,
    /// `test[i]`.
    pub site: Site,
    /// File name.
    pub file: String,
    /// Body kind to synthesise.
    pub body: String,
    /// Size the spool reports.
    pub size: Option<u64>,
    /// Uploading account.
    pub account: Account,
    /// Transfer field overrides.
    pub transfer: BTreeMap<String, String>,
    /// Sidecar text.
    pub sidecar: Option<String>,
    /// Resubmit override text.
    pub overrides: Option<String>,
    /// What must happen.
    pub expect: Expect,
}

/// The expected outcome of a test.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Delivered.
    Accepted {
        /// Entry that must match.
        entry: Option<String>,
        /// Fields that must have these values.
        metadata: BTreeMap<String, String>,
        /// Destination.
        destination: Option<String>,
    },
    /// Excepted.
    Excepted {
        /// Substring of the reason.
        reason: Option<String>,
        /// Rejection kind.
        kind: Option<RejectionKind>,
    },
}

/// `[workflow]`: the approval an accepted file waits for.
#[derive(Debug, Clone)]
pub struct WorkflowRule {
    /// The workflow connection.
    pub engine: String,
    /// Process definition key template.
    pub definition: Template,
    /// Business key template.
    pub business_key: Template,
    /// Variables: name and template.
    pub variables: Vec<(String, Template)>,
    /// How the end is read.
    pub settings: WorkflowSettings,
    /// `workflow`.
    pub site: Site,
}

/// How a workflow gate reads its instance's end; kept with the wait in the journal, so a rule
/// edit does not change how a running instance is judged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowSettings {
    /// Open longer than this: exception.
    pub timeout_secs: u64,
    /// Seconds between checks.
    pub check_every_secs: u64,
    /// The outcome variable.
    pub outcome_variable: String,
    /// Outcomes that deliver.
    pub approved: Vec<String>,
    /// Outcomes that reject.
    pub rejected: Vec<String>,
    /// The comment variable.
    pub comment_variable: String,
}

impl Default for WorkflowSettings {
    /// What a `[workflow]` without these keys means (and how a wait whose stored settings cannot
    /// be read is judged).
    fn default() -> Self {
        Self {
            timeout_secs: 7 * 86_400,
            check_every_secs: 30,
            outcome_variable: "outcome".into(),
            approved: vec!["approved".into()],
            rejected: vec!["rejected".into()],
            comment_variable: "comment".into(),
        }
    }
}

/// A workflow to start for an accepted file, rendered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowStart {
    /// The workflow connection.
    pub engine: String,
    /// Process definition key.
    pub definition: String,
    /// Business key.
    pub business_key: String,
    /// Variables.
    pub variables: BTreeMap<String, String>,
    /// How the end is read.
    pub settings: WorkflowSettings,
}
