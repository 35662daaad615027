//! Plain-folder boxes (outbound, exceptions): the second half of the jail.
//!
//! A [`Jailed`] path is a box folder plus normalised components. Every component below the box is
//! checked with `lstat` and a symbolic link anywhere refuses the operation; the final open uses
//! `O_NOFOLLOW`. Clients cannot create links (SFTP `symlink` is refused), so a link can only be
//! planted by someone with shell access to the spool, and even then it is never followed.

use super::error::{Error, Result};
use super::{Entry, EntryKind};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Names the gateway reserves for itself inside boxes; never listed, never accepted from clients.
pub const RESERVED_PREFIX: &str = ".wharf";

/// A path inside a plain-folder box.
#[derive(Debug, Clone)]
pub struct Jailed {
    /// The box folder (trusted: built by the gateway from config).
    pub base: PathBuf,
    /// Components below it (normalised by [`super::path`]).
    pub rel: Vec<String>,
    /// The virtual path, for messages.
    pub shown: String,
}

impl Jailed {
    /// The real path (only use after [`Jailed::check`]).
    pub fn real(&self) -> PathBuf {
        let mut p = self.base.clone();
        for c in &self.rel {
            p.push(c);
        }
        p
    }

    /// Refuses reserved names and any symbolic link from the box folder down to the parent of the
    /// last component (and the last one too, when `include_last`).
    ///
    /// # Errors
    /// `Denied` on a link, `NotFound` when a parent folder is missing.
    pub fn check(&self, include_last: bool) -> Result<()> {
        if self.rel.iter().any(|c| c.starts_with(RESERVED_PREFIX)) {
            return Err(Error::NotFound(format!("{}: no such file or folder", self.shown)));
        }
        let mut p = self.base.clone();
        let upto = if include_last { self.rel.len() } else { self.rel.len().saturating_sub(1) };
        for c in &self.rel[..upto] {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    tracing::warn!(path = %p.display(), "refused to follow a symbolic link in a box");
                    return Err(Error::Denied(format!("{}: symbolic links are not followed", self.shown)));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && !include_last => {
                    return Err(Error::NotFound(format!("{}: the folder does not exist", self.shown)));
                }
                Err(e) => return Err(Error::io(&self.shown, &e)),
            }
        }
        Ok(())
    }

    /// Metadata of the path itself.
    ///
    /// # Errors
    /// Not found, a link, or an I/O error.
    pub fn stat(&self) -> Result<Entry> {
        self.check(true)?;
        let m = fs::symlink_metadata(self.real()).map_err(|e| Error::io(&self.shown, &e))?;
        let name = self.rel.last().cloned().unwrap_or_default();
        Entry::from_metadata(name, &m).ok_or_else(|| Error::NotFound(format!("{}: no such file or folder", self.shown)))
    }

    /// The folder's entries (regular files and folders only; links and reserved names hidden).
    /// A box folder that does not exist yet lists as empty.
    ///
    /// # Errors
    /// Not a folder, a link, or an I/O error.
    pub fn list(&self) -> Result<Vec<Entry>> {
        self.check(true)?;
        let dir = match fs::read_dir(self.real()) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.rel.is_empty() => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.shown, &e)),
        };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            if name.starts_with(RESERVED_PREFIX) {
                continue;
            }
            // DirEntry::metadata does not follow links: links show as links and are skipped.
            if let Ok(m) = entry.metadata()
                && let Some(e) = Entry::from_metadata(name, &m)
            {
                out.push(e);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Opens a regular file for reading without following links.
    ///
    /// # Errors
    /// Not found, a folder, a link, or an I/O error.
    pub fn open_read(&self) -> Result<(File, u64)> {
        self.check(false)?;
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.real())
            .map_err(|e| Error::io(&self.shown, &e))?;
        let m = f.metadata().map_err(|e| Error::io(&self.shown, &e))?;
        if !m.is_file() {
            return Err(Error::Unsupported(format!("{}: not a file", self.shown)));
        }
        Ok((f, m.len()))
    }

    /// Whether something exists at the path (links count as existing).
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(self.real()).is_ok()
    }

    /// Removes a file.
    ///
    /// # Errors
    /// Not found, a folder, or an I/O error.
    pub fn remove_file(&self) -> Result<()> {
        self.check(false)?;
        let m = fs::symlink_metadata(self.real()).map_err(|e| Error::io(&self.shown, &e))?;
        if m.is_dir() {
            return Err(Error::Unsupported(format!("{}: is a folder; remove it with rmdir", self.shown)));
        }
        fs::remove_file(self.real()).map_err(|e| Error::io(&self.shown, &e))
    }

    /// Creates a folder.
    ///
    /// # Errors
    /// Exists, parent missing, or an I/O error.
    pub fn mkdir(&self) -> Result<()> {
        self.check(false)?;
        fs::create_dir_all(&self.base).map_err(|e| Error::io(&self.shown, &e))?;
        fs::create_dir(self.real()).map_err(|e| Error::io(&self.shown, &e))
    }

    /// Removes an empty folder.
    ///
    /// # Errors
    /// Not empty, not found, or an I/O error.
    pub fn rmdir(&self) -> Result<()> {
        self.check(true)?;
        fs::remove_dir(self.real()).map_err(|e| Error::io(&self.shown, &e))
    }

    /// Renames within the same box, refusing to replace an existing target.
    ///
    /// # Errors
    /// Source missing, target exists, or an I/O error.
    pub fn rename_to(&self, to: &Jailed) -> Result<()> {
        self.check(true)?;
        to.check(false)?;
        if to.exists() {
            return Err(Error::Exists(format!("{}: already exists", to.shown)));
        }
        fs::rename(self.real(), to.real()).map_err(|e| Error::io(&self.shown, &e))
    }

    /// Sets access and modification times of a file.
    ///
    /// # Errors
    /// Not found or an I/O error.
    pub fn set_times(&self, atime: Option<std::time::SystemTime>, mtime: Option<std::time::SystemTime>) -> Result<()> {
        let (f, _) = self.open_read()?;
        let mut times = fs::FileTimes::new();
        if let Some(a) = atime {
            times = times.set_accessed(a);
        }
        if let Some(m) = mtime {
            times = times.set_modified(m);
        }
        f.set_times(times).map_err(|e| Error::io(&self.shown, &e))
    }
}

impl Entry {
    fn from_metadata(name: String, m: &fs::Metadata) -> Option<Entry> {
        let kind = if m.is_dir() {
            EntryKind::Dir
        } else if m.is_file() {
            EntryKind::File
        } else {
            return None;
        };
        Some(Entry { name, kind, size: if m.is_file() { m.len() } else { 0 }, modified: m.modified().ok() })
    }
}
