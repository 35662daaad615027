//! Building packages: a zip whose entries stream from the source (never a whole file in memory)
//! with `manifest.json` and `manifest.csv` listing every file with its size, SHA-256 and the
//! metadata the source gave; or one plain file. Runs on a blocking thread; async sources are
//! read through [`tokio_util::io::SyncIoBridge`]. Everything is fsynced before it returns.

use super::source::{Item, Source, SourceError};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;
use zip::write::SimpleFileOptions;

/// Names inside a zip that wharf writes itself.
pub const MANIFEST_JSON: &str = "manifest.json";
/// The CSV twin of the manifest (for spreadsheets).
pub const MANIFEST_CSV: &str = "manifest.csv";

/// A packaging failure; nothing is published.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing the package failed (e.g. the disk is full).
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// An item changed or vanished while it was read.
    #[error("{0}")]
    Changed(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PackageError {
    let what = what.into();
    move |source| PackageError::Io { what, source }
}

fn zip_err(what: &str) -> impl FnOnce(zip::result::ZipError) -> PackageError + '_ {
    move |e| PackageError::Io { what: what.to_string(), source: io::Error::other(e) }
}

/// One file as the manifest lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Path inside the package (or the published file's name).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Last modification at the source.
    pub modified: String,
    /// The source's key for it.
    pub source_key: String,
    /// Metadata from the source.
    pub metadata: BTreeMap<String, String>,
}

/// The manifest's head.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestHead {
    /// Job.
    pub job: String,
    /// Package file name.
    pub package: String,
    /// The run.
    pub run_id: String,
    /// Destination account.
    pub account: String,
    /// Build time.
    pub created_at: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(flatten)]
    head: &'a ManifestHead,
    items: usize,
    files: &'a [ManifestEntry],
}

/// A built package file.
#[derive(Debug, Clone)]
pub struct Built {
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the package file.
    pub sha256: String,
    /// What it holds.
    pub entries: Vec<ManifestEntry>,
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Called with the bytes of each chunk copied (progress bars).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

struct Copied {
    read: u64,
    sha256: String,
}

fn copy_item(
    handle: &Handle,
    source: &Source,
    item: &Item,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Copied, PackageError> {
    let body = handle.block_on(source.open(item))?;
    let mut r = Hashing { inner: SyncIoBridge::new_with_handle(body, handle.clone()), hasher: Sha256::new(), read: 0 };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).map_err(io_err(format!("reading {}", item.key)))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io_err("writing the package"))?;
        progress(n as u64);
    }
    source.unchanged(item, r.read).map_err(PackageError::Changed)?;
    Ok(Copied { read: r.read, sha256: hex::encode(r.hasher.finalize()) })
}

fn zip_time(t: DateTime<Utc>) -> zip::DateTime {
    let fallback = zip::DateTime::default();
    let (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) = (
        u16::try_from(t.year()),
        u8::try_from(t.month()),
        u8::try_from(t.day()),
        u8::try_from(t.hour()),
        u8::try_from(t.minute()),
        u8::try_from(t.second()),
    ) else {
        return fallback;
    };
    zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or(fallback)
}

/// A name not yet used in the package (compared case-insensitively, for Windows partners):
/// `a.pdf`, then `a (2).pdf`, ...
fn unique(name: &str, used: &mut HashSet<String>) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && !name[i..].contains('/') => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let mut candidate = name.to_string();
    let mut n = 2;
    while !used.insert(candidate.to_lowercase()) {
        candidate = format!("{stem} ({n}){ext}");
        n += 1;
    }
    candidate
}

fn sha256_of(path: &Path) -> Result<String, PackageError> {
    crate::spool::writer::sha256_file(path)
        .map(|(_, sha)| sha)
        .map_err(io_err(format!("reading back {}", path.display())))
}

fn manifest_csv(entries: &[ManifestEntry]) -> Result<Vec<u8>, PackageError> {
    let keys: BTreeSet<&String> = entries.iter().flat_map(|e| e.metadata.keys()).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| PackageError::Io { what: "writing manifest.csv".into(), source: io::Error::other(e) };
    let mut head = vec!["name", "size", "sha256", "modified", "source_key"];
    head.extend(keys.iter().map(|k| k.as_str()));
    w.write_record(&head).map_err(csv_err)?;
    for e in entries {
        let mut row =
            vec![e.name.clone(), e.size.to_string(), e.sha256.clone(), e.modified.clone(), e.source_key.clone()];
        row.extend(keys.iter().map(|k| e.metadata.get(*k).cloned().unwrap_or_default()));
        w.write_record(&row).map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| PackageError::Io { what: "writing manifest.csv".into(), source: io::Error::other(e.to_string()) })
}

/// Builds a zip of `items` at `dest` (created new; the caller removes it on error).
///
/// # Errors
/// A source failure, an item that changed while read, or a write failure.
pub fn build_zip(
    handle: &Handle,
    source: &Source,
    items: &[Item],
    dest: &Path,
    head: &ManifestHead,
    progress: Progress<'_>,
) -> Result<Built, PackageError> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io_err(format!("creating {}", dest.display())))?;
    let mut zip = zip::ZipWriter::new(file);
    let mut used: HashSet<String> = [MANIFEST_JSON, MANIFEST_CSV].iter().map(|s| s.to_string()).collect();
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let name = unique(&item.name, &mut used);
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip_time(item.modified))
            .unix_permissions(0o644)
            .large_file(item.size >= u64::from(u32::MAX));
        zip.start_file(name.as_str(), opts).map_err(zip_err("writing the zip"))?;
        let copied = copy_item(handle, source, item, &mut zip, progress)?;
        entries.push(ManifestEntry {
            name,
            size: copied.read,
            sha256: copied.sha256,
            modified: crate::spool::journal::timestamp(item.modified),
            source_key: item.key.clone(),
            metadata: item.metadata.clone(),
        });
    }
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip_time(Utc::now()))
        .unix_permissions(0o644);
    let json = serde_json::to_vec_pretty(&Manifest { head, items: entries.len(), files: &entries })
        .map_err(|e| PackageError::Io { what: "writing manifest.json".into(), source: io::Error::other(e) })?;
    zip.start_file(MANIFEST_JSON, opts).map_err(zip_err("writing the zip"))?;
    zip.write_all(&json).map_err(io_err("writing manifest.json"))?;
    zip.start_file(MANIFEST_CSV, opts).map_err(zip_err("writing the zip"))?;
    zip.write_all(&manifest_csv(&entries)?).map_err(io_err("writing manifest.csv"))?;
    let file = zip.finish().map_err(zip_err("finishing the zip"))?;
    file.sync_all().map_err(io_err(format!("fsync {}", dest.display())))?;
    let size = file.metadata().map_err(io_err(format!("stat {}", dest.display())))?.len();
    drop(file);
    Ok(Built { size, sha256: sha256_of(dest)?, entries })
}

/// Copies one item to `dest` (created new, fsynced).
///
/// # Errors
/// As [`build_zip`].
pub fn copy_file(
    handle: &Handle,
    source: &Source,
    item: &Item,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<Built, PackageError> {
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io_err(format!("creating {}", dest.display())))?;
    let copied = copy_item(handle, source, item, &mut file, progress)?;
    file.sync_all().map_err(io_err(format!("fsync {}", dest.display())))?;
    let entry = ManifestEntry {
        name: item.name.rsplit('/').next().unwrap_or(&item.name).to_string(),
        size: copied.read,
        sha256: copied.sha256.clone(),
        modified: crate::spool::journal::timestamp(item.modified),
        source_key: item.key.clone(),
        metadata: item.metadata.clone(),
    };
    Ok(Built { size: copied.read, sha256: copied.sha256, entries: vec![entry] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_unique_without_regard_to_case() {
        let mut used: HashSet<String> = [MANIFEST_JSON.to_string()].into_iter().collect();
        assert_eq!(unique("a.pdf", &mut used), "a.pdf");
        assert_eq!(unique("A.PDF", &mut used), "A (2).PDF");
        assert_eq!(unique("Manifest.json", &mut used), "Manifest (2).json");
        assert_eq!(unique("noext", &mut used), "noext");
        assert_eq!(unique("noext", &mut used), "noext (2)");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_zip_holds_every_file_and_a_manifest_that_matches_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src_dir = dir.path().join("src");
        std::fs::create_dir(&src_dir).expect("mkdir");
        std::fs::write(src_dir.join("a.csv"), b"id;price\n1;2\n").expect("write");
        std::fs::write(src_dir.join("b.pdf"), vec![7u8; 300_000]).expect("write");
        let source = Source::Dir { root: src_dir, recursive: false };
        let items = source.list(None).await.expect("lists");
        let dest = dir.path().join("p.zip");
        let head = ManifestHead {
            job: "j".into(),
            package: "p.zip".into(),
            run_id: "r".into(),
            account: "acme".into(),
            created_at: "now".into(),
        };
        let handle = Handle::current();
        let d = dest.clone();
        let built = tokio::task::spawn_blocking(move || build_zip(&handle, &source, &items, &d, &head, &|_| {}))
            .await
            .expect("joined")
            .expect("built");
        assert_eq!(built.entries.len(), 2);
        assert_eq!(built.sha256, sha256_of(&dest).expect("hash"));
        let mut zip = zip::ZipArchive::new(File::open(&dest).expect("open")).expect("a zip");
        let mut manifest = String::new();
        zip.by_name(MANIFEST_JSON).expect("manifest").read_to_string(&mut manifest).expect("read");
        let m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
        assert_eq!(m["items"], 2);
        for f in m["files"].as_array().expect("files") {
            let mut body = Vec::new();
            zip.by_name(f["name"].as_str().expect("name")).expect("entry").read_to_end(&mut body).expect("read");
            assert_eq!(f["sha256"].as_str(), Some(hex::encode(Sha256::digest(&body)).as_str()));
            assert_eq!(f["size"].as_u64(), Some(body.len() as u64));
        }
        let mut csv = String::new();
        zip.by_name(MANIFEST_CSV).expect("csv").read_to_string(&mut csv).expect("read");
        assert!(csv.starts_with("name,size,sha256,modified,source_key,source_path\n"), "{csv}");
        assert_eq!(csv.lines().count(), 3);
    }
}
