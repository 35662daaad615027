//! The virtual filesystem: the only code that maps a client path to storage.
//!
//! An account sees a tree whose root lists its mounts. Behind each mount is a box:
//! - **inbound**: flat; a written file becomes a transfer of the mount's channel, committed to the
//!   spool on close. Listing shows the account's own transfers received but not yet finished (from
//!   the journal, never from the disk).
//! - **outbound**: a plain folder of the spool (`outbound/<owner>/`).
//! - **exceptions**: plain folders; scope `own` shows `/exceptions/<channel>/` (the account's part),
//!   scope `all` shows `/exceptions/<channel>/<account>/`.
//!
//! Both protocol front-ends call [`Session`] only; permissions, the jail ([`path`], [`dirbox`]) and
//! upload completion are enforced here once. Every refusal is a [`Error`] with a message for people.

pub mod dirbox;
pub mod error;
pub mod path;

pub use error::{Error, Result};
pub use path::VPath;

use crate::audit::Event;
use crate::config::{AccountConfig, BoxKind, ExceptionScope, MountConfig, is_valid_name};
use crate::rules::live::LiveRules;
use crate::spool::{self, Origin, Spool};
use dirbox::Jailed;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// File or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A folder.
    Dir,
    /// A regular file.
    File,
}

/// One entry of a listing, or the answer to a stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name within its folder (`/` for the root).
    pub name: String,
    /// File or folder.
    pub kind: EntryKind,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Modification time, where known.
    pub modified: Option<SystemTime>,
}

impl Entry {
    fn dir(name: &str) -> Self {
        Entry { name: name.to_string(), kind: EntryKind::Dir, size: 0, modified: None }
    }

    /// Whether this is a folder.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// Where a virtual path leads.
enum Place<'a> {
    Root,
    InboundDir(&'a MountConfig, &'a str),
    InboundFile(&'a MountConfig, &'a str, String),
    OwnExceptionsRoot(&'a MountConfig),
    Folder(&'a MountConfig, Jailed),
}

/// What every session shares: the spool, and the rules for early refusal of names.
pub struct Vfs {
    spool: Arc<Spool>,
    rules: Option<Arc<LiveRules>>,
}

impl Vfs {
    /// The shared part of all sessions. With `rules`, a channel with `reject_unmatched_names`
    /// refuses an upload whose name matches none of its accept entries at open time.
    pub fn new(spool: Arc<Spool>, rules: Option<Arc<LiveRules>>) -> Arc<Self> {
        Arc::new(Self { spool, rules })
    }

    /// Refuses a name early if the channel asks for it; sidecars of channels that read them pass.
    fn check_name(&self, channel: &str, name: &str) -> Result<()> {
        let Some(rules) = self.rules.as_ref().map(|r| r.snapshot()) else { return Ok(()) };
        let Some(set) = rules.get(channel) else { return Ok(()) };
        if !set.reject_unmatched_names() {
            return Ok(());
        }
        if crate::rules::sidecar_owner(name).is_some() && set.sidecar().mode != crate::rules::SidecarMode::None {
            return Ok(());
        }
        set.name_matches(name).map_err(Error::NameRejected)
    }
}

/// One logged-in client's view of the gateway.
pub struct Session {
    vfs: Arc<Vfs>,
    spool: Arc<Spool>,
    account: Arc<AccountConfig>,
    origin: Origin,
}

fn parse_time(s: Option<&str>) -> Option<SystemTime> {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(SystemTime::from)
}

impl Session {
    /// A session of `account` connected over `protocol` from `remote_addr`.
    pub fn new(
        vfs: &Arc<Vfs>,
        account: Arc<AccountConfig>,
        protocol: &'static str,
        remote_addr: Option<String>,
    ) -> Self {
        let origin = Origin { account: account.name.clone(), protocol, remote_addr };
        Self { vfs: vfs.clone(), spool: vfs.spool.clone(), account, origin }
    }

    /// The account of this session.
    pub fn account(&self) -> &AccountConfig {
        &self.account
    }

    /// Who is connected, as recorded in the journal and the audit trail.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    fn event(&self, kind: &str, path: &VPath) -> Event {
        Event::new(kind)
            .account(&self.origin.account)
            .remote(self.origin.remote_addr.as_deref())
            .protocol(self.origin.protocol)
            .path(&path.to_string())
    }

    fn resolve<'a>(&'a self, path: &VPath) -> Result<Place<'a>> {
        let comps = path.components();
        let Some(first) = comps.first() else { return Ok(Place::Root) };
        let not_found = || Error::NotFound(format!("{path}: no such file or folder"));
        let mount = self.account.mounts.iter().find(|m| &m.name == first).ok_or_else(not_found)?;
        let rest = &comps[1..];
        let shown = path.to_string();
        Ok(match &mount.kind {
            BoxKind::Inbound { channel } => match rest {
                [] => Place::InboundDir(mount, channel),
                [name] => Place::InboundFile(mount, channel, name.clone()),
                _ => return Err(Error::NotFound(format!("{path}: /{} has no subfolders", mount.name))),
            },
            BoxKind::Outbound { owner } => {
                Place::Folder(mount, Jailed { base: self.spool.outbound_dir(owner), rel: rest.to_vec(), shown })
            }
            BoxKind::Exceptions { scope: ExceptionScope::All } => {
                Place::Folder(mount, Jailed { base: self.spool.exceptions_dir(), rel: rest.to_vec(), shown })
            }
            BoxKind::Exceptions { scope: ExceptionScope::Own } => match rest {
                [] => Place::OwnExceptionsRoot(mount),
                [channel, tail @ ..] => {
                    if !is_valid_name(channel) {
                        return Err(not_found());
                    }
                    let base = self.spool.exceptions_dir().join(channel).join(&self.account.name);
                    Place::Folder(mount, Jailed { base, rel: tail.to_vec(), shown })
                }
            },
        })
    }

    fn require(allowed: bool, what: &str, mount: &MountConfig) -> Result<()> {
        if allowed {
            Ok(())
        } else {
            Err(Error::Denied(format!("permission denied: /{} does not allow {what}", mount.name)))
        }
    }

    /// Metadata of a file or folder.
    ///
    /// # Errors
    /// Not found or not visible.
    pub async fn stat(&self, path: &VPath) -> Result<Entry> {
        match self.resolve(path)? {
            Place::Root => Ok(Entry::dir("/")),
            Place::InboundDir(m, _) | Place::OwnExceptionsRoot(m) => Ok(Entry::dir(&m.name)),
            Place::InboundFile(_, channel, name) => {
                let row = self.pending(channel, &name, path).await?;
                Ok(Entry {
                    name: row.name,
                    kind: EntryKind::File,
                    size: row.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified: parse_time(row.received_at.as_deref()),
                })
            }
            Place::Folder(m, j) if j.rel.is_empty() => {
                let _ = m;
                Ok(Entry::dir(path.file_name().unwrap_or("/")))
            }
            Place::Folder(_, j) => blocking(move || j.stat()).await,
        }
    }

    async fn pending(&self, channel: &str, name: &str, path: &VPath) -> Result<spool::journal::TransferRow> {
        self.spool
            .journal()
            .pending_by_name(&self.account.name, channel, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| Error::NotFound(format!("{path}: no such file (files leave this folder once processed)")))
    }

    /// The entries of a folder.
    ///
    /// # Errors
    /// Not a folder, not found, or listing not permitted.
    pub async fn list(&self, path: &VPath) -> Result<Vec<Entry>> {
        match self.resolve(path)? {
            Place::Root => Ok(self.account.mounts.iter().map(|m| Entry::dir(&m.name)).collect()),
            Place::InboundDir(m, channel) => {
                Self::require(m.permissions.list, "listing", m)?;
                let rows = self.spool.journal().pending_in_box(&self.account.name, channel).await.map_err(internal)?;
                Ok(rows
                    .into_iter()
                    .map(|r| Entry {
                        name: r.name,
                        kind: EntryKind::File,
                        size: r.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                        modified: parse_time(r.received_at.as_deref()),
                    })
                    .collect())
            }
            Place::InboundFile(..) => Err(Error::NotFound(format!("{path}: not a folder"))),
            Place::OwnExceptionsRoot(m) => {
                Self::require(m.permissions.list, "listing", m)?;
                let root = self.spool.exceptions_dir();
                let account = self.account.name.clone();
                blocking(move || {
                    let mut out = Vec::new();
                    if let Ok(dir) = std::fs::read_dir(&root) {
                        for e in dir.flatten() {
                            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                            let own = e.path().join(&account);
                            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                            let own_is_dir = std::fs::symlink_metadata(&own).is_ok_and(|m| m.is_dir());
                            if is_valid_name(&name) && is_dir && own_is_dir {
                                out.push(Entry::dir(&name));
                            }
                        }
                    }
                    out.sort_by(|a, b| a.name.cmp(&b.name));
                    Ok(out)
                })
                .await
            }
            Place::Folder(m, j) => {
                Self::require(m.permissions.list, "listing", m)?;
                blocking(move || j.list()).await
            }
        }
    }

    /// Opens a file for download.
    ///
    /// # Errors
    /// Not found, a folder, or reading not permitted.
    pub async fn open_read(&self, path: &VPath) -> Result<Download> {
        let mut package = None;
        let (file, size, sha256, transfer) = match self.resolve(path)? {
            Place::InboundFile(m, channel, name) => {
                Self::require(m.permissions.read, "downloads", m)?;
                let row = self.pending(channel, &name, path).await?;
                let body = self.spool.body(&row.body_path);
                let shown = path.to_string();
                let file = blocking(move || {
                    std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags_nofollow()
                        .open(&body)
                        .map_err(|e| Error::io(&shown, &e))
                })
                .await?;
                let size = row.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                (file, size, row.sha256, Some(row.id))
            }
            Place::Folder(m, j) if !j.rel.is_empty() => {
                Self::require(m.permissions.read, "downloads", m)?;
                if let BoxKind::Outbound { owner } = &m.kind {
                    package = Some((owner.clone(), j.rel.join("/")));
                }
                let (f, size) = blocking(move || j.open_read()).await?;
                (f, size, None, None)
            }
            _ => return Err(Error::Unsupported(format!("{path}: is a folder"))),
        };
        Ok(Download {
            file: Arc::new(file),
            size,
            sha256,
            transfer,
            furthest: AtomicU64::new(0),
            read: AtomicU64::new(0),
            spool: self.spool.clone(),
            event: self.event("download_completed", path),
            package,
        })
    }

    /// Opens a file for upload. In an inbound folder this starts a new transfer (two uploads of
    /// one name are two transfers); in a plain folder it replaces the file atomically on commit
    /// (or refuses to, with `exclusive`).
    ///
    /// # Errors
    /// Not permitted, a bad name, or the spool failed.
    pub async fn create(&self, path: &VPath, exclusive: bool) -> Result<Upload> {
        let name = path.file_name().unwrap_or("/").to_string();
        if name.starts_with(dirbox::RESERVED_PREFIX) {
            return Err(Error::NameRejected(format!(
                "{path}: names starting with `{}` are reserved",
                dirbox::RESERVED_PREFIX
            )));
        }
        if path.components().len() == 1 && !self.account.mounts.iter().any(|m| m.name == name) {
            return Err(Error::Denied(format!(
                "{path}: the top folder holds only your folders; upload into one of them"
            )));
        }
        let mut channel_of = None;
        let inner = match self.resolve(path)? {
            Place::InboundFile(m, channel, name) => {
                Self::require(m.permissions.write, "uploads", m)?;
                if let Err(e) = self.vfs.check_name(channel, &name) {
                    self.spool.audit().record(self.event("upload_refused", path).reason(&e.to_string()));
                    return Err(e);
                }
                channel_of = Some(channel);
                self.spool.begin_transfer(channel, &m.name, &name, &self.origin).await.map_err(spool_error)?
            }
            Place::Folder(m, j) if !j.rel.is_empty() => {
                Self::require(m.permissions.write, "uploads", m)?;
                let spool = self.spool.clone();
                blocking(move || {
                    j.check(false)?;
                    if j.exists() {
                        if exclusive {
                            return Err(Error::Exists(format!("{}: already exists", j.shown)));
                        }
                        if !m_allows_replace(&j) {
                            return Err(Error::Unsupported(format!("{}: is a folder", j.shown)));
                        }
                    }
                    spool.begin_file(j.real(), exclusive).map_err(spool_error)
                })
                .await?
            }
            Place::Root => {
                return Err(Error::Denied(format!(
                    "{path}: the top folder holds only your folders; upload into one of them"
                )));
            }
            _ => return Err(Error::Unsupported(format!("{path}: is a folder"))),
        };
        let span = tracing::info_span!(
            "upload",
            transfer = %inner.id(),
            account = %self.origin.account,
            protocol = self.origin.protocol,
            path = %path,
            channel = channel_of.unwrap_or("-"),
        );
        tracing::debug!(parent: &span, "upload started");
        Ok(Upload { inner, event: self.event("upload_completed", path), spool: self.spool.clone(), span })
    }

    /// Removes a file.
    ///
    /// # Errors
    /// Not found or not permitted.
    pub async fn remove(&self, path: &VPath) -> Result<()> {
        match self.resolve(path)? {
            Place::Folder(m, j) if !j.rel.is_empty() => {
                Self::require(m.permissions.delete, "deleting", m)?;
                blocking(move || j.remove_file()).await?;
                self.spool.audit().record(self.event("delete", path));
                Ok(())
            }
            Place::InboundFile(m, ..) => Self::require(false, "deleting (received files are kept until processed)", m),
            _ => Err(Error::Denied(format!("{path}: folders cannot be removed this way"))),
        }
    }

    /// Creates a folder.
    ///
    /// # Errors
    /// Not permitted, exists, or a bad place.
    pub async fn mkdir(&self, path: &VPath) -> Result<()> {
        match self.resolve(path)? {
            Place::Folder(m, j) if !j.rel.is_empty() => {
                Self::require(m.permissions.mkdir, "creating folders", m)?;
                blocking(move || j.mkdir()).await?;
                self.spool.audit().record(self.event("mkdir", path));
                Ok(())
            }
            Place::InboundDir(m, _) | Place::InboundFile(m, ..) => Self::require(false, "subfolders", m),
            _ => Err(Error::Denied(format!("{path}: folders cannot be created here"))),
        }
    }

    /// Removes an empty folder.
    ///
    /// # Errors
    /// Not permitted, not empty, or a bad place.
    pub async fn rmdir(&self, path: &VPath) -> Result<()> {
        match self.resolve(path)? {
            Place::Folder(m, j) if !j.rel.is_empty() => {
                Self::require(m.permissions.mkdir, "removing folders", m)?;
                blocking(move || j.rmdir()).await?;
                self.spool.audit().record(self.event("rmdir", path));
                Ok(())
            }
            _ => Err(Error::Denied(format!("{path}: this folder cannot be removed"))),
        }
    }

    /// Renames a file or folder within one mount. In an inbound folder, a received file that is not
    /// yet processed can be renamed (clients that upload under a temporary name and rename after).
    ///
    /// # Errors
    /// Not permitted, across mounts, or the target exists.
    pub async fn rename(&self, from: &VPath, to: &VPath) -> Result<()> {
        let (a, b) = (self.resolve(from)?, self.resolve(to)?);
        match (a, b) {
            (Place::InboundFile(m, channel, old), Place::InboundFile(m2, _, new)) if m.name == m2.name => {
                Self::require(m.permissions.rename, "renaming", m)?;
                if new.starts_with(dirbox::RESERVED_PREFIX) {
                    return Err(Error::NameRejected(format!(
                        "{to}: names starting with `{}` are reserved",
                        dirbox::RESERVED_PREFIX
                    )));
                }
                let row = self.pending(channel, &old, from).await?;
                let journal = self.spool.journal();
                if journal.pending_by_name(&self.account.name, channel, &new).await.map_err(internal)?.is_some() {
                    return Err(Error::Exists(format!("{to}: already exists")));
                }
                if !journal.rename_received(&row.id, &new).await.map_err(internal)? {
                    return Err(Error::Denied(format!(
                        "{from}: is already being processed and can no longer be renamed"
                    )));
                }
                self.spool.audit().record(self.event("rename", from).to_path(&to.to_string()).transfer(&row.id));
                Ok(())
            }
            (Place::Folder(m, ja), Place::Folder(m2, jb))
                if m.name == m2.name && !ja.rel.is_empty() && !jb.rel.is_empty() =>
            {
                Self::require(m.permissions.rename, "renaming", m)?;
                blocking(move || ja.rename_to(&jb)).await?;
                self.spool.audit().record(self.event("rename", from).to_path(&to.to_string()));
                Ok(())
            }
            _ => Err(Error::Denied(format!(
                "cannot rename {from} to {to}: files can only be renamed within one folder tree"
            ))),
        }
    }

    /// Sets a file's times (the only attribute clients may change). Times sent for a received
    /// inbound file are accepted and ignored: the journal keeps the time of receipt.
    ///
    /// # Errors
    /// Not found or not permitted.
    pub async fn set_times(&self, path: &VPath, atime: Option<SystemTime>, mtime: Option<SystemTime>) -> Result<()> {
        match self.resolve(path)? {
            Place::InboundFile(m, channel, name) => {
                Self::require(m.permissions.write, "changing files", m)?;
                self.pending(channel, &name, path).await.map(|_| ())
            }
            Place::Folder(m, j) if !j.rel.is_empty() => {
                Self::require(m.permissions.write, "changing files", m)?;
                blocking(move || j.set_times(atime, mtime)).await
            }
            _ => Ok(()),
        }
    }
}

fn m_allows_replace(j: &Jailed) -> bool {
    std::fs::symlink_metadata(j.real()).is_ok_and(|m| m.is_file())
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("internal error: {e}")))?
}

fn internal(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "journal error");
    Error::Transient("the gateway cannot reach its journal; try again shortly".into())
}

fn spool_error(e: spool::Error) -> Error {
    match &e {
        spool::Error::Io { what, source } => Error::io(what, source),
        spool::Error::Journal(_) => internal(&e),
        spool::Error::Aborted(_) => Error::Transient(e.to_string()),
    }
}

/// A file open for download. Reads are positional, so pipelined requests can be served in any order.
pub struct Download {
    file: Arc<File>,
    size: u64,
    sha256: Option<String>,
    transfer: Option<String>,
    furthest: AtomicU64,
    /// Bytes handed out in all (with `furthest`, what makes a download complete).
    read: AtomicU64,
    spool: Arc<Spool>,
    event: Event,
    /// Owner and path of a file in an outbound box (a package, perhaps).
    package: Option<(String, String)>,
}

impl Download {
    /// Size of the file when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads up to `len` bytes at `offset`; an empty result means end of file.
    ///
    /// # Errors
    /// An I/O error.
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let file = self.file.clone();
        let data = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let mut filled = 0;
            while filled < len {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(filled);
            Ok(buf)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::io("read", &e))?;
        self.furthest.fetch_max(offset + data.len() as u64, Ordering::Relaxed);
        self.read.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    /// A reader from `offset` to the end (for stream protocols such as FTP).
    ///
    /// # Errors
    /// An I/O error duplicating the file handle.
    pub fn stream_from(&self, offset: u64) -> Result<tokio::io::Take<tokio::fs::File>> {
        use std::io::{Seek, SeekFrom};
        let mut f = self.file.try_clone().map_err(|e| Error::io("read", &e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read", &e))?;
        use tokio::io::AsyncReadExt;
        Ok(tokio::fs::File::from_std(f).take(self.size.saturating_sub(offset)))
    }

    /// Records how far a stream got (FTP reports the bytes it sent).
    pub fn mark_sent(&self, upto: u64) {
        self.furthest.fetch_max(upto, Ordering::Relaxed);
        self.read.fetch_max(upto, Ordering::Relaxed);
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let sent = self.furthest.load(Ordering::Relaxed);
        let mut ev = self.event.clone().size(sent);
        // complete: the end was reached and at least the whole size was handed out
        let complete = sent >= self.size && self.read.load(Ordering::Relaxed) >= self.size;
        if !complete {
            ev.event = "download_incomplete".into();
            ev.reason = Some(format!("{sent} of {} bytes read", self.size));
        } else if let Some(s) = &self.sha256 {
            ev = ev.sha256(s);
        }
        if let Some(t) = &self.transfer {
            ev = ev.transfer(t);
        }
        let account = ev.account.clone().unwrap_or_default();
        self.spool.audit().record(ev);
        if let (true, Some((owner, rel)), Ok(rt)) =
            (complete, self.package.take(), tokio::runtime::Handle::try_current())
        {
            rt.spawn(crate::outbound::collect::downloaded(self.spool.clone(), owner, rel, account));
        }
    }
}

/// A file being uploaded through a session.
pub struct Upload {
    inner: spool::Upload,
    event: Event,
    spool: Arc<Spool>,
    /// Carries transfer id, account, protocol, path and channel into every log line of the upload.
    span: tracing::Span,
}

impl Upload {
    /// Writes `data` at `offset`.
    ///
    /// # Errors
    /// An earlier write failed (e.g. the disk is full).
    pub async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()> {
        self.inner.write_at(offset, data).await.map_err(|e| Error::io("write", &e))
    }

    /// Completes the upload durably; only after `Ok` may the client be told it succeeded.
    ///
    /// # Errors
    /// The body could not be made durable; nothing was committed.
    pub async fn commit(self) -> Result<spool::Committed> {
        use tracing::Instrument;
        let span = self.span.clone();
        let done = match self.inner.commit().instrument(span.clone()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, "upload not committed");
                return Err(spool_error(e));
            }
        };
        let mut ev = self.event.size(done.written.size).sha256(&done.written.sha256);
        if let Some(t) = &done.transfer_id {
            ev = ev.transfer(t);
        }
        tracing::info!(parent: &span, size = done.written.size, sha256 = %done.written.sha256, "upload committed");
        self.spool.audit().record(ev);
        Ok(done)
    }
}
