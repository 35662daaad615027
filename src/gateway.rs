//! Wiring of a running gateway: opens the audit trail and the spool, recovers, builds the account
//! table, binds the listeners and runs the accept loops until shutdown.

use crate::accounts::Accounts;
use crate::audit::{self, Audit};
use crate::config::{Config, TargetKind};
use crate::frontends::{ftp::FtpFrontend, sftp};
use crate::pipeline::Pipeline;
use crate::rules::Rules;
use crate::rules::live::LiveRules;
use crate::spool::{self, Spool};
use crate::targets::{Target, fs::FsTarget};
use crate::vfs::Vfs;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The audit trail cannot be opened.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// The spool or journal cannot be opened or recovered.
    #[error(transparent)]
    Spool(#[from] spool::Error),
    /// A listener cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The SSH host key cannot be loaded or created.
    #[error("sftp host key: {0}")]
    HostKey(String),
    /// The FTPS certificate or key is unusable.
    #[error("ftps: {0}")]
    Tls(String),
    /// Something else needed at start-up failed.
    #[error("{0}")]
    Other(String),
}

/// A started gateway.
pub struct Running {
    /// The bound SFTP address (useful with port 0).
    pub sftp_addr: Option<SocketAddr>,
    /// The bound FTP address.
    pub ftp_addr: Option<SocketAddr>,
    /// The bound admin HTTP address.
    pub admin_addr: Option<SocketAddr>,
    /// What start-up recovery did.
    pub recovery: spool::Recovery,
    /// The spool (for inspection by tools and tests).
    pub spool: Arc<Spool>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting connections and waits for the accept loops to end.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.spool.journal().close().await;
    }

    /// Waits until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Starts a gateway from a validated config.
///
/// # Errors
/// Anything that prevents serving: spool, journal, keys, certificates, bind failures.
pub async fn start(config: Config) -> Result<Running, Error> {
    let audit = Arc::new(Audit::open(&config.spool.audit_log)?);
    let spool = Spool::open(&config.spool, audit.clone()).await?;
    let recovery = spool.recover().await?;
    tracing::info!(
        aborted = recovery.aborted.len(),
        stray_temp_files = recovery.stray_temp_files,
        waiting = recovery.received,
        "spool recovered"
    );
    let accounts = Arc::new(Accounts::new(&config, audit.clone()).map_err(Error::Other)?);
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let rules = load_rules(&config)?.map(LiveRules::new);
    if let (Some(live), Some(p)) = (&rules, &config.pipeline) {
        let cfg = config.clone();
        live.watch(
            p.rules_dir.clone(),
            move || load_rules(&cfg).map_err(|e| e.to_string()).and_then(|r| r.ok_or_else(|| "no rules".into())),
            shutdown.clone(),
        )
        .map_err(|e| Error::Other(format!("cannot watch {}: {e}", p.rules_dir.display())))?;
    }
    let vfs = Vfs::new(spool.clone(), rules.clone());

    let mut sftp_addr = None;
    if let Some(s) = &config.sftp {
        let key = sftp::load_or_create_host_key(&s.host_key).map_err(Error::HostKey)?;
        let ssh = Arc::new(sftp::ssh_config(s, key, config.sessions.auth_failure_delay, config.sessions.idle_timeout));
        let listener = TcpListener::bind(s.listen).await.map_err(|source| Error::Bind { addr: s.listen, source })?;
        sftp_addr = listener.local_addr().ok();
        let (accounts, vfs, stop) = (accounts.clone(), vfs.clone(), shutdown.clone());
        tasks.spawn(accept_loop(listener, stop, move |stream, peer| {
            let guard = accounts.connect(peer.ip())?;
            let conn = sftp::Connection::new(accounts.clone(), vfs.clone(), peer, guard);
            let ssh = ssh.clone();
            Some(async move {
                match russh::server::run_stream(ssh, stream, conn).await {
                    Ok(session) => {
                        if let Err(e) = session.await {
                            tracing::info!(%peer, reason = %e, "ssh session closed");
                        }
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "ssh handshake failed"),
                }
            })
        }));
    }

    let mut ftp_addr = None;
    if let Some(f) = &config.ftp {
        let frontend = Arc::new(FtpFrontend::new(f, accounts.clone(), vfs.clone()).map_err(Error::Tls)?);
        let listener = TcpListener::bind(f.listen).await.map_err(|source| Error::Bind { addr: f.listen, source })?;
        ftp_addr = listener.local_addr().ok();
        let (accounts, stop) = (accounts.clone(), shutdown.clone());
        tasks.spawn(accept_loop(listener, stop, move |stream, peer| {
            let guard = accounts.connect(peer.ip())?;
            let frontend = frontend.clone();
            Some(async move {
                frontend.serve(stream).await;
                drop(guard);
            })
        }));
    }

    // One connection per Dropbox target, shared by deliveries, polls and outbound jobs: one
    // concurrency limit, one token, one commit queue (Dropbox takes one write at a time).
    let dropbox = dropbox_targets(&config).map_err(Error::Other)?;
    if let (Some(p), Some(rules)) = (&config.pipeline, rules) {
        let targets = build_targets(&config, &dropbox).map_err(Error::Other)?;
        let mut engines = crate::pipeline::workflow::Engines::new();
        for w in &config.workflows {
            let client = crate::targets::workflow::WorkflowClient::new(w)
                .map_err(|e| Error::Other(format!("workflow connection {}: {e}", w.name)))?;
            engines.insert(w.name.clone(), Arc::new(client));
        }
        let pipeline = Arc::new(Pipeline::new(spool.clone(), rules, targets, &config).with_workflows(engines));
        pipeline.start(p.workers, shutdown.clone(), &mut tasks).await.map_err(|e| Error::Spool(e.into()))?;
        for poll in &config.polls {
            let source = poll_source(poll, &config, &dropbox).map_err(Error::Other)?;
            let poller = crate::intake::poll::Poller::new(spool.clone(), poll.clone(), source);
            tasks.spawn(poller.run(shutdown.clone()));
            tracing::info!(poll = %poll.name, channel = %poll.channel, "polling source");
        }
        for hf in &config.hot_folders {
            crate::intake::hotfolder::start(spool.clone(), hf.clone(), shutdown.clone()).map_err(Error::Other)?;
            tracing::info!(path = %hf.path.display(), channel = %hf.channel, "watching hot folder");
        }
    }

    if !config.jobs.is_empty() {
        let outbound = crate::outbound::Outbound::with_dropbox(spool.clone(), &config, dropbox.clone());
        let outbound = Arc::new(outbound.map_err(Error::Other)?);
        outbound.recover_all().await;
        let clock = Arc::new(crate::outbound::schedule::SystemClock);
        tasks.spawn(crate::outbound::scheduler::run(outbound, clock, shutdown.clone()));
        tracing::info!(jobs = config.jobs.len(), "outbound scheduler started");
    }

    let mut admin_addr = None;
    if let Some(a) = &config.admin {
        let mut hooks = Vec::new();
        for w in &config.webhooks {
            let mut hook = crate::intake::webhook::Webhook::new(spool.clone(), w.clone())
                .map_err(|e| Error::Other(format!("webhook {}: its secret: {e}", w.name)))?;
            let cs = w.package_from.as_ref().and_then(|t| config.targets.iter().find(|x| &x.name == t));
            if let Some(TargetKind::Contentstack(cfg)) = cs.map(|t| &t.kind) {
                let fail = |e: String| Error::Other(format!("webhook {}: package_from: {e}", w.name));
                let api = crate::targets::contentstack::client::Client::new(cfg).map_err(|e| fail(e.to_string()))?;
                let packager = crate::intake::webhook_package::Packager::new(api).map_err(|e| fail(e.to_string()))?;
                hook = hook.with_packager(packager);
            }
            hooks.push(hook);
        }
        let listener = TcpListener::bind(a.listen).await.map_err(|source| Error::Bind { addr: a.listen, source })?;
        admin_addr = listener.local_addr().ok();
        let router = crate::admin::Admin::new(spool.clone(), hooks).router(a.max_body_bytes);
        tasks.spawn(crate::admin::serve(listener, router, shutdown.clone()));
        tracing::info!(webhooks = config.webhooks.len(), "admin listener started");
    }

    Ok(Running { sftp_addr, ftp_addr, admin_addr, recovery, spool, shutdown, tasks })
}

/// Loads the rule files of the pipeline (if configured) and checks them against the config:
/// every target a rule names exists, every inbound channel has rules.
///
/// # Errors
/// Every problem, located in the rule file or the config.
pub fn load_rules(config: &Config) -> Result<Option<Rules>, Error> {
    let Some(p) = &config.pipeline else { return Ok(None) };
    let rules = Rules::load_dir(&p.rules_dir).map_err(|e| Error::Other(e.to_string()))?;
    let mut problems = Vec::new();
    for set in rules.channels() {
        if !config.targets.iter().any(|t| t.name == set.target()) {
            problems.push(format!(
                "{}: target.name: no target named `{}` in {} (known: {})",
                set.source().display(),
                set.target(),
                config.source.display(),
                config.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for set in rules.channels() {
        if let Some(engine) = set.workflow_engine()
            && config.workflow(engine).is_none()
        {
            problems.push(format!(
                "{}: workflow.engine: no [[workflows]] named `{engine}` in {} (known: {})",
                set.source().display(),
                config.source.display(),
                config.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for a in &config.accounts {
        for m in &a.mounts {
            if let crate::config::BoxKind::Inbound { channel } = &m.kind
                && rules.get(channel).is_none()
            {
                problems.push(format!(
                    "{}: accounts `{}` mount `/{}`: channel `{channel}` has no rule file {}",
                    config.source.display(),
                    a.name,
                    m.name,
                    p.rules_dir.join(format!("{channel}.toml")).display()
                ));
            }
        }
    }
    for p in &config.polls {
        if rules.get(&p.channel).is_none() {
            problems.push(format!(
                "{}: poll {}: channel `{}` has no rule file",
                config.source.display(),
                p.name,
                p.channel
            ));
        }
    }
    for w in &config.webhooks {
        if rules.get(&w.channel).is_none() {
            problems.push(format!(
                "{}: webhook {}: channel `{}` has no rule file",
                config.source.display(),
                w.name,
                w.channel
            ));
        }
    }
    for h in &config.hot_folders {
        if rules.get(&h.channel).is_none() {
            problems.push(format!(
                "{}: hot folder {}: channel `{}` has no rule file",
                config.source.display(),
                h.path.display(),
                h.channel
            ));
        }
    }
    if problems.is_empty() { Ok(Some(rules)) } else { Err(Error::Other(problems.join("\n"))) }
}

/// The source a poll reads: the connection of its target.
fn poll_source(
    poll: &crate::config::polls::PollConfig,
    config: &Config,
    dropbox: &DropboxTargets,
) -> Result<Arc<dyn crate::intake::poll::Source>, String> {
    use crate::intake::poll::{confluence::ConfluenceSource, dropbox::DropboxSource};
    let failed = |e: &dyn std::fmt::Display| format!("poll `{}`: target `{}`: {e}", poll.name, poll.target);
    let target = config.targets.iter().find(|t| t.name == poll.target);
    match (target.map(|t| &t.kind), &poll.confluence) {
        (Some(TargetKind::Dropbox(_)), None) => {
            let target = dropbox.get(&poll.target).ok_or_else(|| failed(&"no connection"))?;
            Ok(Arc::new(DropboxSource::new(poll.clone(), target.client().clone())))
        }
        (Some(TargetKind::Confluence(cfg)), Some(c)) => {
            let client = crate::targets::confluence::client::Client::new(cfg).map_err(|e| failed(&e))?;
            Ok(Arc::new(ConfluenceSource::new(&poll.name, c.clone(), Arc::new(client))))
        }
        (Some(TargetKind::Canto(cfg)), None) if config.canto_polls.contains_key(&poll.name) => {
            let client = crate::targets::canto::client::Client::new(cfg).map_err(|e| failed(&e))?;
            let settings = config.canto_polls.get(&poll.name).cloned().unwrap_or_default();
            Ok(Arc::new(crate::intake::poll::canto::CantoSource::new(&poll.name, settings, Arc::new(client))))
        }
        (Some(TargetKind::Contentstack(cfg)), None) if poll.contentstack.is_some() => {
            let client = crate::targets::contentstack::client::Client::new(cfg).map_err(|e| failed(&e))?;
            let settings = poll.contentstack.clone().ok_or_else(|| failed(&"no query"))?;
            Ok(Arc::new(crate::intake::poll::contentstack::ContentstackSource::new(settings, Arc::new(client))))
        }
        _ => Err(format!("poll `{}`: no source target `{}` of its type", poll.name, poll.target)),
    }
}

/// The Dropbox targets, by name.
type DropboxTargets = std::collections::BTreeMap<String, Arc<crate::targets::dropbox::DropboxTarget>>;

fn dropbox_targets(config: &Config) -> Result<DropboxTargets, String> {
    let mut out = DropboxTargets::new();
    for t in &config.targets {
        if let TargetKind::Dropbox(cfg) = &t.kind {
            let target = crate::targets::dropbox::DropboxTarget::new(&t.name, (**cfg).clone())
                .map_err(|e| format!("{}: target `{}`: {e}", config.source.display(), t.name))?;
            out.insert(t.name.clone(), Arc::new(target));
        }
    }
    Ok(out)
}

fn build_targets(config: &Config, dropbox: &DropboxTargets) -> Result<HashMap<String, Arc<dyn Target>>, String> {
    config
        .targets
        .iter()
        .map(|t| {
            let target: Arc<dyn Target> = match &t.kind {
                TargetKind::Fs { root } => Arc::new(FsTarget::new(&t.name, root.clone())),
                TargetKind::OpenText(cfg) => Arc::new(
                    crate::targets::opentext::OpenTextTarget::new(&t.name, (**cfg).clone())
                        .map_err(|e| format!("{}: target `{}`: {e}", config.source.display(), t.name))?,
                ),
                TargetKind::Dropbox(_) => match dropbox.get(&t.name) {
                    Some(d) => d.clone(),
                    None => return Err(format!("target `{}`: no connection", t.name)),
                },
                TargetKind::Confluence(cfg) => Arc::new(
                    crate::targets::confluence::ConfluenceTarget::new(&t.name, (**cfg).clone())
                        .map_err(|e| format!("{}: target `{}`: {e}", config.source.display(), t.name))?,
                ),
                TargetKind::Canto(cfg) => Arc::new(
                    crate::targets::canto::CantoTarget::new(&t.name, (**cfg).clone())
                        .map_err(|e| format!("{}: target `{}`: {e}", config.source.display(), t.name))?,
                ),
                // One target (one client, one pair of limiters) shared by every worker.
                TargetKind::Contentstack(cfg) => Arc::new(
                    crate::targets::contentstack::ContentstackTarget::new(&t.name, (**cfg).clone())
                        .map_err(|e| format!("{}: target `{}`: {e}", config.source.display(), t.name))?,
                ),
            };
            Ok((t.name.clone(), target))
        })
        .collect()
}

/// Accepts connections until shutdown; `handle` returns the connection's task, or `None` to refuse.
async fn accept_loop<F, Fut>(listener: TcpListener, stop: CancellationToken, handle: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Option<Fut> + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut backoff = std::time::Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = std::time::Duration::from_millis(10);
                let _ = stream.set_nodelay(true);
                match handle(stream, peer) {
                    Some(task) => {
                        tokio::spawn(task);
                    }
                    None => tracing::warn!(%peer, "connection refused: too many connections from this address"),
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            }
        }
    }
}
