//! The spool: durable storage of bodies and the journal that says what each one is.
//!
//! # Layout (under the configured root)
//! ```text
//! tmp/<ulid>.part                      bodies being received (never visible to any client)
//! inbound/<channel>/<account>/<ulid>   committed bodies of transfers (listed from the journal)
//! outbound/<account>/...               outbound boxes (plain folders)
//! exceptions/<channel>/<account>/...   exception boxes (plain folders)
//! journal.db                           the journal (SQLite, WAL)
//! ```
//!
//! # Life of an upload and its crash points
//! 1. First byte: a `receiving` row is inserted and `tmp/<ulid>.part` created.
//! 2. Bytes stream to the temporary file through [`writer::BodyWriter`] (SHA-256 on the fly).
//! 3. Completion (SFTP CLOSE, end of FTP STOR): fsync file → rename into `inbound/` → fsync folder →
//!    `receiving → received` committed and the journal's log fsynced. Only then is the client told
//!    "ok". Concurrent uploads share the folder and log fsyncs ([`barrier`]), never skip them.
//!
//! A crash before step 3's commit leaves a `receiving` row: [`Spool::recover`] removes its body
//! (wherever it got to) and marks it `aborted`, which is right because the client was never
//! acknowledged. A crash after the commit leaves a `received` row whose body is already in place.
//! An upload abandoned while the gateway runs (client gone) is aborted the same way by [`Upload`]'s
//! `Drop`. Two uploads of one name are two transfers; nothing is ever overwritten in `inbound/`.

pub mod barrier;
pub mod journal;
pub mod writer;

use crate::audit::{Audit, Event};
use crate::config::SpoolConfig;
use barrier::FolderSyncs;
use journal::{Journal, NewTransfer, State};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use writer::{BodyWriter, Written};

/// Spool errors: the disk or the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{what}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] journal::Error),
    /// The transfer was aborted (by recovery) before it could be committed.
    #[error("transfer {0} was aborted before it could be committed")]
    Aborted(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The spool of one gateway.
pub struct Spool {
    root: PathBuf,
    journal: Journal,
    audit: Arc<Audit>,
    /// Wakes an idle pipeline worker when a transfer is committed.
    received: tokio::sync::Notify,
    /// Concurrent commits into one folder share its fsync.
    folders: FolderSyncs,
}

/// Who is uploading, for the journal and the audit trail.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Account name.
    pub account: String,
    /// `sftp`, `ftp` or `ftps`.
    pub protocol: &'static str,
    /// Client address.
    pub remote_addr: Option<String>,
}

/// What a committed upload became.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Transfer id, for uploads into inbound boxes.
    pub transfer_id: Option<String>,
    /// Size and digest.
    pub written: Written,
}

/// What recovery found and did at start-up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// `receiving` transfers that were aborted and their partial bodies removed.
    pub aborted: Vec<String>,
    /// Stray temporary files removed.
    pub stray_temp_files: usize,
    /// Committed transfers still waiting for the pipeline.
    pub received: usize,
}

impl Spool {
    /// Opens the spool: creates its folders, opens and migrates the journal.
    ///
    /// # Errors
    /// The folders cannot be created or the journal cannot be opened.
    pub async fn open(cfg: &SpoolConfig, audit: Arc<Audit>) -> Result<Arc<Self>, Error> {
        for sub in ["tmp", "inbound", "outbound", "exceptions"] {
            let p = cfg.root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(format!("create {}", p.display())))?;
        }
        if let Some(parent) = cfg.journal.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("create {}", parent.display())))?;
        }
        let journal = Journal::open(&cfg.journal).await?;
        Ok(Arc::new(Self {
            root: cfg.root.clone(),
            journal,
            audit,
            received: tokio::sync::Notify::new(),
            folders: FolderSyncs::new(),
        }))
    }

    /// The spool's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The audit trail.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Resolves when a transfer has been committed (or spuriously; callers re-check the journal).
    pub async fn received_notified(&self) {
        self.received.notified().await;
    }

    /// Wakes one idle pipeline worker, or the next one to wait (a transfer became due). One, not
    /// all: each due transfer is work for one worker, and every woken worker queries the journal.
    pub fn notify_received(&self) {
        self.received.notify_one();
    }

    /// Folder of an account's outbound box.
    pub fn outbound_dir(&self, owner: &str) -> PathBuf {
        self.root.join("outbound").join(owner)
    }

    /// Root of all exception boxes.
    pub fn exceptions_dir(&self) -> PathBuf {
        self.root.join("exceptions")
    }

    /// Absolute path of a body given its journal `body_path`.
    pub fn body(&self, body_path: &str) -> PathBuf {
        self.root.join(body_path)
    }

    fn temp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(format!("{id}.part"))
    }

    fn create_temp(&self, id: &str) -> Result<(PathBuf, File), Error> {
        let tmp = self.temp_path(id);
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io_err(format!("create {}", tmp.display())))?;
        Ok((tmp, file))
    }

    /// Starts a transfer into a channel's inbound box: journal row `receiving` + temporary file.
    ///
    /// # Errors
    /// The journal or the disk failed.
    pub async fn begin_transfer(
        self: &Arc<Self>,
        channel: &str,
        mount: &str,
        name: &str,
        origin: &Origin,
    ) -> Result<Upload, Error> {
        let id = ulid::Ulid::generate().to_string();
        let body_path = format!("inbound/{channel}/{}/{id}", origin.account);
        self.journal
            .insert_receiving(&NewTransfer {
                id: id.clone(),
                channel: channel.to_string(),
                account: origin.account.clone(),
                mount: mount.to_string(),
                name: name.to_string(),
                protocol: origin.protocol.to_string(),
                remote_addr: origin.remote_addr.clone(),
                body_path: body_path.clone(),
            })
            .await?;
        let (tmp, file) = match self.create_temp(&id) {
            Ok(t) => t,
            Err(e) => {
                let _ = self.journal.mark_aborted(&id, "could not create the temporary file").await;
                return Err(e);
            }
        };
        Ok(Upload::new(self.clone(), id, tmp, file, Dest::Transfer { body: self.root.join(body_path) }))
    }

    /// Starts an upload into a plain folder of the spool (outbound or exceptions box). With
    /// `exclusive`, committing fails if `dest` exists; otherwise it atomically replaces it.
    ///
    /// # Errors
    /// The disk failed.
    pub fn begin_file(self: &Arc<Self>, dest: PathBuf, exclusive: bool) -> Result<Upload, Error> {
        let id = ulid::Ulid::generate().to_string();
        let (tmp, file) = self.create_temp(&id)?;
        Ok(Upload::new(self.clone(), id, tmp, file, Dest::File { path: dest, exclusive }))
    }

    /// Start-up recovery: aborts every `receiving` transfer (the client was never acknowledged),
    /// removes its partial body and any stray temporary files. Committed transfers are untouched.
    ///
    /// # Errors
    /// The journal failed.
    pub async fn recover(&self) -> Result<Recovery, Error> {
        let mut report = Recovery::default();
        for row in self.journal.in_state(State::Receiving).await? {
            for p in [self.temp_path(&row.id), self.body(&row.body_path)] {
                match fs::remove_file(&p) {
                    Ok(()) => {
                        tracing::warn!(transfer = %row.id, path = %p.display(), "removed partial body of an unfinished upload")
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(transfer = %row.id, path = %p.display(), error = %e, "cannot remove partial body")
                    }
                }
            }
            let reason = "the gateway stopped before the upload completed; it was never acknowledged";
            self.journal.mark_aborted(&row.id, reason).await?;
            tracing::warn!(transfer = %row.id, account = %row.account, name = %row.name, "aborted unfinished upload");
            self.audit.record(
                Event::new("transfer_aborted")
                    .account(&row.account)
                    .protocol(&row.protocol)
                    .transfer(&row.id)
                    .path(&row.name)
                    .reason(reason),
            );
            report.aborted.push(row.id);
        }
        let tmp_dir = self.root.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp_dir) {
            for e in entries.flatten() {
                if fs::remove_file(e.path()).is_ok() {
                    tracing::warn!(path = %e.path().display(), "removed stray temporary file");
                    report.stray_temp_files += 1;
                }
            }
        }
        report.received = self.journal.in_state(State::Received).await?.len();
        Ok(report)
    }
}

enum Dest {
    Transfer { body: PathBuf },
    File { path: PathBuf, exclusive: bool },
}

/// An upload in progress. Commit it with [`Upload::commit`]; dropping it aborts it (partial body
/// removed, transfer marked `aborted`), which is what happens when a client disappears.
pub struct Upload {
    spool: Arc<Spool>,
    id: String,
    tmp: PathBuf,
    writer: Option<BodyWriter>,
    dest: Dest,
    runtime: tokio::runtime::Handle,
}

impl Upload {
    fn new(spool: Arc<Spool>, id: String, tmp: PathBuf, file: File, dest: Dest) -> Self {
        Self { spool, id, tmp, writer: Some(BodyWriter::spawn(file)), dest, runtime: tokio::runtime::Handle::current() }
    }

    /// The transfer id (also the temporary file's name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes `data` at `offset` (queued; errors surface on a later write or at commit).
    ///
    /// # Errors
    /// An earlier write failed.
    pub async fn write_at(&self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        match &self.writer {
            Some(w) => w.write_at(offset, data).await,
            None => Err(io::Error::other("upload already finished")),
        }
    }

    /// Completes the upload durably: fsync, rename into place, fsync the folder, journal commit.
    /// When this returns `Ok`, the body is safe and the client may be told so.
    ///
    /// # Errors
    /// Any step failed; the upload is then aborted (nothing half-committed remains).
    pub async fn commit(mut self) -> Result<Committed, Error> {
        let writer = self.writer.take().ok_or_else(|| Error::Aborted(self.id.clone()))?;
        let (final_path, exclusive, is_transfer) = match &self.dest {
            Dest::Transfer { body } => (body.clone(), true, true),
            Dest::File { path, exclusive } => (path.clone(), *exclusive, false),
        };
        let dir = final_path.parent().map(Path::to_path_buf).ok_or_else(|| Error::Io {
            what: format!("place {}", final_path.display()),
            source: io::Error::other("no parent folder"),
        })?;
        // Moved into place on the writer's thread, right after its fsync; then the new name must
        // survive a crash before the commit: the folder is fsynced (shared with the uploads
        // committing into it at the same time).
        let (tmp, place, spool) = (self.tmp.clone(), final_path.clone(), self.spool.clone());
        let written = writer
            .finish(Some(Box::new(move || {
                place_body(&tmp, &place, exclusive)?;
                spool.folders.sync(&dir)
            })))
            .await
            .map_err(io_err(format!("commit {}", self.tmp.display())))?;
        if is_transfer {
            match self.spool.journal.mark_received(&self.id, written.size, &written.sha256).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = fs::remove_file(&final_path);
                    return Err(Error::Aborted(self.id.clone()));
                }
                Err(e) => {
                    // Not committed: take the body back out so that recovery finds nothing half-done.
                    let _ = fs::remove_file(&final_path);
                    return Err(e.into());
                }
            }
            // Committed: nothing for Drop to undo.
            self.tmp = PathBuf::new();
            self.spool.notify_received();
            return Ok(Committed { transfer_id: Some(self.id.clone()), written });
        }
        self.tmp = PathBuf::new();
        Ok(Committed { transfer_id: None, written })
    }
}

/// Runs after the writer's fsync: renames (or links, when exclusive) the body into place. The caller
/// then fsyncs the destination folder so that the new name itself survives a crash.
fn place_body(tmp: &Path, dest: &Path, exclusive: bool) -> io::Result<()> {
    fn context<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
        move |e| io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    }
    let put = || if exclusive { fs::hard_link(tmp, dest) } else { fs::rename(tmp, dest) };
    match put() {
        // The folder is made on first use only (one mkdir per account and channel, not per file).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = dest.parent().ok_or_else(|| io::Error::other("no parent folder"));
            fs::create_dir_all(dir?).map_err(context("create the folder of", dest))?;
            put()
        }
        r => r,
    }
    .map_err(context("place", dest))?;
    if exclusive {
        fs::remove_file(tmp).map_err(context("remove", tmp))?;
    }
    Ok(())
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.tmp.as_os_str().is_empty() {
            return;
        }
        // Stop the writer first (dropping its sender ends the thread), then clean up.
        self.writer = None;
        let tmp = std::mem::take(&mut self.tmp);
        let spool = self.spool.clone();
        let id = self.id.clone();
        let is_transfer = matches!(self.dest, Dest::Transfer { .. });
        self.runtime.spawn(async move {
            let _ = tokio::fs::remove_file(&tmp).await;
            if is_transfer {
                let reason = "the connection ended before the upload completed; it was not acknowledged";
                match spool.journal.mark_aborted(&id, reason).await {
                    Ok(true) => {
                        tracing::warn!(transfer = %id, "upload aborted: {reason}");
                        spool.audit.record(Event::new("transfer_aborted").transfer(&id).reason(reason));
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!(transfer = %id, error = %e, "cannot mark upload aborted"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
