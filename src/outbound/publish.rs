//! Putting packages into boxes atomically, and taking them out again.
//!
//! A package is built under a hidden name in the box's top folder (`.wharf-build+<job>+<id>`,
//! never listed and refused from clients), staged in the journal, then hard-linked to its final
//! name (which fails instead of replacing an existing file) and the build name removed; folders
//! are fsynced. A partner listing at any moment sees the whole package or nothing. Recovery
//! finishes a staged package whose file still exists and rolls back one whose file is gone.

use crate::audit::Event;
use crate::spool::Spool;
use crate::spool::journal::PackageRow;
use crate::vfs::dirbox::{Jailed, RESERVED_PREFIX};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Prefix of build files (inside the reserved `.wharf` namespace).
pub fn build_prefix(job: &str) -> String {
    // `+` cannot occur in job names, so one job's prefix never matches another's files.
    format!("{RESERVED_PREFIX}-build+{job}+")
}

/// The jailed real path of `rel` (`/`-separated) in `owner`'s box; refuses symbolic links on
/// the way (someone with shell access could have planted one).
///
/// # Errors
/// A link in the path.
pub fn box_path(spool: &Spool, owner: &str, rel: &str) -> io::Result<PathBuf> {
    let j = Jailed {
        base: spool.outbound_dir(owner),
        rel: rel.split('/').map(str::to_string).collect(),
        shown: format!("{owner}:/{rel}"),
    };
    // `check` refuses reserved names; build files are addressed without it.
    if j.rel.iter().any(|c| c.starts_with(RESERVED_PREFIX)) {
        return Ok(j.real());
    }
    match j.check(false) {
        Ok(()) => Ok(j.real()),
        Err(crate::vfs::Error::NotFound(_)) => Ok(j.real()),
        Err(e) => Err(io::Error::new(io::ErrorKind::PermissionDenied, e.to_string())),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Links the build file to its final name (no replace), removes the build name, writes the
/// `.ready` marker, fsyncs. Idempotent: a package already in place is left as it is.
///
/// # Errors
/// I/O; `AlreadyExists` when another file holds the final name.
pub fn place(spool: &Spool, p: &PackageRow) -> io::Result<()> {
    let build = box_path(spool, &p.owner, &p.build_path)?;
    let dest = box_path(spool, &p.owner, &p.path)?;
    let dir = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| spool.outbound_dir(&p.owner));
    fs::create_dir_all(&dir)?;
    if build.exists() {
        match fs::hard_link(&build, &dest) {
            Ok(()) => {}
            // a crash after the link and before the unlink: the same inode is already there
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && same_file(&build, &dest) => {}
            Err(e) => return Err(e),
        }
        sync_dir(&dir)?;
        fs::remove_file(&build)?;
        sync_dir(&spool.outbound_dir(&p.owner))?;
    }
    if p.ready_marker {
        let marker = dest.with_file_name(format!("{}.ready", file_name(&dest)));
        if !marker.exists() {
            let tmp = dest.with_file_name(format!("{RESERVED_PREFIX}-ready+{}", p.id));
            File::create(&tmp)?.sync_all()?;
            fs::rename(&tmp, &marker)?;
            sync_dir(&dir)?;
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}

/// Removes a published package (and its marker) from its box.
/// Returns false if the file was already gone.
///
/// # Errors
/// I/O other than "not found".
pub fn remove(spool: &Spool, p: &PackageRow) -> io::Result<bool> {
    let dest = box_path(spool, &p.owner, &p.path)?;
    // The partner may have deleted it and a later package (or an upload) taken its name: only
    // the file this row published is removed.
    if !is_this_package(&dest, p)? {
        return Ok(false);
    }
    let gone = match fs::remove_file(&dest) {
        Ok(()) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    if p.ready_marker {
        let marker = dest.with_file_name(format!("{}.ready", file_name(&dest)));
        match fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(dir) = dest.parent() {
        sync_dir(dir)?;
    }
    Ok(!gone)
}

/// Whether the file at `path` is the package `p` (same size and SHA-256); false if it is gone.
fn is_this_package(path: &Path, p: &PackageRow) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if i64::try_from(m.len()).ok() == Some(p.size) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    match crate::spool::writer::sha256_file(path) {
        Ok((size, sha)) => Ok(i64::try_from(size).ok() == Some(p.size) && sha == p.sha256),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a published package, or a staged one, already holds `rel` in `owner`'s box.
pub fn taken(spool: &Spool, owner: &str, rel: &str) -> bool {
    box_path(spool, owner, rel).map(|p| fs::symlink_metadata(p).is_ok()).unwrap_or(true)
}

/// Event for a package.
pub fn event(kind: &str, p: &PackageRow) -> Event {
    Event::new(kind)
        .account(&p.owner)
        .path(&format!("outbound/{}/{}", p.owner, p.path))
        .size(u64::try_from(p.size).unwrap_or(0))
        .sha256(&p.sha256)
        .transfer(&p.id)
}

/// Finishes or rolls back the job's staged packages, then removes its stray build files
/// (a crash during packaging). Returns how many packages were finished and rolled back.
///
/// # Errors
/// Journal or I/O failures; the next run tries again.
pub async fn recover(spool: &Spool, job: &str, owners: &[&str]) -> Result<(usize, usize), String> {
    let journal = spool.journal();
    let pending = journal.pending_packages(job).await.map_err(|e| e.to_string())?;
    let (mut finished, mut rolled_back) = (0, 0);
    for p in &pending {
        let build = box_path(spool, &p.owner, &p.build_path).map_err(|e| e.to_string())?;
        let dest = box_path(spool, &p.owner, &p.path).map_err(|e| e.to_string())?;
        if build.exists() || same_size(&dest, p.size) {
            place(spool, p).map_err(|e| format!("finishing {}: {e}", p.path))?;
            journal.mark_published(&p.id).await.map_err(|e| e.to_string())?;
            spool.audit().record(event("package_published", p).reason("finished by recovery after an interruption"));
            finished += 1;
        } else {
            journal.unstage_package(&p.id).await.map_err(|e| e.to_string())?;
            spool.audit().record(event("package_rolled_back", p).reason("its file was lost before it was published"));
            rolled_back += 1;
        }
    }
    let prefix = build_prefix(job);
    for owner in owners {
        let dir = spool.outbound_dir(owner);
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && !pending.iter().any(|p| p.build_path == name) {
                tracing::info!(job, file = %name, "removing an unfinished package build");
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok((finished, rolled_back))
}

fn same_size(p: &Path, size: i64) -> bool {
    fs::symlink_metadata(p).map(|m| m.is_file() && i64::try_from(m.len()).ok() == Some(size)).unwrap_or(false)
}
