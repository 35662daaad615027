//! Outbound jobs that publish to a connector instead of a box: a Dropbox folder (the file
//! appears whole when its upload session commits) or Confluence pages (one page per file, its
//! body replaced in one `PUT`). The package is built in the box under its hidden name as for a
//! box, staged in the journal, sent, and only then marked published; a run interrupted after the
//! send is finished by the next run's recovery, which sends the build again (each connector
//! recognises its own earlier delivery) or, when the build is gone, asks whether it arrived.

use super::{Job, Outbound, PackageFormat, publish};
use crate::audit::Event;
use crate::config::Config;
use crate::config::jobs::RemoteSystem;
use crate::spool::journal::PackageRow;
use crate::targets::confluence::ConfluenceTarget;
use crate::targets::dropbox::DropboxTarget;
use crate::targets::{Conflict, Delivery, Document, Target};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How publishing to a connector failed.
pub(super) enum Remote {
    /// Perhaps it arrived (timeout, 5xx): keep it staged for the next run.
    Transient(String),
    /// Refused for good: roll it back.
    Refused(String),
}

/// The connections of the connectors the jobs publish to, by target name.
#[derive(Default)]
pub(super) struct Connectors {
    dropbox: BTreeMap<String, Arc<DropboxTarget>>,
    confluence: BTreeMap<String, Arc<ConfluenceTarget>>,
}

/// One job's connector.
#[derive(Clone)]
enum Connector {
    Dropbox(Arc<DropboxTarget>),
    Confluence(Arc<ConfluenceTarget>),
}

impl Connectors {
    /// Connections for every connector a job of `config` publishes to, reusing `dropbox` (the
    /// gateway's, shared with deliveries and polls) and making the missing ones.
    pub(super) fn for_jobs(config: &Config, mut dropbox: BTreeMap<String, Arc<DropboxTarget>>) -> Result<Self, String> {
        let mut confluence = BTreeMap::new();
        let used = |name: &str, system: RemoteSystem| {
            config.jobs.iter().any(|j| j.remote.as_ref().is_some_and(|d| d.target == name && d.system == system))
        };
        for t in &config.targets {
            match &t.kind {
                crate::config::TargetKind::Dropbox(cfg)
                    if !dropbox.contains_key(&t.name) && used(&t.name, RemoteSystem::Dropbox) =>
                {
                    let target = DropboxTarget::new(&t.name, (**cfg).clone())
                        .map_err(|e| format!("target `{}`: {e}", t.name))?;
                    dropbox.insert(t.name.clone(), Arc::new(target));
                }
                crate::config::TargetKind::Confluence(cfg) if used(&t.name, RemoteSystem::Confluence) => {
                    let target = ConfluenceTarget::new(&t.name, (**cfg).clone())
                        .map_err(|e| format!("target `{}`: {e}", t.name))?;
                    confluence.insert(t.name.clone(), Arc::new(target));
                }
                _ => {}
            }
        }
        Ok(Self { dropbox, confluence })
    }

    fn of(&self, job: &Job) -> Option<Connector> {
        let d = job.cfg.remote.as_ref()?;
        match d.system {
            RemoteSystem::Dropbox => self.dropbox.get(&d.target).cloned().map(Connector::Dropbox),
            RemoteSystem::Confluence => self.confluence.get(&d.target).cloned().map(Connector::Confluence),
        }
    }
}

impl Connector {
    /// Where a destination is, for audit lines and reasons.
    fn label(&self, destination: &str) -> String {
        match self {
            Connector::Dropbox(t) => format!("dropbox:{}", t.path_of(destination)),
            Connector::Confluence(t) => format!("confluence:{}/{destination}", t.name()),
        }
    }

    async fn send(&self, doc: &Document) -> Delivery {
        match self {
            Connector::Dropbox(t) => t.deliver(doc).await,
            Connector::Confluence(t) => t.publish_page(doc).await,
        }
    }

    async fn exists(&self, destination: &str) -> Result<bool, String> {
        match self {
            Connector::Dropbox(t) => t.exists(destination).await.map_err(|e| e.to_string()),
            Connector::Confluence(t) => t.page_exists(destination).await,
        }
    }

    /// What a name already taken at the destination means: a `files` job's file takes a free
    /// Dropbox name beside it, a zip's name is unique by its sequence number; a Confluence page
    /// of that name is the page this file keeps up to date.
    fn conflict(&self, format: PackageFormat) -> Conflict {
        match (self, format) {
            (Connector::Confluence(_), _) => Conflict::Overwrite,
            (Connector::Dropbox(_), PackageFormat::Files) => Conflict::Rename,
            (Connector::Dropbox(_), _) => Conflict::Reject,
        }
    }
}

impl Outbound {
    /// A package's audit event, naming where it is (the box, or the connector).
    pub(super) fn event(&self, kind: &str, job: &Job, row: &PackageRow) -> Event {
        let event = publish::event(kind, row);
        match self.remote(job, row) {
            Some((connector, destination)) => event.path(&connector.label(&destination)),
            None => event,
        }
    }

    /// The connector and the destination of a package of a job that publishes to one.
    fn remote(&self, job: &Job, row: &PackageRow) -> Option<(Connector, String)> {
        let d = job.cfg.remote.as_ref()?;
        let connector = self.connectors.of(job)?;
        let name = row.path.rsplit('/').next().unwrap_or(&row.path);
        let dest = if d.folder.is_empty() { name.to_string() } else { format!("{}/{name}", d.folder) };
        Some((connector, dest))
    }

    /// Sends a built package to its connector, then drops the build.
    pub(super) async fn upload_remote(&self, job: &Job, row: &PackageRow) -> Result<(), Remote> {
        let (connector, destination) =
            self.remote(job, row).ok_or_else(|| Remote::Refused("the job's target has no connection".into()))?;
        let body =
            publish::box_path(&self.spool, &row.owner, &row.build_path).map_err(|e| Remote::Refused(e.to_string()))?;
        let doc = Document {
            transfer_id: row.id.clone(),
            body: body.clone(),
            destination: destination.clone(),
            sha256: row.sha256.clone(),
            size: u64::try_from(row.size).unwrap_or(0),
            account: row.owner.clone(),
            channel: format!("job:{}", row.job),
            metadata: BTreeMap::new(),
            conflict: connector.conflict(job.cfg.format),
        };
        match connector.send(&doc).await {
            Delivery::Delivered(r) => {
                tracing::info!(path = %r.path, already = r.already_delivered, "package sent to its connector");
                let _ = std::fs::remove_file(&body);
                Ok(())
            }
            Delivery::Retry(why) => Err(Remote::Transient(format!("{}: {why}", connector.label(&destination)))),
            Delivery::Except(why) => Err(Remote::Refused(format!("{}: {why}", connector.label(&destination)))),
        }
    }

    /// Staged packages of a connector job: sent again when the build is still there
    /// (idempotent at the connector), published when the connector has it, else rolled back.
    pub(super) async fn recover_remote(&self, job: &Job) -> Result<usize, String> {
        if job.cfg.remote.is_none() {
            return Ok(0);
        }
        let journal = self.spool.journal();
        let mut finished = 0;
        for row in journal.pending_packages(&job.cfg.name).await.map_err(|e| e.to_string())? {
            let build = publish::box_path(&self.spool, &row.owner, &row.build_path).map_err(|e| e.to_string())?;
            let (connector, destination) = self.remote(job, &row).ok_or("the job's target has no connection")?;
            let there = if build.exists() {
                match self.upload_remote(job, &row).await {
                    Ok(()) => true,
                    Err(Remote::Transient(e)) => return Err(e),
                    // refused for good (its name is taken by another file): roll it back, audited
                    Err(Remote::Refused(e)) => {
                        tracing::warn!(job = %job.cfg.name, path = %row.path, error = %e, "a staged package is rolled back");
                        let _ = std::fs::remove_file(&build);
                        false
                    }
                }
            } else {
                connector.exists(&destination).await?
            };
            if there {
                journal.mark_published(&row.id).await.map_err(|e| e.to_string())?;
                self.spool.audit().record(
                    self.event("package_published", job, &row).reason("finished by recovery after an interruption"),
                );
                finished += 1;
            } else {
                journal.unstage_package(&row.id).await.map_err(|e| e.to_string())?;
                self.spool
                    .audit()
                    .record(self.event("package_rolled_back", job, &row).reason("it never reached its destination"));
            }
        }
        Ok(finished)
    }
}
