//! The config file exactly as written: serde structs, nothing resolved yet. Unknown keys are not
//! refused by serde (that would stop at the first); `serde_ignored` collects them all for
//! [`super::Config::parse`], which reports each as an error.
//! [`super::Config::load`] turns these into the validated, typed [`super::Config`].

use serde::Deserialize;
use std::collections::BTreeMap;

/// Top level of `wharf.toml`.
#[derive(Debug, Deserialize)]
pub struct RawConfig {
    /// Where bodies, boxes, the journal and the audit trail live.
    pub spool: RawSpool,
    /// Limits shared by every protocol.
    #[serde(default)]
    pub sessions: RawSessions,
    /// The SFTP listener; absent means no SFTP.
    pub sftp: Option<RawSftp>,
    /// The FTP/FTPS listener; absent means no FTP.
    pub ftp: Option<RawFtp>,
    /// The logins.
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    /// The rules pipeline; absent means received files wait in the spool.
    pub pipeline: Option<RawPipeline>,
    /// Where documents are delivered.
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    /// Local folders watched for files (scanners, shares).
    #[serde(default)]
    pub hot_folders: Vec<RawHotFolder>,
    /// Scheduled outbound packages.
    #[serde(default)]
    pub jobs: Vec<super::jobs::RawJob>,
    /// Connector-fed channels.
    #[serde(default)]
    pub polls: Vec<super::polls::RawPoll>,
    /// The admin HTTP listener (health, webhooks); absent means none.
    pub admin: Option<super::webhooks::RawAdmin>,
    /// Events pushed by connected systems.
    #[serde(default)]
    pub webhooks: Vec<super::webhooks::RawWebhook>,
    /// OpenText Workflow Service tenants.
    #[serde(default)]
    pub workflows: Vec<super::workflow::RawWorkflow>,
}

/// `[[hot_folders]]`.
#[derive(Debug, Deserialize)]
pub struct RawHotFolder {
    /// The folder to watch.
    pub path: String,
    /// The channel its files become transfers of.
    pub channel: String,
    /// The account the files are attributed to (its attributes apply in the rules).
    pub account: String,
}

/// `[pipeline]`.
#[derive(Debug, Deserialize)]
pub struct RawPipeline {
    /// Folder of the rule files (`<channel>.toml`, `tables/*.csv`).
    pub rules: String,
    /// Concurrent workers.
    pub workers: Option<usize>,
}

/// `[[targets]]`.
#[derive(Debug, Deserialize)]
pub struct RawTarget {
    /// Name the rules use.
    pub name: String,
    /// Connector type: `fs`, `opentext`, `dropbox`, `confluence`.
    #[serde(rename = "type")]
    pub kind: String,
    /// fs: the folder documents are written under.
    pub root: Option<String>,
    /// opentext: `[targets.opentext]`.
    pub opentext: Option<super::opentext::RawOpenText>,
    /// dropbox: `[targets.dropbox]`.
    pub dropbox: Option<super::dropbox::RawDropbox>,
    /// confluence: `[targets.confluence]`.
    pub confluence: Option<super::confluence::RawConfluence>,
    /// canto: `[targets.canto]`.
    pub canto: Option<super::canto::RawCanto>,
    /// contentstack: `[targets.contentstack]`.
    pub contentstack: Option<super::contentstack::RawContentstack>,
}

/// `[spool]`.
#[derive(Debug, Deserialize)]
pub struct RawSpool {
    /// Root folder of the spool.
    pub root: String,
    /// SQLite journal file; default `<root>/journal.db`.
    pub journal: Option<String>,
    /// Audit trail (JSONL); default `<root>/audit.jsonl`.
    pub audit_log: Option<String>,
}

/// `[sessions]`: limits for SFTP and FTP alike.
#[derive(Debug, Default, Deserialize)]
pub struct RawSessions {
    /// Concurrent sessions one account may hold (SFTP and FTP together).
    pub max_per_account: Option<usize>,
    /// Concurrent connections one remote address may hold.
    pub max_per_address: Option<usize>,
    /// Delay before a failed authentication is answered.
    pub auth_failure_delay_ms: Option<u64>,
    /// Seconds without traffic after which a session is closed.
    pub idle_timeout_secs: Option<u64>,
}

/// `[sftp]`.
#[derive(Debug, Deserialize)]
pub struct RawSftp {
    /// `host:port` to listen on.
    pub listen: String,
    /// Host key (OpenSSH private key); an ed25519 key is generated there if missing.
    pub host_key: String,
    /// SSH channel window in bytes (throughput knob).
    pub window_size: Option<u32>,
}

/// `[ftp]`.
#[derive(Debug, Deserialize)]
pub struct RawFtp {
    /// `host:port` of the control connection.
    pub listen: String,
    /// Inclusive range of passive data ports, `[first, last]`.
    pub passive_ports: Option<[u16; 2]>,
    /// Address announced in PASV replies (the address clients can reach).
    pub advertised_address: Option<String>,
    /// Refuse logins and transfers that are not protected by TLS.
    #[serde(default)]
    pub require_tls: bool,
    /// Certificate and key for explicit FTPS (AUTH TLS).
    pub tls: Option<RawTls>,
}

/// `[ftp.tls]`.
#[derive(Debug, Deserialize)]
pub struct RawTls {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

/// `[[accounts]]`.
#[derive(Debug, Deserialize)]
pub struct RawAccount {
    /// Login name.
    pub name: String,
    /// argon2id PHC string (`wharf user hash-password`).
    pub password_hash: Option<String>,
    /// OpenSSH `authorized_keys` lines, inline.
    pub authorized_keys: Option<String>,
    /// OpenSSH `authorized_keys` file.
    pub authorized_keys_file: Option<String>,
    /// CIDR networks the account may log in from; empty means anywhere.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
    /// Free-form partner attributes, usable in rules.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Folders of the account's tree.
    #[serde(default)]
    pub mounts: Vec<RawMount>,
    /// A disabled account cannot log in.
    #[serde(default)]
    pub disabled: bool,
}

/// One entry of `mounts`.
#[derive(Debug, Deserialize)]
pub struct RawMount {
    /// Virtual path, e.g. `/invoices`.
    pub path: String,
    /// `inbound`, `outbound` or `exceptions`.
    #[serde(rename = "box")]
    pub box_kind: String,
    /// Channel of an inbound box.
    pub channel: Option<String>,
    /// Exceptions: `own` (the account's part of every channel) or `all` (ops).
    pub scope: Option<String>,
    /// Outbound: whose box (default: this account's).
    pub owner: Option<String>,
    /// Any of `list read write rename delete mkdir`.
    #[serde(default)]
    pub permissions: Vec<String>,
}
