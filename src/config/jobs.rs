//! `[[jobs]]`: scheduled outbound packages. A job names its schedule, its source (a local
//! folder or a Content Server folder), which items it takes, how it packages them and the
//! account whose outbound box receives them.

use super::{Checker, KeyPath, TargetKind, is_valid_name};
use crate::outbound::naming::NameTemplate;
use crate::outbound::schedule::Schedule;
use crate::vfs::path as vpath;
use regex::Regex;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[[jobs]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawJob {
    /// Job name (CLI, journal, audit).
    pub name: String,
    /// Cron expression; absent means the job runs only with `wharf outbound run`.
    pub schedule: Option<String>,
    /// IANA zone of the schedule and of `{date}` in names; default UTC.
    pub time_zone: Option<String>,
    /// The account whose outbound box receives the packages.
    pub account: String,
    /// Subfolder of that box.
    pub folder: Option<String>,
    /// `[jobs.source]`.
    pub source: RawJobSource,
    /// `[jobs.select]`.
    #[serde(default)]
    pub select: RawSelect,
    /// `[jobs.package]`.
    #[serde(default)]
    pub package: RawPackage,
    /// `[jobs.destination]`: a connector instead of the account's outbound box.
    pub destination: Option<RawDestination>,
}

/// `[jobs.destination]`.
#[derive(Debug, Deserialize)]
pub struct RawDestination {
    /// `dropbox` or `confluence`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The target whose connection is used.
    pub target: String,
    /// dropbox: folder under the target's root.
    pub folder: Option<String>,
}

/// `[jobs.source]`.
#[derive(Debug, Deserialize)]
pub struct RawJobSource {
    /// `dir` or `opentext`.
    #[serde(rename = "type")]
    pub kind: String,
    /// dir: the folder.
    pub path: Option<String>,
    /// dir: include subfolders.
    #[serde(default)]
    pub recursive: bool,
    /// opentext: the `[[targets]]` entry whose connection is used.
    pub target: Option<String>,
    /// opentext: the folder's node id.
    pub folder: Option<i64>,
    /// opentext: category value key `{category}_{attribute}` to filter on.
    pub attribute: Option<String>,
    /// opentext: the value it must have (`Approved`).
    pub value: Option<String>,
}

/// `[jobs.select]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawSelect {
    /// Regex over the item's relative path.
    pub name: Option<String>,
    /// Items per package.
    pub max_files: Option<usize>,
    /// Bytes per package.
    pub max_bytes: Option<u64>,
    /// Skip items modified less than this long ago (still being written).
    pub min_age_secs: Option<u64>,
}

/// `[jobs.package]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawPackage {
    /// `zip` (default) or `files`.
    pub format: Option<String>,
    /// Naming template of zip packages.
    pub name: Option<String>,
    /// Write `<package>.ready` once it is in place.
    #[serde(default)]
    pub ready_marker: bool,
    /// Remove packages this many days after publishing.
    pub retention_days: Option<u32>,
    /// Remove a package once it has been downloaded completely.
    #[serde(default)]
    pub delete_after_download: bool,
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Name.
    pub name: String,
    /// When it runs by itself.
    pub schedule: Option<Schedule>,
    /// The zone of the schedule and of names.
    pub tz: chrono_tz::Tz,
    /// Destination account (owner of the outbound box).
    pub account: String,
    /// Subfolder components inside the box.
    pub folder: Vec<String>,
    /// Where items come from.
    pub source: JobSource,
    /// Which items and how many per package.
    pub select: Selection,
    /// How they are packaged.
    pub format: PackageFormat,
    /// Zip naming template.
    pub naming: NameTemplate,
    /// `.ready` marker.
    pub ready_marker: bool,
    /// Retention.
    pub retention: Option<Duration>,
    /// Remove after a complete download.
    pub delete_after_download: bool,
    /// Publish to a connector (a Dropbox folder, Confluence pages) instead of the account's box.
    pub remote: Option<RemoteDestination>,
}

/// The connector kinds an outbound job can publish to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteSystem {
    /// Files (or zips) into a Dropbox folder.
    Dropbox,
    /// Each file a Confluence page of the target's space (an HTML or text file becomes the
    /// page's body; any other file is attached to a page of its name).
    Confluence,
}

/// A connector packages are published to.
#[derive(Debug, Clone)]
pub struct RemoteDestination {
    /// Which kind of connector.
    pub system: RemoteSystem,
    /// The target whose connection is used.
    pub target: String,
    /// Dropbox: folder under the target's root (`/`-separated, may be empty).
    pub folder: String,
}

/// Where a job's items come from.
#[derive(Debug, Clone)]
pub enum JobSource {
    /// A local folder.
    Dir {
        /// The folder.
        path: PathBuf,
        /// Include subfolders.
        recursive: bool,
    },
    /// A Content Server folder, through an `opentext` target's connection.
    OpenText {
        /// The target name.
        target: String,
        /// Folder node id.
        folder: i64,
        /// Category value filter (`{cat}_{attr}`, value).
        attribute: Option<(String, String)>,
    },
}

/// Item selection.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Regex over the relative path.
    pub name: Option<Regex>,
    /// Items per package.
    pub max_files: usize,
    /// Bytes per package (a larger single item goes alone).
    pub max_bytes: u64,
    /// Minimum age of an item.
    pub min_age: Duration,
}

/// Packaging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageFormat {
    /// One zip with `manifest.json` and `manifest.csv`.
    Zip,
    /// Each file on its own.
    Files,
}

/// Default zip naming template.
pub const DEFAULT_NAME: &str = "{partner}-{date:%Y%m%d}-{seq}.zip";

fn build_source(
    raw: &RawJobSource,
    key: &KeyPath,
    base: &Path,
    targets: &[super::TargetConfig],
    ck: &mut Checker<'_>,
) -> Option<JobSource> {
    let not_for = |ck: &mut Checker<'_>, field: &str, present: bool| {
        if present {
            ck.report(&key.key(field), format!("`{field}` does not apply to a `{}` source", raw.kind));
        }
    };
    match raw.kind.as_str() {
        "dir" => {
            for (f, p) in [
                ("target", raw.target.is_some()),
                ("folder", raw.folder.is_some()),
                ("attribute", raw.attribute.is_some()),
                ("value", raw.value.is_some()),
            ] {
                not_for(ck, f, p);
            }
            match &raw.path {
                Some(p) if !p.trim().is_empty() => {
                    Some(JobSource::Dir { path: super::resolve(base, p), recursive: raw.recursive })
                }
                _ => {
                    ck.report(&key.key("path"), "a `dir` source needs `path = \"folder\"`");
                    None
                }
            }
        }
        "opentext" => {
            not_for(ck, "path", raw.path.is_some());
            not_for(ck, "recursive", raw.recursive);
            let target = match &raw.target {
                Some(t) if targets.iter().any(|c| c.name == *t && matches!(c.kind, TargetKind::OpenText(_))) => {
                    t.clone()
                }
                Some(t) => {
                    ck.report(&key.key("target"), format!("no `opentext` target named `{t}` in [[targets]]"));
                    return None;
                }
                None => {
                    ck.report(&key.key("target"), "an `opentext` source needs `target = \"<opentext target>\"`");
                    return None;
                }
            };
            let folder = match raw.folder {
                Some(f) if f > 0 => f,
                _ => {
                    ck.report(&key.key("folder"), "must be the folder's node id (a positive number)");
                    return None;
                }
            };
            let attribute = match (&raw.attribute, &raw.value) {
                (Some(a), Some(v)) => Some((a.clone(), v.clone())),
                (None, None) => None,
                _ => {
                    ck.report(
                        &key.key("attribute"),
                        "give `attribute` (`{category}_{attribute}`) and `value` together",
                    );
                    return None;
                }
            };
            Some(JobSource::OpenText { target, folder, attribute })
        }
        other => {
            ck.report(&key.key("type"), format!("unknown source type `{other}`; use `dir` or `opentext`"));
            None
        }
    }
}

fn build_destination(
    d: &RawDestination,
    j: &RawJob,
    key: &KeyPath,
    config: &super::Config,
    ck: &mut Checker<'_>,
) -> Option<RemoteDestination> {
    let dk = key.key("destination");
    let system = match d.kind.as_str() {
        "dropbox" => RemoteSystem::Dropbox,
        "confluence" => RemoteSystem::Confluence,
        other => {
            ck.report(
                &dk.key("type"),
                format!(
                    "unknown destination type `{other}`; use `dropbox` or `confluence` (or leave it out for the account's box)"
                ),
            );
            return None;
        }
    };
    let fits = |t: &super::TargetConfig| match system {
        RemoteSystem::Dropbox => matches!(t.kind, TargetKind::Dropbox(_)),
        RemoteSystem::Confluence => matches!(t.kind, TargetKind::Confluence(_)),
    };
    if !config.targets.iter().any(|t| t.name == d.target && fits(t)) {
        ck.report(&dk.key("target"), format!("no `{}` target named `{}` in [[targets]]", d.kind, d.target));
        return None;
    }
    let folder = d.folder.as_deref().unwrap_or("").trim_matches('/').to_string();
    if system == RemoteSystem::Confluence && d.folder.is_some() {
        ck.report(&dk.key("folder"), "Confluence pages go under the target's `parent_page`; leave `folder` out");
        return None;
    }
    if system == RemoteSystem::Confluence && j.package.format.as_deref().unwrap_or("zip") != "files" {
        ck.report(
            &key.key("package").key("format"),
            "a Confluence destination publishes each file as a page: set `format = \"files\"`",
        );
        return None;
    }
    if !folder.is_empty()
        && folder.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.chars().any(char::is_control))
    {
        ck.report(&dk.key("folder"), "must be a folder under the target's root, without `.` or `..`");
        return None;
    }
    let pk = key.key("package");
    for (field, set) in [
        ("ready_marker", j.package.ready_marker),
        ("retention_days", j.package.retention_days.is_some()),
        ("delete_after_download", j.package.delete_after_download),
    ] {
        if set {
            ck.report(
                &pk.key(field),
                format!("`{field}` applies to outbound boxes, not to a `{}` destination", d.kind),
            );
        }
    }
    if j.folder.is_some() {
        ck.report(&key.key("folder"), "with a [jobs.destination], give the folder there");
    }
    Some(RemoteDestination { system, target: d.target.clone(), folder })
}

/// Validates every `[[jobs]]` entry; each problem names its key.
pub fn build(raw: &[RawJob], config: &super::Config, base: &Path, ck: &mut Checker<'_>) -> Vec<JobConfig> {
    let mut names = std::collections::HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, j)| {
            let key = KeyPath::root().key("jobs").index(i);
            let before = ck.problems.len();
            if !is_valid_name(&j.name) {
                ck.report(&key.key("name"), format!("`{}` is not a valid job name (A-Z a-z 0-9 . _ -)", j.name));
            }
            if !names.insert(j.name.clone()) {
                ck.report(&key.key("name"), format!("job `{}` is defined twice", j.name));
            }
            let tz_text = j.time_zone.as_deref().unwrap_or("UTC");
            let tz = tz_text.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                ck.report(
                    &key.key("time_zone"),
                    format!("`{tz_text}` is not an IANA time zone such as `Europe/Berlin`"),
                );
                chrono_tz::UTC
            });
            let schedule = j.schedule.as_ref().and_then(|s| {
                Schedule::parse(s, tz_text)
                    .map_err(|e| {
                        if !e.contains("IANA") {
                            ck.report(&key.key("schedule"), e)
                        }
                    })
                    .ok()
            });
            let remote = j.destination.as_ref().and_then(|d| build_destination(d, j, &key, config, ck));
            if config.account(&j.account).is_none() {
                ck.report(&key.key("account"), format!("no account named `{}`", j.account));
            } else if j.destination.is_none()
                && !config.accounts.iter().any(|a| {
                    a.mounts.iter().any(|m| {
                        matches!(&m.kind, super::BoxKind::Outbound { owner } if *owner == j.account)
                            && m.permissions.read
                    })
                })
            {
                ck.report(
                    &key.key("account"),
                    format!(
                        "no account mounts `{}`'s outbound box with `read`: nobody could collect the packages",
                        j.account
                    ),
                );
            }
            let folder = match j.folder.as_deref().map(vpath::normalize) {
                None => Vec::new(),
                Some(Ok(p)) if p.components().iter().all(|c| crate::outbound::naming::check_name(c).is_ok()) => {
                    p.components().to_vec()
                }
                Some(Ok(_)) => {
                    ck.report(&key.key("folder"), "folder names must not be hidden (start with a dot)");
                    Vec::new()
                }
                Some(Err(e)) => {
                    ck.report(&key.key("folder"), e.to_string());
                    Vec::new()
                }
            };
            let source = build_source(&j.source, &key.key("source"), base, &config.targets, ck);
            let sk = key.key("select");
            let name_re =
                j.select.name.as_ref().and_then(|r| {
                    Regex::new(r).map_err(|e| ck.report(&sk.key("name"), format!("not a regex: {e}"))).ok()
                });
            let max_files = j.select.max_files.unwrap_or(1000);
            if max_files == 0 {
                ck.report(&sk.key("max_files"), "must be at least 1");
            }
            let max_bytes = j.select.max_bytes.unwrap_or(4 << 30);
            if max_bytes == 0 {
                ck.report(&sk.key("max_bytes"), "must be at least 1");
            }
            let pk = key.key("package");
            let format = match j.package.format.as_deref() {
                None | Some("zip") => PackageFormat::Zip,
                Some("files") => PackageFormat::Files,
                Some(other) => {
                    ck.report(&pk.key("format"), format!("unknown format `{other}`; use `zip` or `files`"));
                    PackageFormat::Zip
                }
            };
            if format == PackageFormat::Files && j.package.name.is_some() {
                ck.report(&pk.key("name"), "`files` packages keep each file's own name; `name` applies to `zip`");
            }
            let name = match NameTemplate::parse(j.package.name.as_deref().unwrap_or(DEFAULT_NAME)) {
                Ok(t) => {
                    let sample = crate::outbound::naming::NameVars {
                        job: &j.name,
                        account: &j.account,
                        partner: "PARTNER",
                        run: "01JRUN",
                        at: chrono::Utc::now().with_timezone(&tz),
                        seq: 1,
                    };
                    match t.render(&sample) {
                        Ok(n) if format == PackageFormat::Zip && !n.to_ascii_lowercase().ends_with(".zip") => {
                            ck.report(&pk.key("name"), format!("a zip package's name should end in `.zip` (`{n}`)"));
                        }
                        Ok(_) => {}
                        Err(e) => ck.report(&pk.key("name"), e),
                    }
                    Some(t)
                }
                Err(e) => {
                    ck.report(&pk.key("name"), e);
                    None
                }
            };
            let retention = match j.package.retention_days {
                Some(0) => {
                    ck.report(&pk.key("retention_days"), "must be at least 1 (leave it out to keep packages)");
                    None
                }
                Some(d) => Some(Duration::from_secs(u64::from(d) * 86_400)),
                None => None,
            };
            if ck.problems.len() != before {
                return None;
            }
            Some(JobConfig {
                name: j.name.clone(),
                schedule,
                tz,
                account: j.account.clone(),
                folder,
                source: source?,
                select: Selection {
                    name: name_re,
                    max_files,
                    max_bytes,
                    min_age: Duration::from_secs(j.select.min_age_secs.unwrap_or(0)),
                },
                format,
                naming: name?,
                ready_marker: j.package.ready_marker,
                retention,
                delete_after_download: j.package.delete_after_download,
                remote,
            })
        })
        .collect()
}
