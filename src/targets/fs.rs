//! The `fs` target: a plain folder, the embedded default (the demo's `spool/demo-ecm/`).
//!
//! Each document appears atomically under its name (a temporary name in its folder, renamed) with
//! `<name>.metadata.json` beside it holding the metadata, transfer id, sha256 and source account;
//! the metadata is how a retry recognises its own earlier delivery: same transfer id and sha256 →
//! already delivered (or half-delivered: finished at the same name), never a second copy.
//!
//! The document is a hard link to the spool's body, which is already fsynced and never changes
//! (a copy, fsynced, when the target is on another filesystem or refuses links). The metadata
//! file is written and fsynced, both names are renamed into place, and the folder is fsynced
//! once, shared with the deliveries into the same folder at the same time; only then is the
//! document reported delivered. A crash before that fsync may leave either name without the
//! other: metadata alone is finished at the same name; a document alone with this transfer's
//! sha256 and no metadata is this delivery cut off, and gets its metadata (see `deliver_blocking`).

use super::{Conflict, Delivery, Document, Receipt, Target};
use crate::spool::barrier::FolderSyncs;
use serde_json::json;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A folder target.
#[derive(Debug, Clone)]
pub struct FsTarget {
    name: String,
    root: PathBuf,
    /// Deliveries into one folder at the same time share its fsync.
    folders: Arc<FolderSyncs>,
    /// Mode of a delivered document (what creating it would give: 0666 less the umask); a hard
    /// link would otherwise keep the spool body's 0640.
    file_mode: u32,
}

/// 0666 less the process's umask (from `/proc/self/status`; 022 if it cannot be read).
fn created_file_mode() -> u32 {
    let umask = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Umask:"))?.to_string();
            u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
        })
        .unwrap_or(0o022);
    0o666 & !umask
}

fn metadata_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".metadata.json");
    PathBuf::from(s)
}

/// `a/b/name.ext` → `a/b/name.v{n}.ext` (or `name (n).ext` for rename).
fn variant(p: &Path, n: u32, conflict: Conflict) -> PathBuf {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("file");
    let ext = p.extension().and_then(|s| s.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
    let name = match conflict {
        Conflict::Rename => format!("{stem} ({n}){ext}"),
        _ => format!("{stem}.v{n}{ext}"),
    };
    p.with_file_name(name)
}

/// The transfer id and sha256 recorded beside a delivered file, if any.
fn recorded(p: &Path) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(metadata_path(p)).ok()?).ok()?;
    Some((v.get("transfer_id")?.as_str()?.to_string(), v.get("sha256")?.as_str()?.to_string()))
}

fn file_sha256(p: &Path) -> io::Result<String> {
    crate::spool::writer::sha256_file(p).map(|(_, sha)| sha)
}

/// Puts the (fsynced, immutable) body `from` at the temporary name `tmp`: a hard link, or where the
/// target cannot link to it (another filesystem, no link support), a copy, fsynced. The caller
/// renames `tmp` into place and fsyncs the folder.
fn stage_document(from: &Path, tmp: &Path, mode: u32) -> io::Result<()> {
    let _ = fs::remove_file(tmp); // left by an attempt cut off before its rename
    match fs::hard_link(from, tmp) {
        // The document gets its own mode; the body it shares the inode with leaves the spool next.
        Ok(()) => fs::set_permissions(tmp, fs::Permissions::from_mode(mode)),
        Err(_) => {
            let mut src = File::open(from)?;
            let mut dst = File::create(tmp)?;
            io::copy(&mut src, &mut dst)?;
            dst.sync_all()
        }
    }
}

/// Writes `value` at the temporary name `tmp`, fsynced. The caller renames it into place and
/// fsyncs the folder.
fn stage_json(tmp: &Path, value: &serde_json::Value) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let f = File::create(tmp)?;
    io::Write::write_all(&mut &f, &bytes)?;
    f.sync_all()
}

/// A delivery whose names are in place; its folder still needs an fsync.
struct Placed {
    receipt: Receipt,
    folder: PathBuf,
}

impl FsTarget {
    /// A target named `name` writing under `root` (created if missing).
    pub fn new(name: &str, root: PathBuf) -> Self {
        Self { name: name.to_string(), root, folders: Arc::new(FolderSyncs::new()), file_mode: created_file_mode() }
    }

    fn resolve(&self, destination: &str) -> Result<PathBuf, String> {
        let rel = Path::new(destination);
        if destination.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!("destination `{destination}` is not a safe relative path"));
        }
        Ok(self.root.join(rel))
    }

    fn deliver_blocking(&self, doc: &Document) -> Result<Placed, Delivery> {
        let wanted = self.resolve(&doc.destination).map_err(Delivery::Except)?;
        let dir = wanted.parent().ok_or_else(|| Delivery::Except("destination has no folder".into()))?;
        fs::create_dir_all(dir).map_err(|e| classify("create the destination folder", &e))?;
        // Reject a destination whose folders are symbolic links: never write outside the root.
        let mut p = self.root.clone();
        for c in Path::new(&doc.destination).components() {
            p.push(c);
            if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Delivery::Except(format!("{} is a symbolic link; refusing to follow it", p.display())));
            }
        }
        // Find the name to use: an earlier delivery of this transfer wins (idempotency).
        let mut chosen = wanted.clone();
        let mut version = 1;
        let placed =
            |p: &Path, version, already| Placed { receipt: self.receipt(p, version, already), folder: dir.into() };
        loop {
            if !chosen.exists() {
                break;
            }
            match recorded(&chosen) {
                Some((t, s)) if t == doc.transfer_id && s == doc.sha256 => {
                    // Our metadata: either a complete earlier delivery, or one cut off between the
                    // metadata and the document (then the document there is someone else's or stale).
                    if file_sha256(&chosen).is_ok_and(|s| s == doc.sha256) {
                        return Ok(placed(&chosen, version, true));
                    }
                    break;
                }
                // No metadata at all beside a document with our content: our delivery, cut off
                // after the document's name reached the disk and before the metadata's did.
                None if !metadata_path(&chosen).exists() && file_sha256(&chosen).is_ok_and(|s| s == doc.sha256) => {
                    break;
                }
                _ => {}
            }
            match doc.conflict {
                Conflict::Reject => {
                    return Err(Delivery::Except(format!(
                        "{} already exists in target `{}` and the rule's conflict policy is `reject`",
                        doc.destination, self.name
                    )));
                }
                Conflict::Overwrite => break,
                Conflict::Version | Conflict::Rename => {
                    version += 1;
                    if version > 10_000 {
                        return Err(Delivery::Except("more than 10000 versions of one name".into()));
                    }
                    chosen = variant(&wanted, version, doc.conflict);
                }
            }
        }
        let meta = json!({
            "transfer_id": doc.transfer_id,
            "sha256": doc.sha256,
            "size": doc.size,
            "account": doc.account,
            "channel": doc.channel,
            "metadata": doc.metadata,
            "version": version,
        });
        // Both are staged under temporary names, then renamed metadata first. The folder is
        // fsynced once for both (by the caller); a crash before that may keep either name alone,
        // and the retry finishes either case at the same name (see the loop above).
        let (tmp_meta, tmp_doc) = (
            dir.join(format!(".wharf-tmp-{}.json", doc.transfer_id)),
            dir.join(format!(".wharf-tmp-{}", doc.transfer_id)),
        );
        let staged = stage_json(&tmp_meta, &meta)
            .map_err(|e| classify("write the metadata", &e))
            .and_then(|()| {
                stage_document(&doc.body, &tmp_doc, self.file_mode).map_err(|e| classify("write the document", &e))
            })
            .and_then(|()| {
                fs::rename(&tmp_meta, metadata_path(&chosen)).map_err(|e| classify("write the metadata", &e))
            })
            .and_then(|()| fs::rename(&tmp_doc, &chosen).map_err(|e| classify("write the document", &e)));
        if let Err(d) = staged {
            let _ = fs::remove_file(&tmp_meta);
            let _ = fs::remove_file(&tmp_doc);
            return Err(d);
        }
        Ok(placed(&chosen, version, false))
    }

    fn receipt(&self, path: &Path, version: u32, already: bool) -> Receipt {
        let rel = path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy().into_owned();
        Receipt {
            target: self.name.clone(),
            id: rel.clone(),
            path: rel,
            version: Some(version),
            already_delivered: already,
        }
    }
}

fn classify(what: &str, e: &io::Error) -> Delivery {
    use io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied | K::ReadOnlyFilesystem | K::InvalidFilename | K::NotADirectory => {
            Delivery::Except(format!("cannot {what}: {e}"))
        }
        _ => Delivery::Retry(format!("cannot {what}: {e}")),
    }
}

#[async_trait::async_trait]
impl Target for FsTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, doc: &Document) -> Delivery {
        let (me, doc) = (self.clone(), doc.clone());
        let delivered = move || {
            let placed = me.deliver_blocking(&doc)?;
            // Delivered only once both names are on disk; also for an earlier delivery found in
            // place, which a crash may have cut off before its own folder fsync.
            me.folders.sync(&placed.folder).map_err(|e| classify("fsync the destination folder", &e))?;
            Ok(placed.receipt)
        };
        match tokio::task::spawn_blocking(delivered).await {
            Ok(Ok(r)) => Delivery::Delivered(r),
            Ok(Err(d)) => d,
            Err(e) => Delivery::Retry(format!("delivery task failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(dir: &Path, id: &str, body: &[u8], conflict: Conflict) -> Document {
        let p = dir.join(format!("body-{id}"));
        fs::write(&p, body).expect("body");
        Document {
            transfer_id: id.into(),
            body: p,
            destination: "2026/ACME/INV-1.pdf".into(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body)),
            size: body.len() as u64,
            account: "acme".into(),
            channel: "invoices".into(),
            metadata: [("vendor".to_string(), "ACME".to_string())].into(),
            conflict,
        }
    }

    #[tokio::test]
    async fn delivers_atomically_with_metadata_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = FsTarget::new("ecm", dir.path().join("ecm"));
        let d = doc(dir.path(), "T1", b"%PDF one", Conflict::Version);
        let Delivery::Delivered(r) = t.deliver(&d).await else { panic!("not delivered") };
        assert_eq!((r.path.as_str(), r.version, r.already_delivered), ("2026/ACME/INV-1.pdf", Some(1), false));
        let out = dir.path().join("ecm/2026/ACME/INV-1.pdf");
        assert_eq!(fs::read(&out).expect("file"), b"%PDF one");
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(metadata_path(&out)).expect("meta")).expect("json");
        assert_eq!(meta["transfer_id"], "T1");
        assert_eq!(meta["metadata"]["vendor"], "ACME");
        // The same transfer again (a retry after a crash) finds its earlier delivery.
        let Delivery::Delivered(again) = t.deliver(&d).await else { panic!("not delivered") };
        assert!(again.already_delivered);
        assert!(!dir.path().join("ecm/2026/ACME/INV-1.v2.pdf").exists());
        let leftovers: Vec<_> = fs::read_dir(out.parent().expect("dir"))
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".wharf-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn a_delivery_cut_off_after_its_metadata_is_finished_at_the_same_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = FsTarget::new("ecm", dir.path().join("ecm"));
        let d = doc(dir.path(), "T1", b"%PDF mine", Conflict::Overwrite);
        // An older document by another transfer is there; the crash hit after our metadata was written.
        let out = dir.path().join("ecm/2026/ACME/INV-1.pdf");
        fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
        fs::write(&out, b"%PDF older").expect("old");
        let meta = json!({ "transfer_id": "T1", "sha256": d.sha256 });
        fs::write(metadata_path(&out), serde_json::to_vec(&meta).expect("json")).expect("meta");
        let Delivery::Delivered(r) = t.deliver(&d).await else { panic!("not delivered") };
        assert!(!r.already_delivered, "the stale document must not count as delivered");
        assert_eq!(fs::read(&out).expect("file"), b"%PDF mine");
        // Metadata only (no document at all): filled in at the same name, no .v2.
        let d2 = Document { destination: "2026/ACME/INV-2.pdf".into(), conflict: Conflict::Version, ..d.clone() };
        let out2 = dir.path().join("ecm/2026/ACME/INV-2.pdf");
        fs::write(metadata_path(&out2), serde_json::to_vec(&meta).expect("json")).expect("meta");
        assert!(matches!(t.deliver(&d2).await, Delivery::Delivered(_)));
        assert_eq!(fs::read(&out2).expect("file"), b"%PDF mine");
        assert!(!dir.path().join("ecm/2026/ACME/INV-2.v2.pdf").exists());
    }

    #[tokio::test]
    async fn conflict_policies() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = FsTarget::new("ecm", dir.path().join("ecm"));
        let base = dir.path().join("ecm/2026/ACME");
        assert!(matches!(t.deliver(&doc(dir.path(), "A", b"a", Conflict::Version)).await, Delivery::Delivered(_)));
        let Delivery::Delivered(v2) = t.deliver(&doc(dir.path(), "B", b"b", Conflict::Version)).await else { panic!() };
        assert_eq!((v2.path.as_str(), v2.version), ("2026/ACME/INV-1.v2.pdf", Some(2)));
        let Delivery::Delivered(r) = t.deliver(&doc(dir.path(), "C", b"c", Conflict::Rename)).await else { panic!() };
        assert_eq!(r.path, "2026/ACME/INV-1 (2).pdf");
        assert!(
            matches!(t.deliver(&doc(dir.path(), "D", b"d", Conflict::Reject)).await, Delivery::Except(m) if m.contains("reject"))
        );
        assert!(matches!(t.deliver(&doc(dir.path(), "E", b"e", Conflict::Overwrite)).await, Delivery::Delivered(_)));
        assert_eq!(fs::read(base.join("INV-1.pdf")).expect("file"), b"e");
    }

    #[tokio::test]
    async fn unsafe_destinations_and_symlinked_folders_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("ecm");
        fs::create_dir_all(&root).expect("mkdir");
        let t = FsTarget::new("ecm", root.clone());
        for bad in ["../escape.pdf", "/etc/x", "", "a/../../b"] {
            let mut d = doc(dir.path(), "X", b"x", Conflict::Version);
            d.destination = bad.into();
            assert!(matches!(t.deliver(&d).await, Delivery::Except(_)), "{bad}");
        }
        std::os::unix::fs::symlink(dir.path(), root.join("2026")).expect("symlink");
        assert!(
            matches!(t.deliver(&doc(dir.path(), "Y", b"y", Conflict::Version)).await, Delivery::Except(m) if m.contains("symbolic link"))
        );
    }

    #[tokio::test]
    async fn the_document_is_a_link_to_the_body_with_a_created_files_mode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tmp");
        let t = FsTarget::new("ecm", dir.path().join("ecm"));
        let d = doc(dir.path(), "T1", b"%PDF linked", Conflict::Version);
        fs::set_permissions(&d.body, fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(t.deliver(&d).await, Delivery::Delivered(_)));
        let out = fs::metadata(dir.path().join("ecm/2026/ACME/INV-1.pdf")).expect("document");
        assert_eq!(out.ino(), fs::metadata(&d.body).expect("body").ino(), "hard link, not a copy");
        assert_eq!(out.mode() & 0o777, created_file_mode());
    }

    #[tokio::test]
    async fn a_body_on_another_filesystem_is_copied() {
        use std::os::unix::fs::MetadataExt;
        // /dev/shm is a tmpfs on Linux; without it there is no second filesystem to test with.
        let Ok(other) = tempfile::tempdir_in("/dev/shm") else { return };
        let dir = tempfile::tempdir().expect("tmp");
        let t = FsTarget::new("ecm", dir.path().join("ecm"));
        let d = doc(other.path(), "T1", b"%PDF copied", Conflict::Version);
        if fs::metadata(&d.body).expect("body").dev() == fs::metadata(dir.path()).expect("dir").dev() {
            return;
        }
        assert!(matches!(t.deliver(&d).await, Delivery::Delivered(_)));
        assert_eq!(fs::read(dir.path().join("ecm/2026/ACME/INV-1.pdf")).expect("document"), b"%PDF copied");
    }

    #[tokio::test]
    async fn a_document_whose_metadata_was_lost_in_a_crash_is_recognised() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = FsTarget::new("ecm", dir.path().join("ecm"));
        let d = doc(dir.path(), "T1", b"%PDF mine", Conflict::Version);
        // The document's name reached the disk, the metadata's did not.
        let out = dir.path().join("ecm/2026/ACME/INV-1.pdf");
        fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
        fs::write(&out, b"%PDF mine").expect("document");
        let Delivery::Delivered(r) = t.deliver(&d).await else { panic!("not delivered") };
        assert_eq!((r.path.as_str(), r.version), ("2026/ACME/INV-1.pdf", Some(1)));
        assert_eq!(recorded(&out), Some(("T1".to_string(), d.sha256.clone())));
        assert!(!dir.path().join("ecm/2026/ACME/INV-1.v2.pdf").exists());
        // A document without metadata but with other content is someone else's: a new version.
        let other =
            Document { destination: "2026/ACME/INV-3.pdf".into(), ..doc(dir.path(), "T2", b"b", Conflict::Version) };
        fs::write(dir.path().join("ecm/2026/ACME/INV-3.pdf"), b"not mine").expect("document");
        let Delivery::Delivered(r) = t.deliver(&other).await else { panic!("not delivered") };
        assert_eq!(r.path, "2026/ACME/INV-3.v2.pdf");
    }
}
