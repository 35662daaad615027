//! Outbound jobs: on a schedule (or by hand), take what is new at a source, package it and
//! publish it atomically into a partner's outbound box for collection.
//!
//! A run: lock the job (one run at a time, across processes) → finish or roll back what an
//! interrupted run left ([`publish::recover`]) → list the source, keep items that match the
//! selection and were not exported at their current fingerprint → split them into packages by
//! `max_files`/`max_bytes` → for each: build under a hidden name, stage it in the journal with
//! its items (one durable transaction), place it under its final name, mark it published and
//! audit it. A failure anywhere removes the build file, leaves the journal as it was and is
//! audited; the next run tries again.

pub mod cli;
pub mod collect;
pub mod naming;
pub mod package;
pub mod publish;
mod remote;
pub mod schedule;
pub mod scheduler;
pub mod source;

use crate::audit::Event;
use crate::config::Config;
use crate::config::jobs::{JobConfig, PackageFormat};
use crate::spool::Spool;
use crate::spool::journal::{NewPackage, PackageRow};
use crate::targets::dropbox::DropboxTarget;
use crate::targets::opentext::client::Client;
use chrono::Utc;
use naming::NameVars;
use package::{Built, ManifestHead};
use source::{Item, Source};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No job of that name.
    #[error("no job named `{0}` in the config")]
    UnknownJob(String),
    /// Another run of the job holds its lock.
    #[error("job `{0}` is already running")]
    Busy(String),
    /// The run failed; nothing of the failing package was published.
    #[error("{0}")]
    Failed(String),
}

/// A job ready to run.
pub struct Job {
    /// Its configuration.
    pub cfg: JobConfig,
    source: Source,
    partner: String,
}

/// One published package.
#[derive(Debug, Clone)]
pub struct Published {
    /// Path inside the box.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
    /// Items it holds.
    pub items: usize,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// Packages published, in order.
    pub packages: Vec<Published>,
    /// Staged packages an interrupted run left, finished now.
    pub recovered: usize,
}

impl RunReport {
    /// One line for the CLI and the journal.
    pub fn summary(&self) -> String {
        if self.packages.is_empty() {
            return "nothing new to export".into();
        }
        let items: usize = self.packages.iter().map(|p| p.items).sum();
        let bytes: u64 = self.packages.iter().map(|p| p.size).sum();
        let names: Vec<&str> = self.packages.iter().map(|p| p.path.as_str()).collect();
        format!("published {} package(s), {items} item(s), {bytes} bytes: {}", names.len(), names.join(", "))
    }
}

/// Reports progress of a run (a terminal progress bar, or nothing).
pub trait Progress: Send + Sync {
    /// A package of `items` items and `bytes` bytes is being built.
    fn package(&self, name: &str, items: usize, bytes: u64);
    /// `n` more bytes were copied.
    fn copied(&self, n: u64);
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn package(&self, _: &str, _: usize, _: u64) {}
    fn copied(&self, _: u64) {}
}

/// The outbound side of a gateway: its jobs and the spool they publish into.
pub struct Outbound {
    spool: Arc<Spool>,
    jobs: BTreeMap<String, Arc<Job>>,
    /// Connections of the connectors jobs publish to.
    connectors: remote::Connectors,
}

struct JobLock(#[allow(dead_code)] std::fs::File);

fn lock(spool: &Spool, job: &str) -> Result<Option<JobLock>, RunError> {
    let dir = spool.root().join("jobs");
    std::fs::create_dir_all(&dir).map_err(|e| RunError::Failed(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{job}.lock"));
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RunError::Failed(format!("opening {}: {e}", path.display())))?;
    // SAFETY: flock on a file descriptor we own; released when the file is closed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok(if rc == 0 { Some(JobLock(f)) } else { None })
}

impl Outbound {
    /// The jobs of `config`, with connections for their connector sources.
    ///
    /// # Errors
    /// A connector cannot be set up (a secret is missing).
    pub fn new(spool: Arc<Spool>, config: &Config) -> Result<Self, String> {
        Self::with_dropbox(spool, config, BTreeMap::new())
    }

    /// As [`Outbound::new`], reusing the gateway's Dropbox connections (one per target, shared
    /// with deliveries and polls); missing ones are made.
    ///
    /// # Errors
    /// A connector cannot be set up.
    pub fn with_dropbox(
        spool: Arc<Spool>,
        config: &Config,
        dropbox: BTreeMap<String, Arc<DropboxTarget>>,
    ) -> Result<Self, String> {
        let mut clients = BTreeMap::new();
        for t in &config.targets {
            if let crate::config::TargetKind::OpenText(cfg) = &t.kind
                && config.jobs.iter().any(|j| matches!(&j.source, crate::config::jobs::JobSource::OpenText { target, .. } if *target == t.name))
            {
                let client = Client::new(cfg).map_err(|e| format!("target `{}`: {e}", t.name))?;
                clients.insert(t.name.clone(), Arc::new(client));
            }
        }
        let connectors = remote::Connectors::for_jobs(config, dropbox)?;
        let mut jobs = BTreeMap::new();
        for j in &config.jobs {
            let partner = config
                .account(&j.account)
                .and_then(|a| a.attributes.get("partner_id").cloned())
                .unwrap_or_else(|| j.account.clone());
            let source = Source::of(&j.source, &clients)?;
            jobs.insert(j.name.clone(), Arc::new(Job { cfg: j.clone(), source, partner }));
        }
        Ok(Self { spool, jobs, connectors })
    }

    /// The jobs, by name.
    pub fn jobs(&self) -> impl Iterator<Item = &Arc<Job>> {
        self.jobs.values()
    }

    /// The spool.
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }

    /// Runs a job now (as a scheduled run would); its packages are named by the wall clock.
    ///
    /// # Errors
    /// Unknown job, already running, or the run failed (audited; the next run retries).
    pub async fn run(&self, name: &str, progress: Arc<dyn Progress>) -> Result<RunReport, RunError> {
        self.run_as_of(name, Utc::now(), progress).await
    }

    /// Runs a job for the occurrence `at`: the scheduler passes the scheduled time, so the 06:00
    /// package of 2 December is named for 2 December even when it is caught up later.
    ///
    /// # Errors
    /// As [`Outbound::run`].
    pub async fn run_as_of(
        &self,
        name: &str,
        at: chrono::DateTime<Utc>,
        progress: Arc<dyn Progress>,
    ) -> Result<RunReport, RunError> {
        let job = self.jobs.get(name).ok_or_else(|| RunError::UnknownJob(name.to_string()))?.clone();
        let Some(_lock) = lock(&self.spool, name)? else {
            return Err(RunError::Busy(name.to_string()));
        };
        let run_id = ulid::Ulid::generate().to_string();
        let span = tracing::info_span!("outbound_run", job = %name, run = %run_id, account = %job.cfg.account);
        let result = tracing::Instrument::instrument(self.run_locked(&job, &run_id, at, &progress), span).await;
        let journal = self.spool.journal();
        let line = match &result {
            Ok(r) => r.summary(),
            Err(e) => format!("failed: {e}"),
        };
        if let Err(e) = journal.record_run(name, Utc::now(), &line).await {
            tracing::warn!(job = %name, error = %e, "cannot record the run in the journal");
        }
        if let Err(e) = &result {
            tracing::warn!(job = %name, error = %e, "outbound run failed");
            self.spool.audit().record(
                Event::new("outbound_run_failed")
                    .account(&job.cfg.account)
                    .transfer(&run_id)
                    .reason(&format!("job {name}: {e}")),
            );
        }
        result
    }

    async fn run_locked(
        &self,
        job: &Job,
        run_id: &str,
        at: chrono::DateTime<Utc>,
        progress: &Arc<dyn Progress>,
    ) -> Result<RunReport, RunError> {
        let fail = |e: String| RunError::Failed(e);
        let name = job.cfg.name.as_str();
        let remote = self.recover_remote(job).await.map_err(fail)?;
        let (recovered, _) = publish::recover(&self.spool, name, &[job.cfg.account.as_str()]).await.map_err(fail)?;
        let recovered = recovered + remote;
        let journal = self.spool.journal();
        let state = journal.job_state(name).await.map_err(|e| fail(e.to_string()))?;
        let listed = job.source.list(state.watermark.as_deref()).await.map_err(|e| fail(e.to_string()))?;
        let now = Utc::now();
        let sel = &job.cfg.select;
        let mut todo = Vec::new();
        let mut first_skipped: Option<chrono::DateTime<Utc>> = None;
        for item in listed {
            if sel.name.as_ref().is_some_and(|re| !re.is_match(&item.key)) {
                continue;
            }
            if (now - item.modified).to_std().unwrap_or_default() < sel.min_age {
                first_skipped = Some(first_skipped.map_or(item.modified, |t| t.min(item.modified)));
                continue;
            }
            if journal.exported(name, &item.key, &item.fingerprint).await.map_err(|e| fail(e.to_string()))? {
                continue;
            }
            todo.push(item);
        }
        let mut report = RunReport { run_id: run_id.to_string(), recovered, ..RunReport::default() };
        let mut seq = state.seq;
        let chunks = chunk(todo, sel.max_files, sel.max_bytes);
        let total = chunks.len();
        for (i, items) in chunks.iter().enumerate() {
            // The watermark may pass an item only once every item up to it is exported.
            let next_unexported = chunks.get(i + 1).and_then(|c| c.first()).map(|it| it.modified);
            let limit = [next_unexported, first_skipped].into_iter().flatten().min();
            // Content Server items: the watermark is the server's own `modify_date` text, which
            // the listing compares against; keep it as the server wrote it.
            let watermark = items
                .iter()
                .filter(|it| limit.is_none_or(|l| it.modified < l))
                .max_by_key(|it| it.modified)
                .filter(|_| matches!(job.source, Source::OpenText { .. }))
                .and_then(|it| it.metadata.get("modify_date").cloned());
            match job.cfg.format {
                PackageFormat::Zip => {
                    seq += 1;
                    let p = self.publish_zip(job, run_id, at, items, &mut seq, watermark.as_deref(), progress).await?;
                    report.packages.push(p);
                }
                PackageFormat::Files => {
                    for (n, item) in items.iter().enumerate() {
                        seq += 1;
                        // the watermark goes with the last file of the chunk
                        let wm = if n + 1 == items.len() { watermark.as_deref() } else { None };
                        report.packages.push(self.publish_file(job, run_id, item, seq, wm, progress).await?);
                    }
                }
            }
            tracing::info!(package = i + 1, of = total, "package published");
        }
        Ok(report)
    }

    fn new_package(job: &Job, run_id: &str, path: String, build_path: &str, built: &Built) -> NewPackage {
        let id = ulid::Ulid::generate().to_string();
        let expires_at = job.cfg.retention.and_then(|r| chrono::Duration::from_std(r).ok()).map(|r| Utc::now() + r);
        NewPackage {
            id,
            job: job.cfg.name.clone(),
            run_id: run_id.to_string(),
            owner: job.cfg.account.clone(),
            path,
            build_path: build_path.to_string(),
            size: built.size,
            sha256: built.sha256.clone(),
            items: built.entries.len(),
            ready_marker: job.cfg.ready_marker,
            delete_after_download: job.cfg.delete_after_download,
            expires_at,
        }
    }

    fn rel(job: &Job, name: &str) -> String {
        let mut parts = job.cfg.folder.clone();
        parts.push(name.to_string());
        parts.join("/")
    }

    async fn build<F>(&self, job: &Job, tmp_name: &str, f: F) -> Result<Built, RunError>
    where
        F: FnOnce(&tokio::runtime::Handle, &Source, &std::path::Path) -> Result<Built, package::PackageError>
            + Send
            + 'static,
    {
        let box_dir = self.spool.outbound_dir(&job.cfg.account);
        std::fs::create_dir_all(&box_dir)
            .map_err(|e| RunError::Failed(format!("creating {}: {e}", box_dir.display())))?;
        let dest = box_dir.join(tmp_name);
        let (source, handle, d) = (job.source.clone(), tokio::runtime::Handle::current(), dest.clone());
        let built = tokio::task::spawn_blocking(move || f(&handle, &source, &d))
            .await
            .map_err(|e| RunError::Failed(format!("packaging stopped: {e}")))
            .and_then(|r| r.map_err(|e| RunError::Failed(e.to_string())));
        if built.is_err() {
            let _ = std::fs::remove_file(&dest);
        }
        built
    }

    #[allow(clippy::too_many_arguments)]
    async fn publish_zip(
        &self,
        job: &Job,
        run_id: &str,
        at: chrono::DateTime<Utc>,
        items: &[Item],
        seq: &mut i64,
        watermark: Option<&str>,
        progress: &Arc<dyn Progress>,
    ) -> Result<Published, RunError> {
        let at = at.with_timezone(&job.cfg.tz);
        // the first free name (a partner may have uploaded into the box, or an old package stays)
        let mut name = String::new();
        for _ in 0..1000 {
            let vars = NameVars {
                job: &job.cfg.name,
                account: &job.cfg.account,
                partner: &job.partner,
                run: run_id,
                at,
                seq: *seq,
            };
            name = job.cfg.naming.render(&vars).map_err(RunError::Failed)?;
            if !publish::taken(&self.spool, &job.cfg.account, &Self::rel(job, &name)) {
                break;
            }
            *seq += 1;
        }
        let path = Self::rel(job, &name);
        progress.package(&name, items.len(), items.iter().map(|i| i.size).sum());
        let head = ManifestHead {
            job: job.cfg.name.clone(),
            package: name.clone(),
            run_id: run_id.to_string(),
            account: job.cfg.account.clone(),
            created_at: crate::spool::journal::timestamp(Utc::now()),
        };
        let tmp = format!("{}{}", publish::build_prefix(&job.cfg.name), ulid::Ulid::generate());
        let owned: Vec<Item> = items.to_vec();
        let prog = progress.clone();
        let built =
            self.build(job, &tmp, move |h, s, d| package::build_zip(h, s, &owned, d, &head, &|n| prog.copied(n))).await;
        let built = built?;
        let keys: Vec<(String, String)> = items.iter().map(|i| (i.key.clone(), i.fingerprint.clone())).collect();
        self.commit(job, run_id, path, &tmp, &built, &keys, *seq, watermark).await
    }

    async fn publish_file(
        &self,
        job: &Job,
        run_id: &str,
        item: &Item,
        seq: i64,
        watermark: Option<&str>,
        progress: &Arc<dyn Progress>,
    ) -> Result<Published, RunError> {
        let base = item.name.rsplit('/').next().unwrap_or(&item.name).to_string();
        let mut name = base.clone();
        let mut n = 2;
        while publish::taken(&self.spool, &job.cfg.account, &Self::rel(job, &name)) {
            name = match base.rfind('.') {
                Some(i) if i > 0 => format!("{}-{n}{}", &base[..i], &base[i..]),
                _ => format!("{base}-{n}"),
            };
            n += 1;
        }
        naming::check_name(&name).map_err(RunError::Failed)?;
        progress.package(&name, 1, item.size);
        let tmp = format!("{}{}", publish::build_prefix(&job.cfg.name), ulid::Ulid::generate());
        let owned = item.clone();
        let prog = progress.clone();
        let built =
            self.build(job, &tmp, move |h, s, d| package::copy_file(h, s, &owned, d, &|n| prog.copied(n))).await?;
        let keys = vec![(item.key.clone(), item.fingerprint.clone())];
        self.commit(job, run_id, Self::rel(job, &name), &tmp, &built, &keys, seq, watermark).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        job: &Job,
        run_id: &str,
        path: String,
        tmp: &str,
        built: &Built,
        keys: &[(String, String)],
        seq: i64,
        watermark: Option<&str>,
    ) -> Result<Published, RunError> {
        let journal = self.spool.journal();
        let p = Self::new_package(job, run_id, path.clone(), tmp, built);
        let cleanup = |why: String| {
            let _ = std::fs::remove_file(self.spool.outbound_dir(&job.cfg.account).join(tmp));
            RunError::Failed(why)
        };
        journal.stage_package(&p, keys, seq, watermark).await.map_err(|e| cleanup(e.to_string()))?;
        let row = PackageRow {
            id: p.id.clone(),
            job: p.job.clone(),
            run_id: p.run_id.clone(),
            owner: p.owner.clone(),
            path: p.path.clone(),
            build_path: p.build_path.clone(),
            state: "pending".into(),
            size: i64::try_from(p.size).unwrap_or(i64::MAX),
            sha256: p.sha256.clone(),
            items: i64::try_from(p.items).unwrap_or(i64::MAX),
            ready_marker: p.ready_marker,
            delete_after_download: p.delete_after_download,
            created_at: String::new(),
            published_at: None,
            expires_at: None,
            collected_at: None,
            collected_by: None,
            removed_at: None,
            removed_why: None,
            watermark: watermark.map(str::to_string),
        };
        let placed = match &job.cfg.remote {
            Some(_) => self.upload_remote(job, &row).await,
            None => publish::place(&self.spool, &row).map_err(|e| remote::Remote::Refused(e.to_string())),
        };
        match placed {
            Ok(()) => {}
            // Perhaps it got there (a lost reply): keep it staged with its build; the next
            // run's recovery sends it again, which the connector recognises as its own.
            Err(remote::Remote::Transient(e)) => {
                return Err(RunError::Failed(format!("publishing {path}: {e}; the next run finishes it")));
            }
            Err(remote::Remote::Refused(e)) => {
                let _ = journal.unstage_package(&p.id).await;
                return Err(cleanup(format!("publishing {path}: {e}")));
            }
        }
        journal.mark_published(&p.id).await.map_err(|e| RunError::Failed(e.to_string()))?;
        self.spool.audit().record(
            self.event("package_published", job, &row).reason(&format!("job {}: {} item(s)", job.cfg.name, p.items)),
        );
        tracing::info!(path = %path, size = p.size, sha256 = %p.sha256, items = p.items, "package published");
        Ok(Published { path, size: p.size, sha256: p.sha256, items: p.items })
    }

    /// Finishes or rolls back what interrupted runs of every job left (start-up).
    pub async fn recover_all(&self) {
        for job in self.jobs.values() {
            let Ok(Some(_lock)) = lock(&self.spool, &job.cfg.name) else { continue };
            if let Err(e) = self.recover_remote(job).await {
                tracing::warn!(job = %job.cfg.name, error = %e, "outbound recovery failed; the next run retries");
                continue;
            }
            if let Err(e) = publish::recover(&self.spool, &job.cfg.name, &[job.cfg.account.as_str()]).await {
                tracing::warn!(job = %job.cfg.name, error = %e, "outbound recovery failed; the next run retries");
            }
        }
    }

    /// Removes packages whose retention has ended, auditing each.
    pub async fn sweep(&self, now: chrono::DateTime<Utc>) {
        let journal = self.spool.journal();
        let expired = match journal.expired_packages(now).await {
            Ok(e) => e,
            Err(e) => return tracing::warn!(error = %e, "cannot read expired packages"),
        };
        for p in expired {
            match publish::remove(&self.spool, &p) {
                Ok(present) => {
                    let why = if present { "expired" } else { "gone" };
                    if journal.mark_removed(&p.id, why).await.unwrap_or(false) && present {
                        self.spool
                            .audit()
                            .record(publish::event("package_expired", &p).reason("retention period ended"));
                    }
                }
                Err(e) => tracing::warn!(path = %p.path, error = %e, "cannot remove an expired package"),
            }
        }
    }
}

/// Splits items into packages of at most `max_files` items and `max_bytes` bytes (an item
/// larger than `max_bytes` goes alone).
fn chunk(items: Vec<Item>, max_files: usize, max_bytes: u64) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut bytes = 0u64;
    for item in items {
        let fits = out.last().is_some_and(|c| c.len() < max_files && bytes + item.size <= max_bytes);
        if !fits {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += item.size;
        if let Some(c) = out.last_mut() {
            c.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests;
