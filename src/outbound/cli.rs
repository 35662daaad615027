//! `wharf outbound list` and `wharf outbound run JOB`: the same runs the scheduler makes, by
//! hand, with a progress bar when stderr is a terminal.

use super::{Outbound, Progress, Quiet, RunError};
use crate::audit::Audit;
use crate::config::Config;
use crate::spool::Spool;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;

/// A terminal progress bar over the bytes of each package.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn package(&self, name: &str, items: usize, bytes: u64) {
        self.0.reset();
        self.0.set_length(bytes);
        self.0.set_message(format!("{name} ({items} item(s))"));
    }
    fn copied(&self, n: u64) {
        self.0.inc(n);
    }
}

async fn open(config: &Config) -> Result<Outbound> {
    let audit = Arc::new(Audit::open(&config.spool.audit_log).context("opening the audit trail")?);
    let spool = Spool::open(&config.spool, audit).await.context("opening the spool")?;
    Outbound::new(spool, config).map_err(anyhow::Error::msg)
}

/// Prints every job: schedule, next run, last run and its result.
///
/// # Errors
/// The journal cannot be opened or read.
pub async fn list(config: &Config) -> Result<()> {
    let ob = open(config).await?;
    if config.jobs.is_empty() {
        println!("no [[jobs]] in {}", config.source.display());
    }
    let now = chrono::Utc::now();
    for job in ob.jobs() {
        let c = &job.cfg;
        let state = ob.spool().journal().job_state(&c.name).await?;
        let (schedule, next) = match &c.schedule {
            Some(s) => (
                format!("{} ({})", s.as_str(), s.tz()),
                s.next_after(now).map_or("never".into(), |t| t.with_timezone(&c.tz).to_rfc3339()),
            ),
            None => ("by hand only".into(), "-".into()),
        };
        println!("{}  → {}:/{}", c.name, c.account, c.folder.join("/"));
        println!("    schedule  {schedule}\n    next run  {next}");
        println!(
            "    last run  {}  {}",
            state.last_run.as_deref().unwrap_or("never"),
            state.last_result.as_deref().unwrap_or("")
        );
    }
    ob.spool().journal().close().await;
    Ok(())
}

/// Runs a job now. Returns false when the run failed (its reason is printed).
///
/// # Errors
/// The spool or journal cannot be opened.
pub async fn run(config: &Config, job: &str) -> Result<bool> {
    let ob = open(config).await?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg}\n{wide_bar} {bytes}/{total_bytes} {bytes_per_sec}") {
            b.set_style(style);
        }
        b
    });
    let progress: Arc<dyn Progress> = match &bar {
        Some(b) => Arc::new(Bar(b.clone())),
        None => Arc::new(Quiet),
    };
    let result = ob.run(job, progress).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    ob.spool().journal().close().await;
    match result {
        Ok(r) => {
            if r.recovered > 0 {
                println!("finished {} package(s) an interrupted run had left", r.recovered);
            }
            println!("{job}: {}", r.summary());
            for p in &r.packages {
                println!("  {}  {} bytes  sha256 {}  {} item(s)", p.path, p.size, p.sha256, p.items);
            }
            Ok(true)
        }
        Err(e @ (RunError::UnknownJob(_) | RunError::Busy(_) | RunError::Failed(_))) => {
            eprintln!("{job}: {e}");
            Ok(false)
        }
    }
}
