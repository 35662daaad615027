//! `[targets.opentext]`: the settings of an OpenText Extended ECM (Content Server) target.
//!
//! ```toml
//! [[targets]]
//! name = "otcs-invoices"
//! type = "opentext"
//! [targets.opentext]
//! base_url = "https://ecm.example.com/otcs/cs.exe"   # the API is under {base_url}/api/v1, /api/v2
//! username = "svc-wharf"
//! password_env = "WHARF_OTCS_PASSWORD"               # or password_file = "/run/secrets/otcs"
//! # otds_token_env = "WHARF_OTDS_TOKEN"              # an OTDS bearer token instead of a password
//! root_folder = 2000                                 # node id the rules' destination is resolved under
//! create_folders = true                              # make missing folders of the destination path
//! timeout_secs = 60
//! concurrency = 8                                    # requests in flight on this connection at most
//! # ca_file = "/etc/wharf/ecm-ca.pem"                # extra CA for a private PKI
//! category = { id = 9830, attributes = { vendor = 2, invoice_number = 3 } }
//! checksum_attribute = 5                             # wharf's sha256 kept here (else in the description)
//! # workspace = { type_id = 10, name = "{vendor_name}", template_id = 20, create = true, subfolder = "Contracts" }
//! # rm_classification = 7000                       # RM classification node given to each document
//! multipart_threshold_mib = 64                       # bodies above this use Large File Upload (0: never)
//! # multipart_threshold_bytes = 1048576              # the same in bytes (tests, fine tuning), not with _mib
//! ```
//! Secrets are never in the file itself, so they never appear in a config dump or an error.

use super::locate::{Checker, KeyPath};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[targets.opentext]` as written.
#[derive(Debug, Deserialize)]
pub struct RawOpenText {
    /// `https://host/otcs/cs.exe`.
    pub base_url: String,
    /// Content Server user (with `password_env`/`password_file`).
    pub username: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (first line).
    pub password_file: Option<String>,
    /// Environment variable holding an OTDS bearer token.
    pub otds_token_env: Option<String>,
    /// Node id destinations are resolved under.
    pub root_folder: i64,
    /// Create missing folders of the destination path.
    #[serde(default)]
    pub create_folders: bool,
    /// Per-request timeout.
    pub timeout_secs: Option<u64>,
    /// Requests in flight at most.
    pub concurrency: Option<usize>,
    /// Extra CA certificate (PEM).
    pub ca_file: Option<String>,
    /// Category applied to each document, with metadata fields mapped to attribute ids.
    pub category: Option<RawCategory>,
    /// Attribute id (of `category`) keeping wharf's sha256; without it, the description does.
    pub checksum_attribute: Option<i64>,
    /// Deliver into a Business Workspace found (or made) from the metadata.
    pub workspace: Option<RawWorkspace>,
    /// Records-management classification id applied to each document.
    pub rm_classification: Option<i64>,
    /// Bodies larger than this many MiB go through Large File Upload sessions; 0 turns that off.
    pub multipart_threshold_mib: Option<u64>,
    /// The same threshold in bytes, for a finer one (tests); exclusive with `multipart_threshold_mib`.
    pub multipart_threshold_bytes: Option<u64>,
}

/// `category = { id, attributes = { field = attribute_id } }`.
#[derive(Debug, Deserialize)]
pub struct RawCategory {
    /// Category node id.
    pub id: i64,
    /// Metadata field name → attribute id.
    #[serde(default)]
    pub attributes: BTreeMap<String, i64>,
}

/// `workspace = { ... }`.
#[derive(Debug, Deserialize)]
pub struct RawWorkspace {
    /// Workspace type id.
    pub type_id: i64,
    /// Template over metadata: the workspace's name, searched for when there is no `bo_id`, and
    /// given to a created workspace (`{vendor_name}`).
    pub name: Option<String>,
    /// Business object id template matched against `bo_id` instead of the name (`{vendor_key}`).
    pub bo_id: Option<String>,
    /// Template id used to create a missing workspace.
    pub template_id: Option<i64>,
    /// Create the workspace when none matches.
    #[serde(default)]
    pub create: bool,
    /// Subfolder of the workspace that documents go into.
    pub subfolder: Option<String>,
}

/// Where the connector gets its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username with a password read from the environment at start.
    PasswordEnv {
        /// Content Server user.
        username: String,
        /// The variable's name.
        var: String,
    },
    /// Username with a password read from a file at start.
    PasswordFile {
        /// Content Server user.
        username: String,
        /// The file (its first line is the password).
        path: PathBuf,
    },
    /// An OTDS bearer token read from the environment (`GET /api/v1/auth` trades it for a ticket).
    OtdsTokenEnv {
        /// The variable's name.
        var: String,
    },
}

/// The validated settings of an OpenText target.
#[derive(Debug, Clone)]
pub struct OpenTextConfig {
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Destination root node.
    pub root_folder: i64,
    /// Create missing folders.
    pub create_folders: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Extra CA (PEM file).
    pub ca_file: Option<PathBuf>,
    /// Category id and field → attribute id.
    pub category: Option<(i64, BTreeMap<String, i64>)>,
    /// Attribute keeping the sha256.
    pub checksum_attribute: Option<i64>,
    /// Business Workspace delivery.
    pub workspace: Option<WorkspaceConfig>,
    /// RM classification id.
    pub rm_classification: Option<i64>,
    /// Bodies larger than this (bytes) are sent through Large File Upload sessions
    /// (`/api/v2/multipart`) when the server has them enabled; `None` = always one `file` part.
    pub multipart_threshold: Option<u64>,
}

/// Default of `multipart_threshold_mib`.
pub const DEFAULT_MULTIPART_THRESHOLD_MIB: u64 = 64;
/// Largest `multipart_threshold_mib` accepted (1 TiB).
const MAX_MULTIPART_THRESHOLD_MIB: u64 = 1 << 20;

/// Validated `workspace`.
#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    /// Workspace type id.
    pub type_id: i64,
    /// Name template.
    pub name: Option<String>,
    /// Business object id template.
    pub bo_id: Option<String>,
    /// Template for creation.
    pub template_id: Option<i64>,
    /// Create when missing.
    pub create: bool,
    /// Subfolder to deliver into.
    pub subfolder: Option<String>,
}

/// Validates `[targets.opentext]`; every problem is reported with its key.
pub fn build(raw: &RawOpenText, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<OpenTextConfig> {
    let before = ck.problems.len();
    let url = raw.base_url.trim_end_matches('/').to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) || reqwest::Url::parse(&url).is_err() {
        ck.report(&key.key("base_url"), "must be an http(s) URL such as https://host/otcs/cs.exe");
    }
    let credentials = match (&raw.username, &raw.password_env, &raw.password_file, &raw.otds_token_env) {
        (Some(u), Some(v), None, None) => Some(Credentials::PasswordEnv { username: u.clone(), var: v.clone() }),
        (Some(u), None, Some(p), None) => {
            Some(Credentials::PasswordFile { username: u.clone(), path: super::resolve(base, p) })
        }
        (None, None, None, Some(v)) => Some(Credentials::OtdsTokenEnv { var: v.clone() }),
        _ => {
            ck.report(
                &key.key("username"),
                "give `username` with one of `password_env` / `password_file`, or `otds_token_env` alone",
            );
            None
        }
    };
    if raw.root_folder <= 0 {
        ck.report(&key.key("root_folder"), "must be a node id (a positive number such as 2000)");
    }
    let concurrency = raw.concurrency.unwrap_or(8);
    if concurrency == 0 || concurrency > 256 {
        ck.report(&key.key("concurrency"), "must be between 1 and 256");
    }
    let timeout = raw.timeout_secs.unwrap_or(60);
    if timeout == 0 || timeout > 3600 {
        ck.report(&key.key("timeout_secs"), "must be between 1 and 3600");
    }
    if let (Some(attr), None) = (raw.checksum_attribute, &raw.category) {
        ck.report(&key.key("checksum_attribute"), format!("attribute {attr} needs a `category` it belongs to"));
    }
    if raw.rm_classification.is_some_and(|c| c <= 0) {
        ck.report(&key.key("rm_classification"), "must be the node id of a Classification (a positive number)");
    }
    let multipart_threshold = multipart_threshold(raw, key, ck);
    let workspace = raw.workspace.as_ref().map(|w| {
        let k = key.key("workspace");
        if w.name.is_none() && w.bo_id.is_none() {
            ck.report(&k, "give `name` or `bo_id` (a template over metadata) to find the workspace by");
        }
        if w.create && w.template_id.is_none() {
            ck.report(&k.key("create"), "creating a missing workspace needs `template_id`");
        }
        WorkspaceConfig {
            type_id: w.type_id,
            name: w.name.clone(),
            bo_id: w.bo_id.clone(),
            template_id: w.template_id,
            create: w.create,
            subfolder: w.subfolder.clone(),
        }
    });
    if ck.problems.len() != before {
        return None;
    }
    Some(OpenTextConfig {
        base_url: url,
        credentials: credentials?,
        root_folder: raw.root_folder,
        create_folders: raw.create_folders,
        timeout: Duration::from_secs(timeout),
        concurrency,
        ca_file: raw.ca_file.as_deref().map(|p| super::resolve(base, p)),
        category: raw.category.as_ref().map(|c| (c.id, c.attributes.clone())),
        checksum_attribute: raw.checksum_attribute,
        workspace,
        rm_classification: raw.rm_classification,
        multipart_threshold,
    })
}

/// `multipart_threshold_mib` (default 64) or `multipart_threshold_bytes`, in bytes; 0 = off.
fn multipart_threshold(raw: &RawOpenText, key: &KeyPath, ck: &mut Checker<'_>) -> Option<u64> {
    let bytes = match (raw.multipart_threshold_mib, raw.multipart_threshold_bytes) {
        (Some(_), Some(_)) => {
            ck.report(
                &key.key("multipart_threshold_bytes"),
                "give `multipart_threshold_mib` or `multipart_threshold_bytes`, not both",
            );
            return None;
        }
        (_, Some(b)) => b,
        (mib, None) => {
            let mib = mib.unwrap_or(DEFAULT_MULTIPART_THRESHOLD_MIB);
            if mib > MAX_MULTIPART_THRESHOLD_MIB {
                ck.report(
                    &key.key("multipart_threshold_mib"),
                    format!("must be between 0 (no Large File Upload) and {MAX_MULTIPART_THRESHOLD_MIB} (1 TiB)"),
                );
                return None;
            }
            mib << 20
        }
    };
    (bytes > 0).then_some(bytes)
}
