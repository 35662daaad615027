//! The `fs` target: a plain folder, the embedded default (the demo's `spool/demo-ecm/`).
//!
//! Each document is written atomically (temporary file in the target root, fsync, rename, fsync
//! of the folder) with `<name>.metadata.json` beside it holding the metadata, transfer id,
//! sha256 and source account. The metadata file is written first and is how a retry recognises
//! its own earlier delivery: same transfer id and sha256 → already delivered (or half-delivered:
//! finished at the same name), never a second copy.

use super::{Conflict, Delivery, Document, Receipt, Target};
use serde_json::json;
use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

/// A folder target.
#[derive(Debug, Clone)]
pub struct FsTarget {
    name: String,
    root: PathBuf,
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

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Copies `from` to `to` through a temporary file in `to`'s folder, fsynced, renamed into place.
fn place(from: &Path, to: &Path, tmp_tag: &str) -> io::Result<()> {
    let dir = to.parent().ok_or_else(|| io::Error::other("no parent folder"))?;
    let tmp = dir.join(format!(".wharf-tmp-{tmp_tag}"));
    let result = (|| {
        let mut src = File::open(from)?;
        let mut dst = File::create(&tmp)?;
        io::copy(&mut src, &mut dst)?;
        dst.sync_all()?;
        fs::rename(&tmp, to)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_json(to: &Path, value: &serde_json::Value, tmp_tag: &str) -> io::Result<()> {
    let dir = to.parent().ok_or_else(|| io::Error::other("no parent folder"))?;
    let tmp = dir.join(format!(".wharf-tmp-{tmp_tag}.json"));
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let f = File::create(&tmp)?;
    io::Write::write_all(&mut &f, &bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, to)?;
    sync_dir(dir)
}

impl FsTarget {
    /// A target named `name` writing under `root` (created if missing).
    pub fn new(name: &str, root: PathBuf) -> Self {
        Self { name: name.to_string(), root }
    }

    fn resolve(&self, destination: &str) -> Result<PathBuf, String> {
        let rel = Path::new(destination);
        if destination.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!("destination `{destination}` is not a safe relative path"));
        }
        Ok(self.root.join(rel))
    }

    fn deliver_blocking(&self, doc: &Document) -> Result<Receipt, Delivery> {
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
        loop {
            if !chosen.exists() {
                break;
            }
            if recorded(&chosen).is_some_and(|(t, s)| t == doc.transfer_id && s == doc.sha256) {
                // Our metadata: either a complete earlier delivery, or one cut off between the
                // metadata and the document (then the document there is someone else's or stale).
                if file_sha256(&chosen).is_ok_and(|s| s == doc.sha256) {
                    return Ok(self.receipt(&chosen, version, true));
                }
                break;
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
        // Metadata first: a crash between the two writes leaves a metadata file naming this
        // transfer and no document, which the retry fills in at the same name. The other order
        // would leave a document without metadata that the retry could not recognise as its own.
        write_json(&metadata_path(&chosen), &meta, &doc.transfer_id).map_err(|e| classify("write the metadata", &e))?;
        place(&doc.body, &chosen, &doc.transfer_id).map_err(|e| classify("write the document", &e))?;
        Ok(self.receipt(&chosen, version, false))
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
        match tokio::task::spawn_blocking(move || me.deliver_blocking(&doc)).await {
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
}
