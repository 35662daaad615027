//! The loop that fires scheduled jobs and sweeps expired packages. It reads time from a
//! [`Clock`], records each fire in the journal before the run starts (so a restart does not
//! repeat it) and catches up once after downtime ([`super::schedule::Schedule::due`]). A run that
//! fails, is interrupted or finds the job busy is not repeated before the next occurrence: what
//! it did not export is still due then (or at once with `wharf outbound run`).

use super::schedule::Clock;
use super::{Outbound, Quiet};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often expired packages are looked for when no job is due sooner.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn parse(t: Option<&str>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// Runs until `stop`: fires due jobs (each in its own task) and sweeps retention.
pub async fn run(outbound: Arc<Outbound>, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let journal = outbound.spool().journal().clone();
    // A job seen for the first time starts counting from now: it does not fire for the past.
    for job in outbound.jobs().filter(|j| j.cfg.schedule.is_some()) {
        match journal.job_state(&job.cfg.name).await {
            Ok(s) if s.last_fire.is_none() => {
                if let Err(e) = journal.set_last_fire(&job.cfg.name, clock.now()).await {
                    tracing::warn!(job = %job.cfg.name, error = %e, "cannot record the job's start");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(job = %job.cfg.name, error = %e, "cannot read the job's state"),
        }
    }
    loop {
        let now = clock.now();
        let mut wake = now + chrono::Duration::from_std(SWEEP_EVERY).unwrap_or_default();
        for job in outbound.jobs() {
            let Some(schedule) = &job.cfg.schedule else { continue };
            let name = job.cfg.name.clone();
            let last = match journal.job_state(&name).await {
                Ok(s) => parse(s.last_fire.as_deref()).unwrap_or(now),
                Err(e) => {
                    tracing::warn!(job = %name, error = %e, "cannot read the job's state");
                    continue;
                }
            };
            if let Some(fire) = schedule.due(last, now) {
                if let Err(e) = journal.set_last_fire(&name, fire).await {
                    tracing::warn!(job = %name, error = %e, "cannot record the fire; not running");
                    continue;
                }
                tracing::info!(job = %name, scheduled = %fire, "scheduled run");
                let ob = outbound.clone();
                tokio::spawn(async move {
                    match ob.run_as_of(&name, fire, Arc::new(Quiet)).await {
                        Ok(r) => tracing::info!(job = %name, result = %r.summary(), "scheduled run done"),
                        Err(e) => tracing::warn!(job = %name, error = %e, "scheduled run failed"),
                    }
                });
            }
            if let Some(next) = schedule.next_after(now) {
                wake = wake.min(next);
            }
        }
        outbound.sweep(now).await;
        tokio::select! {
            () = clock.sleep_until(wake) => {}
            () = stop.cancelled() => return,
        }
    }
}
