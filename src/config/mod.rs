//! Typed, validated configuration.
//!
//! [`Config::load`] reads a TOML file, rejects unknown keys, resolves relative paths against the
//! file's folder and checks every value. All problems are reported together, each as
//! `file:line:col: key: message` (the form `wharf check` prints), so an admin fixes a config in one pass.
//! Loading touches the filesystem only to read referenced key files; it never creates anything.

pub mod canto;
pub mod confluence;
pub mod contentstack;
pub mod dropbox;
pub mod jobs;
mod locate;
pub mod opentext;
pub mod polls;

mod raw;
pub mod secret;
mod targets;
pub mod webhooks;
pub mod workflow;

pub use locate::{Checker, KeyPath, Seg, from_ignored, line_col, locate, parse_document, syntax_error};

use crate::vfs::path as vpath;
use ipnet::IpNet;
use raw::{RawAccount, RawConfig, RawMount};
use russh::keys::ssh_key::{AuthorizedKeys, PublicKey};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem in a config file, located as precisely as the document allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// The key path, e.g. `accounts[1].mounts[0].box`.
    pub key: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file.display(), self.line, self.col, self.key, self.message)
    }
}

/// Every problem found in a config file.
#[derive(Debug, thiserror::Error)]
pub struct Error(pub Vec<Problem>);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The validated configuration of one gateway.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from.
    pub source: PathBuf,
    /// Spool locations.
    pub spool: SpoolConfig,
    /// Session limits shared by every protocol.
    pub sessions: SessionLimits,
    /// SFTP listener, if enabled.
    pub sftp: Option<SftpConfig>,
    /// FTP/FTPS listener, if enabled.
    pub ftp: Option<FtpConfig>,
    /// Logins.
    pub accounts: Vec<AccountConfig>,
    /// The rules pipeline, if enabled.
    pub pipeline: Option<PipelineConfig>,
    /// Delivery targets.
    pub targets: Vec<TargetConfig>,
    /// Local folders whose files become transfers.
    pub hot_folders: Vec<HotFolderConfig>,
    /// Scheduled outbound packages.
    pub jobs: Vec<jobs::JobConfig>,
    /// Connector-fed channels.
    pub polls: Vec<polls::PollConfig>,
    /// What each `canto` poll searches and writes back, by poll name.
    pub canto_polls: std::collections::BTreeMap<String, polls::CantoPoll>,
    /// The admin HTTP listener, if enabled.
    pub admin: Option<webhooks::AdminConfig>,
    /// Webhook intakes (served on the admin listener).
    pub webhooks: Vec<webhooks::WebhookConfig>,
    /// OpenText Workflow Service tenants rules may start workflows in (`[[workflows]]`).
    pub workflows: Vec<workflow::WorkflowConfig>,
}

/// A hot folder: an intake other than SFTP/FTP.
#[derive(Debug, Clone)]
pub struct HotFolderConfig {
    /// The folder watched.
    pub path: PathBuf,
    /// The channel.
    pub channel: String,
    /// The account the files are attributed to.
    pub account: String,
}

/// `[pipeline] workers` when unset. A worker is an async task that spends most of a small file's
/// time waiting for fsyncs (the delivered file, its metadata, the folder, the journal), not on
/// a core: with 4, deliveries fell behind 16 concurrent SFTP uploaders on 2 cores (ingest ratio
/// 0.53 against OpenSSH's upload), with 16 they kept up (0.88; benches/small-files, 2026-12-03).
/// Remote targets keep their own concurrency limits.
pub const DEFAULT_WORKERS: usize = 16;

/// The rules pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Folder of the rule files.
    pub rules_dir: PathBuf,
    /// Concurrent workers.
    pub workers: usize,
}

/// One delivery target.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Name the rules use.
    pub name: String,
    /// Connector and its settings.
    pub kind: TargetKind,
}

/// The connectors (this enum is the only registry).
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// A plain folder.
    Fs {
        /// Where documents are written.
        root: PathBuf,
    },
    /// OpenText Extended ECM Content Server (and Business Workspaces).
    OpenText(Box<opentext::OpenTextConfig>),
    /// Dropbox (API v2).
    Dropbox(Box<dropbox::DropboxConfig>),
    /// Confluence Cloud (REST v2 and v1).
    Confluence(Box<confluence::ConfluenceConfig>),
    /// Canto DAM (API v1, OAuth2 client credentials).
    Canto(Box<canto::CantoConfig>),
    /// Contentstack (Content Management API v3: assets, entries, publish).
    Contentstack(Box<contentstack::ContentstackConfig>),
}

/// Where the durable state lives.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Root of the spool (boxes, bodies, temporary files).
    pub root: PathBuf,
    /// SQLite journal.
    pub journal: PathBuf,
    /// Append-only audit trail.
    pub audit_log: PathBuf,
}

/// Limits that protect the gateway from one noisy client; applied to SFTP and FTP alike.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Sessions one account may hold at once.
    pub max_per_account: usize,
    /// Connections one remote address may hold at once.
    pub max_per_address: usize,
    /// Delay before a failed authentication is answered (slows password guessing).
    pub auth_failure_delay: Duration,
    /// Idle time after which a session is closed.
    pub idle_timeout: Duration,
}

/// The SFTP listener.
#[derive(Debug, Clone)]
pub struct SftpConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Host key path (generated if missing).
    pub host_key: PathBuf,
    /// SSH channel window size.
    pub window_size: u32,
}

/// The FTP/FTPS listener.
#[derive(Debug, Clone)]
pub struct FtpConfig {
    /// Control connection address.
    pub listen: SocketAddr,
    /// Passive data ports.
    pub passive_ports: RangeInclusive<u16>,
    /// Address announced in PASV replies; default: the address the client connected to.
    pub advertised_address: Option<IpAddr>,
    /// Refuse anything not protected by TLS.
    pub require_tls: bool,
    /// Certificate and key for explicit FTPS.
    pub tls: Option<TlsConfig>,
}

/// PEM files for FTPS.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// One login.
#[derive(Clone)]
pub struct AccountConfig {
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// Public keys accepted for SSH.
    pub authorized_keys: Vec<PublicKey>,
    /// Networks the account may come from; empty = any.
    pub allowed_networks: Vec<IpNet>,
    /// Partner attributes for rules.
    pub attributes: BTreeMap<String, String>,
    /// The account's folders.
    pub mounts: Vec<MountConfig>,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
}

impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password hash: logs travel further than configs.
        f.debug_struct("AccountConfig")
            .field("name", &self.name)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .field("authorized_keys", &self.authorized_keys.len())
            .field("allowed_networks", &self.allowed_networks)
            .field("mounts", &self.mounts)
            .finish()
    }
}

/// A folder of an account's tree bound to a box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    /// The folder's name at the root of the tree (`invoices` for `/invoices`).
    pub name: String,
    /// What is behind it.
    pub kind: BoxKind,
    /// What the account may do in it.
    pub permissions: Permissions,
}

/// The role of the spool folder behind a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoxKind {
    /// Files written become transfers of this channel.
    Inbound {
        /// Channel name.
        channel: String,
    },
    /// Packages published for collection by `owner`.
    Outbound {
        /// The account whose box this is.
        owner: String,
    },
    /// Failed transfers with their reasons.
    Exceptions {
        /// Which part of the exception boxes is visible.
        scope: ExceptionScope,
    },
}

/// Which exceptions an exceptions mount shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionScope {
    /// `/exceptions/<channel>/`: only the account's own part of each channel.
    Own,
    /// `/exceptions/<channel>/<account>/`: everything (operations staff).
    All,
}

/// Permissions of a mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    /// List the folder.
    pub list: bool,
    /// Download files.
    pub read: bool,
    /// Upload files.
    pub write: bool,
    /// Rename files.
    pub rename: bool,
    /// Delete files.
    pub delete: bool,
    /// Create and remove folders.
    pub mkdir: bool,
}

impl Permissions {
    /// The permission names a config may use.
    pub const NAMES: [&'static str; 6] = ["list", "read", "write", "rename", "delete", "mkdir"];

    fn set(&mut self, name: &str) -> bool {
        match name {
            "list" => self.list = true,
            "read" => self.read = true,
            "write" => self.write = true,
            "rename" => self.rename = true,
            "delete" => self.delete = true,
            "mkdir" => self.mkdir = true,
            _ => return false,
        }
        true
    }
}

/// Account and channel names: what is safe as a folder name and readable in logs.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Config {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// Every problem found, each located by file, line, column and key.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error(vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                key: "(file)".into(),
                message: format!("cannot read config: {e}"),
            }])
        })?;
        Self::parse(path, &text)
    }

    /// Validates config text as if it had been read from `path`.
    ///
    /// # Errors
    /// Every problem found.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Error> {
        let (raw, mut ck): (RawConfig, _) = parse_document(path, text)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = build(&raw, &base, path, &mut ck);
        if ck.problems.is_empty() { Ok(config) } else { Err(Error(ck.problems)) }
    }

    /// The account with this name.
    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The workflow service with this name.
    pub fn workflow(&self, name: &str) -> Option<&workflow::WorkflowConfig> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The outbound job with this name.
    pub fn job(&self, name: &str) -> Option<&jobs::JobConfig> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn build(raw: &RawConfig, base: &Path, file: &Path, ck: &mut Checker<'_>) -> Config {
    let root = KeyPath::root();
    let spool_key = root.key("spool");
    if raw.spool.root.trim().is_empty() {
        ck.report(&spool_key.key("root"), "must name a folder");
    }
    let spool_root = resolve(base, &raw.spool.root);
    let spool = SpoolConfig {
        journal: raw.spool.journal.as_deref().map_or_else(|| spool_root.join("journal.db"), |j| resolve(base, j)),
        audit_log: raw.spool.audit_log.as_deref().map_or_else(|| spool_root.join("audit.jsonl"), |a| resolve(base, a)),
        root: spool_root,
    };

    let sessions = build_sessions(raw, ck);
    let sftp = raw.sftp.as_ref().map(|s| {
        let key = root.key("sftp");
        SftpConfig {
            listen: parse_addr(&s.listen, &key.key("listen"), ck),
            host_key: resolve(base, &s.host_key),
            window_size: s.window_size.unwrap_or(16 * 1024 * 1024),
        }
    });
    let ftp = raw.ftp.as_ref().map(|f| build_ftp(f, base, ck));
    if sftp.is_none() && ftp.is_none() {
        ck.report(&root, "neither [sftp] nor [ftp] is configured: the gateway would accept no connections");
    }

    let mut names = HashSet::new();
    for (i, a) in raw.accounts.iter().enumerate() {
        if !names.insert(a.name.as_str()) {
            ck.report(&root.key("accounts").index(i).key("name"), format!("account `{}` is defined twice", a.name));
        }
    }
    let accounts = raw
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| build_account(a, &root.key("accounts").index(i), base, &names, ck))
        .collect();
    let pipeline = raw.pipeline.as_ref().map(|p| {
        let workers = p.workers.unwrap_or(DEFAULT_WORKERS);
        if workers == 0 || workers > 256 {
            ck.report(&root.key("pipeline").key("workers"), "must be between 1 and 256");
        }
        PipelineConfig { rules_dir: resolve(base, &p.rules), workers }
    });
    let targets = targets::build(&raw.targets, &root, base, ck);
    let hot_folders = raw
        .hot_folders
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let key = root.key("hot_folders").index(i);
            if !is_valid_name(&h.channel) {
                ck.report(&key.key("channel"), format!("`{}` is not a valid channel name", h.channel));
            }
            if !names.contains(h.account.as_str()) {
                ck.report(&key.key("account"), format!("no account named `{}`", h.account));
            }
            if raw.pipeline.is_none() {
                ck.report(&key.key("path"), "a hot folder needs [pipeline]: nothing would process its files");
            }
            HotFolderConfig { path: resolve(base, &h.path), channel: h.channel.clone(), account: h.account.clone() }
        })
        .collect();
    let mut config = Config {
        source: file.to_path_buf(),
        spool,
        sessions,
        sftp,
        ftp,
        accounts,
        pipeline,
        targets,
        hot_folders,
        jobs: Vec::new(),
        polls: Vec::new(),
        canto_polls: Default::default(),
        admin: raw.admin.as_ref().map(|a| webhooks::build_admin(a, ck)),
        webhooks: Vec::new(),
        workflows: workflow::build(&raw.workflows, &root, base, ck),
    };
    config.jobs = jobs::build(&raw.jobs, &config, base, ck);
    config.polls = polls::build(&raw.polls, &config, ck);
    config.canto_polls = polls::build_canto(&raw.polls, ck);
    config.webhooks = webhooks::build(&raw.webhooks, &config, base, ck);
    config
}

fn build_sessions(raw: &RawConfig, ck: &mut Checker<'_>) -> SessionLimits {
    let s = &raw.sessions;
    let key = KeyPath::root().key("sessions");
    let limits = SessionLimits {
        max_per_account: s.max_per_account.unwrap_or(16),
        max_per_address: s.max_per_address.unwrap_or(64),
        auth_failure_delay: Duration::from_millis(s.auth_failure_delay_ms.unwrap_or(1000)),
        idle_timeout: Duration::from_secs(s.idle_timeout_secs.unwrap_or(600)),
    };
    if limits.max_per_account == 0 {
        ck.report(&key.key("max_per_account"), "must be at least 1");
    }
    if limits.max_per_address == 0 {
        ck.report(&key.key("max_per_address"), "must be at least 1");
    }
    if limits.idle_timeout.is_zero() {
        ck.report(&key.key("idle_timeout_secs"), "must be at least 1 second");
    }
    limits
}

fn parse_addr(s: &str, key: &KeyPath, ck: &mut Checker<'_>) -> SocketAddr {
    s.parse().unwrap_or_else(|e| {
        ck.report(key, format!("`{s}` is not an address with a port, e.g. `127.0.0.1:2222` ({e})"));
        SocketAddr::from(([127, 0, 0, 1], 0))
    })
}

fn build_ftp(f: &raw::RawFtp, base: &Path, ck: &mut Checker<'_>) -> FtpConfig {
    let key = KeyPath::root().key("ftp");
    let listen = parse_addr(&f.listen, &key.key("listen"), ck);
    let [lo, hi] = f.passive_ports.unwrap_or([49152, 65535]);
    if lo == 0 || lo > hi {
        ck.report(&key.key("passive_ports"), format!("`[{lo}, {hi}]` is not a range `[first, last]` of ports ≥ 1"));
    }
    let advertised_address = f.advertised_address.as_ref().and_then(|a| match a.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            ck.report(&key.key("advertised_address"), format!("`{a}` is not an IP address"));
            None
        }
    });
    let tls = f.tls.as_ref().map(|t| {
        let tk = key.key("tls");
        let cert = resolve(base, &t.cert);
        let k = resolve(base, &t.key);
        for (path, name) in [(&cert, "cert"), (&k, "key")] {
            if let Err(e) = std::fs::metadata(path) {
                ck.report(&tk.key(name), format!("cannot read `{}`: {e}", path.display()));
            }
        }
        TlsConfig { cert, key: k }
    });
    if f.require_tls && tls.is_none() {
        ck.report(&key.key("require_tls"), "require_tls = true needs [ftp.tls] with `cert` and `key`");
    }
    FtpConfig { listen, passive_ports: lo..=hi, advertised_address, require_tls: f.require_tls, tls }
}

fn build_account(
    a: &RawAccount,
    key: &KeyPath,
    base: &Path,
    names: &HashSet<&str>,
    ck: &mut Checker<'_>,
) -> AccountConfig {
    if !is_valid_name(&a.name) {
        ck.report(
            &key.key("name"),
            format!("`{}` is not a valid account name (1-64 of A-Z a-z 0-9 . _ -, not starting with a dot)", a.name),
        );
    }
    if let Some(h) = &a.password_hash
        && crate::accounts::parse_password_hash(h).is_err()
    {
        ck.report(&key.key("password_hash"), "not an argon2id PHC string; make one with `wharf user hash-password`");
    }
    let mut authorized_keys = Vec::new();
    if let Some(text) = &a.authorized_keys {
        parse_keys(text, &key.key("authorized_keys"), &mut authorized_keys, ck);
    }
    if let Some(f) = &a.authorized_keys_file {
        let p = resolve(base, f);
        match std::fs::read_to_string(&p) {
            Ok(text) => parse_keys(&text, &key.key("authorized_keys_file"), &mut authorized_keys, ck),
            Err(e) => ck.report(&key.key("authorized_keys_file"), format!("cannot read `{}`: {e}", p.display())),
        }
    }
    if a.password_hash.is_none() && authorized_keys.is_empty() && !a.disabled {
        ck.report(
            &key.key("name"),
            format!("account `{}` has neither `password_hash` nor authorized keys: nobody could log in", a.name),
        );
    }
    let allowed_networks = a
        .allowed_networks
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            n.parse::<IpNet>()
                .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ck.report(
                        &key.key("allowed_networks").index(i),
                        format!("`{n}` is not a network such as `10.0.0.0/8` or an address"),
                    );
                })
                .ok()
        })
        .collect();
    let mut seen = HashSet::new();
    let mounts = a
        .mounts
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let mk = key.key("mounts").index(i);
            let mount = build_mount(a, m, &mk, names, ck)?;
            if !seen.insert(mount.name.clone()) {
                ck.report(&mk.key("path"), format!("mount `/{}` is defined twice", mount.name));
            }
            Some(mount)
        })
        .collect();
    AccountConfig {
        name: a.name.clone(),
        password_hash: a.password_hash.clone(),
        authorized_keys,
        allowed_networks,
        attributes: a.attributes.clone(),
        mounts,
        disabled: a.disabled,
    }
}

fn parse_keys(text: &str, key: &KeyPath, out: &mut Vec<PublicKey>, ck: &mut Checker<'_>) {
    for (n, entry) in AuthorizedKeys::new(text).enumerate() {
        match entry {
            Ok(e) => out.push(e.public_key().clone()),
            Err(e) => ck.report(key, format!("key entry {} is not an OpenSSH public key: {e}", n + 1)),
        }
    }
}

fn build_mount(
    a: &RawAccount,
    m: &RawMount,
    key: &KeyPath,
    names: &HashSet<&str>,
    ck: &mut Checker<'_>,
) -> Option<MountConfig> {
    let name = match vpath::normalize(&m.path) {
        Ok(p) if p.components().len() == 1 => p.components()[0].clone(),
        Ok(_) => {
            ck.report(&key.key("path"), format!("`{}` must be one folder below the root, e.g. `/invoices`", m.path));
            return None;
        }
        Err(e) => {
            ck.report(&key.key("path"), format!("`{}`: {e}", m.path));
            return None;
        }
    };
    let mut permissions = Permissions::default();
    for (i, p) in m.permissions.iter().enumerate() {
        if !permissions.set(p) {
            ck.report(
                &key.key("permissions").index(i),
                format!("unknown permission `{p}`; use any of {}", Permissions::NAMES.join(" ")),
            );
        }
    }
    let only = |ck: &mut Checker<'_>, field: &str, present: bool, kind: &str| {
        if present {
            ck.report(&key.key(field), format!("`{field}` does not apply to a `{kind}` box"));
        }
    };
    let kind = match m.box_kind.as_str() {
        "inbound" => {
            only(ck, "scope", m.scope.is_some(), "inbound");
            only(ck, "owner", m.owner.is_some(), "inbound");
            if permissions.delete || permissions.mkdir {
                ck.report(
                    &key.key("permissions"),
                    "an inbound box is flat and keeps what it received: `delete` and `mkdir` do not apply",
                );
            }
            match &m.channel {
                Some(c) if is_valid_name(c) => BoxKind::Inbound { channel: c.clone() },
                Some(c) => {
                    ck.report(&key.key("channel"), format!("`{c}` is not a valid channel name"));
                    return None;
                }
                None => {
                    ck.report(&key.key("box"), "an inbound box needs `channel = \"...\"`");
                    return None;
                }
            }
        }
        "outbound" => {
            only(ck, "scope", m.scope.is_some(), "outbound");
            only(ck, "channel", m.channel.is_some(), "outbound");
            let owner = m.owner.clone().unwrap_or_else(|| a.name.clone());
            if !names.contains(owner.as_str()) {
                ck.report(&key.key("owner"), format!("no account named `{owner}`"));
            }
            BoxKind::Outbound { owner }
        }
        "exceptions" => {
            only(ck, "channel", m.channel.is_some(), "exceptions");
            only(ck, "owner", m.owner.is_some(), "exceptions");
            let scope = match m.scope.as_deref() {
                None | Some("own") => ExceptionScope::Own,
                Some("all") => ExceptionScope::All,
                Some(other) => {
                    ck.report(&key.key("scope"), format!("unknown scope `{other}`; use `own` or `all`"));
                    ExceptionScope::Own
                }
            };
            BoxKind::Exceptions { scope }
        }
        other => {
            ck.report(&key.key("box"), format!("unknown box `{other}`; use `inbound`, `outbound` or `exceptions`"));
            return None;
        }
    };
    Some(MountConfig { name, kind, permissions })
}

#[cfg(test)]
mod tests;
