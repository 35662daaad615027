//! Targets: the systems wharf delivers documents to. One trait, one registry.
//!
//! A delivery's outcome is a value, [`Delivery`]: `Delivered(receipt)`, `Retry(reason)` for a
//! transient failure (the pipeline backs off and tries again), or `Except(reason)` for a permanent
//! one (the file goes to its exception folder). Every target must be idempotent: before creating
//! anything it looks for its own earlier delivery of the same transfer (by name and checksum), so
//! a crash between delivering and journaling never makes a second copy.

pub mod canto;
pub mod confluence;
pub mod contentstack;
pub mod dropbox;
pub mod fs;
pub mod html;
pub mod opentext;
pub mod workflow;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to do when the destination name is taken by a different document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Conflict {
    /// Keep both as versions of one document (fs: `name.v2.ext`, ...).
    #[default]
    Version,
    /// Deliver under a free name (`name (2).ext`).
    Rename,
    /// Refuse: the transfer goes to exceptions.
    Reject,
    /// Replace the existing document.
    Overwrite,
}

/// One document to deliver.
#[derive(Debug, Clone)]
pub struct Document {
    /// The transfer it comes from.
    pub transfer_id: String,
    /// The committed body in the spool.
    pub body: PathBuf,
    /// Relative destination path from the rules (already checked to be safe).
    pub destination: String,
    /// SHA-256 of the body.
    pub sha256: String,
    /// Size of the body.
    pub size: u64,
    /// The account that sent it.
    pub account: String,
    /// The channel it came through.
    pub channel: String,
    /// Metadata from the rules.
    pub metadata: BTreeMap<String, String>,
    /// Conflict policy.
    pub conflict: Conflict,
}

/// Where a document ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The target's name.
    pub target: String,
    /// The target's id of the document (a path for fs).
    pub id: String,
    /// Where it is, as the target names it.
    pub path: String,
    /// Version number, where the target keeps versions.
    pub version: Option<u32>,
    /// True when an earlier delivery of this transfer was found and reused.
    pub already_delivered: bool,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered (or found delivered).
    Delivered(Receipt),
    /// A transient failure; try again later.
    Retry(String),
    /// A permanent failure; the reason goes to the exception folder.
    Except(String),
}

/// A system documents are delivered to.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// The target's configured name.
    fn name(&self) -> &str;
    /// Delivers one document.
    async fn deliver(&self, doc: &Document) -> Delivery;
}
