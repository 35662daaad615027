//! Where a job's items come from: a local folder, or a Content Server folder through an
//! `opentext` target's connection. Each item has a stable key and a fingerprint (a new
//! fingerprint is a new version, exported again) and is read as a stream.

use super::naming::safe_relative;
use crate::config::jobs::JobSource;
use crate::targets::opentext::client::{ApiError, Client};
use crate::targets::opentext::listing::{self, Query};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncRead;

/// A source failure; the run fails and the next one retries.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The connector failed.
    #[error("{0}")]
    Api(#[from] ApiError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SourceError {
    let what = what.into();
    move |source| SourceError::Io { what, source }
}

/// One thing to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable identity in the source (relative path, node id).
    pub key: String,
    /// Changes when the content changes (size + mtime, modification date).
    pub fingerprint: String,
    /// Safe relative path inside the package (`/`-separated).
    pub name: String,
    /// Bytes, as listed.
    pub size: u64,
    /// Last modification.
    pub modified: DateTime<Utc>,
    /// What the source says about it (manifest columns).
    pub metadata: BTreeMap<String, String>,
}

/// A readable item body.
pub type Body = Pin<Box<dyn AsyncRead + Send>>;

/// A job's source, ready to list and read.
#[derive(Debug, Clone)]
pub enum Source {
    /// A local folder.
    Dir {
        /// The folder.
        root: PathBuf,
        /// Include subfolders.
        recursive: bool,
    },
    /// A Content Server folder.
    OpenText {
        /// The connection.
        client: Arc<Client>,
        /// The folder.
        folder: i64,
        /// Category value filter.
        attribute: Option<(String, String)>,
    },
}

impl Source {
    /// The source of a job; `clients` holds the connections of the `opentext` targets.
    ///
    /// # Errors
    /// The job names a target that has no connection (a config/wiring mistake).
    pub fn of(job: &JobSource, clients: &BTreeMap<String, Arc<Client>>) -> Result<Self, String> {
        Ok(match job {
            JobSource::Dir { path, recursive } => Self::Dir { root: path.clone(), recursive: *recursive },
            JobSource::OpenText { target, folder, attribute } => Self::OpenText {
                client: clients.get(target).cloned().ok_or_else(|| format!("no connection for target `{target}`"))?,
                folder: *folder,
                attribute: attribute.clone(),
            },
        })
    }

    /// Lists the items, oldest change first. `modified_after` is the job's watermark.
    ///
    /// # Errors
    /// The folder cannot be read, or the server fails.
    pub async fn list(&self, modified_after: Option<&str>) -> Result<Vec<Item>, SourceError> {
        match self {
            Self::Dir { root, recursive } => {
                let (root, recursive) = (root.clone(), *recursive);
                tokio::task::spawn_blocking(move || list_dir(&root, recursive))
                    .await
                    .map_err(|e| SourceError::Io { what: "listing".into(), source: std::io::Error::other(e) })?
            }
            Self::OpenText { client, folder, attribute } => {
                let q = Query {
                    folder: *folder,
                    modified_after: modified_after.map(str::to_string),
                    attribute: attribute.clone(),
                    page_size: 0,
                };
                Ok(listing::list(client, &q).await?.into_iter().filter_map(listed_item).collect())
            }
        }
    }

    /// Opens an item for reading.
    ///
    /// # Errors
    /// It vanished, is not a plain file any more, or the server fails.
    pub async fn open(&self, item: &Item) -> Result<Body, SourceError> {
        match self {
            Self::Dir { root, .. } => {
                let path = root.join(&item.key);
                let shown = path.display().to_string();
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(io(format!("opening {shown}")))?;
                Ok(Box::pin(tokio::fs::File::from_std(f)))
            }
            Self::OpenText { client, .. } => {
                let id: i64 = item.key.parse().map_err(|_| SourceError::Io {
                    what: format!("node id `{}`", item.key),
                    source: std::io::Error::other("not a number"),
                })?;
                let stream = listing::download(client, id).await?.map_err(std::io::Error::other);
                Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
            }
        }
    }

    /// Whether a local item still is what was listed (size and mtime), after it was read.
    /// Connector items are checked by their byte count against the listed size (when the
    /// server gave one).
    ///
    /// # Errors
    /// The item changed or vanished while it was packaged.
    pub fn unchanged(&self, item: &Item, read: u64) -> Result<(), String> {
        match self {
            Self::Dir { root, .. } => {
                let m = std::fs::symlink_metadata(root.join(&item.key))
                    .map_err(|e| format!("{}: vanished while it was packaged ({e})", item.key))?;
                if fingerprint(&m) != item.fingerprint || read != item.size {
                    return Err(format!("{}: changed while it was packaged; the next run takes it", item.key));
                }
            }
            Self::OpenText { .. } if item.size > 0 && read != item.size => {
                return Err(format!(
                    "{} ({}): {read} bytes came for {} listed; it changed while it was packaged or the download was cut",
                    item.name, item.key, item.size
                ));
            }
            Self::OpenText { .. } => {}
        }
        Ok(())
    }
}

fn fingerprint(m: &std::fs::Metadata) -> String {
    format!("{}:{}.{:09}", m.size(), m.mtime(), m.mtime_nsec())
}

fn list_dir(root: &Path, recursive: bool) -> Result<Vec<Item>, SourceError> {
    let mut out = Vec::new();
    let mut todo = vec![String::new()];
    while let Some(rel) = todo.pop() {
        let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(&rel) };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.is_empty() => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(dir = %dir.display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            if name.starts_with('.') {
                continue; // hidden: being written by an exporter, or not meant for partners
            }
            let key = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let m = entry.metadata().map_err(io(format!("reading {key}")))?; // lstat: links are not followed
            if m.file_type().is_dir() {
                if recursive {
                    todo.push(key);
                }
                continue;
            }
            if !m.file_type().is_file() {
                continue; // links, sockets, devices
            }
            let Some(safe) = safe_relative(&key) else { continue };
            let modified = m.modified().map(DateTime::<Utc>::from).unwrap_or_default();
            let mut metadata = BTreeMap::new();
            metadata.insert("source_path".to_string(), key.clone());
            out.push(Item { key, fingerprint: fingerprint(&m), name: safe, size: m.size(), modified, metadata });
        }
    }
    out.sort_by(|a, b| (a.modified, &a.key).cmp(&(b.modified, &b.key)));
    Ok(out)
}

fn listed_item(d: listing::Listed) -> Option<Item> {
    let name = safe_relative(&d.name)?;
    let modified = DateTime::parse_from_rfc3339(&d.modified)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&d.modified, "%Y-%m-%dT%H:%M:%S").map(|n| n.and_utc()))
        .unwrap_or_default();
    let mut metadata = d.categories.clone();
    metadata.insert("node_id".into(), d.id.to_string());
    metadata.insert("modify_date".into(), d.modified.clone());
    // `modify_date` has whole seconds: with the size, two versions in one second still differ
    // (unless they also have the same size; the server gives no version number in this listing).
    let fingerprint = format!("{}|{}", d.modified, d.size);
    Some(Item { key: d.id.to_string(), fingerprint, name, size: d.size, modified, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_lists_plain_files_and_skips_hidden_links_and_subfolders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("a.csv"), b"1").expect("write");
        std::fs::write(root.join(".partial"), b"x").expect("write");
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/b.csv"), b"22").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).expect("symlink");
        let flat = Source::Dir { root: root.to_path_buf(), recursive: false };
        let names: Vec<String> = flat.list(None).await.expect("lists").into_iter().map(|i| i.key).collect();
        assert_eq!(names, ["a.csv"]);
        let deep = Source::Dir { root: root.to_path_buf(), recursive: true };
        let mut names: Vec<String> = deep.list(None).await.expect("lists").into_iter().map(|i| i.key).collect();
        names.sort();
        assert_eq!(names, ["a.csv", "sub/b.csv"]);
        let missing = Source::Dir { root: root.join("nope"), recursive: false };
        assert!(missing.list(None).await.expect("a missing folder is empty").is_empty());
    }

    #[tokio::test]
    async fn a_changed_file_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), b"1").expect("write");
        let src = Source::Dir { root: dir.path().to_path_buf(), recursive: false };
        let item = src.list(None).await.expect("lists").remove(0);
        assert!(src.unchanged(&item, 1).is_ok());
        std::fs::write(dir.path().join("a.csv"), b"12").expect("write");
        assert!(src.unchanged(&item, 1).unwrap_err().contains("changed"));
        std::fs::remove_file(dir.path().join("a.csv")).expect("rm");
        assert!(src.unchanged(&item, 1).unwrap_err().contains("vanished"));
    }
}
