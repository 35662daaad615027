//! Pairing a file with its sidecar `<name>.meta.json` (a JSON object of metadata uploaded beside
//! it), when the channel's rules read sidecars (`metadata.sidecar.policy = optional | required`).
//!
//! Both arrive as transfers of their own, in either order. The file is the one that decides:
//! - when it is processed and its sidecar is `received`, it takes it (`received → attached`, one
//!   conditional statement) and its text becomes the rules' `Input::sidecar`;
//! - when no sidecar is there yet, the file waits (deferred, not a delivery attempt) until
//!   `wait_secs` after it was received; a sidecar that arrives meanwhile wakes it;
//! - after the wait it goes on without one (`optional`) or the rules except it (`required`).
//!
//! A sidecar processed on its own waits for its file (at least two minutes); one whose file never
//! came, or came and was finished before it, goes to the exception folder with that reason. After the
//! file's outcome its sidecar's body is removed (delivered) or placed beside it in the exception
//! folder as `<name>.meta.json`, where a resubmit reads it again as overrides.

use crate::rules::{self, SidecarMode, SidecarPolicy};
use crate::spool::Spool;
use crate::spool::journal::{State, TransferRow};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Duration;

/// Largest sidecar read; a bigger one is treated as absent and the rules decide.
const MAX_SIDECAR: u64 = 64 * 1024;

/// How long a sidecar that came first waits for its file at least, whatever `wait_secs` is (that
/// is the file's wait for its sidecar): clients commonly send the sidecar just before the file.
const FILE_WAIT_MIN: Duration = Duration::from_secs(120);

/// What to do with a claimed file before its rules are evaluated.
#[derive(Debug)]
pub(super) enum FileStep {
    /// Evaluate now, with this sidecar, or without.
    Go(Option<Attached>),
    /// Put it back until then; its sidecar may still come.
    Wait(DateTime<Utc>),
}

/// A sidecar a file took: its text, and its transfer (for the audit).
#[derive(Debug)]
pub(super) struct Attached {
    /// The JSON text; none if it is too big or unreadable (the rules decide as without one).
    pub text: Option<String>,
    /// The sidecar's transfer id.
    pub id: String,
    /// Its file name.
    pub name: String,
}

/// What to do with a claimed sidecar transfer.
#[derive(Debug)]
pub(super) enum SidecarStep {
    /// Leave it for its file until then.
    Wait(DateTime<Utc>),
    /// Its file is not coming (or is already finished): except the sidecar with this reason.
    Orphan(String),
}

fn received_at(row: &TransferRow) -> DateTime<Utc> {
    row.received_at
        .as_deref()
        .and_then(|r| DateTime::parse_from_rfc3339(r).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

fn wait_end(row: &TransferRow, policy: SidecarPolicy) -> DateTime<Utc> {
    received_at(row) + chrono::Duration::from_std(policy.wait).unwrap_or_default()
}

fn read(spool: &Spool, row: &TransferRow) -> Option<Attached> {
    let path = spool.body(&row.body_path);
    let text = match std::fs::metadata(&path) {
        Ok(m) if m.len() <= MAX_SIDECAR => std::fs::read_to_string(&path).ok(),
        _ => None,
    };
    Some(Attached { text, id: row.id.clone(), name: row.name.clone() })
}

/// Decides how a file claimed for processing gets its sidecar.
///
/// # Errors
/// Journal errors (the caller leaves the transfer to be processed again).
pub(super) async fn for_file(
    spool: &Spool,
    row: &TransferRow,
    policy: SidecarPolicy,
) -> Result<FileStep, crate::spool::journal::Error> {
    if policy.mode == SidecarMode::None {
        return Ok(FileStep::Go(None));
    }
    let journal = spool.journal();
    let name = rules::sidecar_name(&row.name);
    // One look-up for both: the sidecar taken on an earlier attempt (the delivery is being
    // retried), else one waiting in the box.
    if let Some(s) = journal.sidecar_for(&row.id, &row.account, &row.channel, &name).await? {
        if s.state == State::Attached.as_str() {
            return Ok(FileStep::Go(read(spool, &s)));
        }
        if journal.attach_sidecar(&s.id, &row.id).await? {
            return Ok(FileStep::Go(read(spool, &s)));
        }
        // Another worker holds the sidecar this instant: look again very soon.
        return Ok(FileStep::Wait(Utc::now() + chrono::Duration::milliseconds(200)));
    }
    let end = wait_end(row, policy);
    if Utc::now() < end { Ok(FileStep::Wait(recheck(end))) } else { Ok(FileStep::Go(None)) }
}

/// Decides what happens to a sidecar transfer claimed on its own (`owner` is its file's name).
///
/// # Errors
/// Journal errors.
pub(super) async fn for_sidecar(
    spool: &Spool,
    row: &TransferRow,
    owner: &str,
    policy: SidecarPolicy,
) -> Result<SidecarStep, crate::spool::journal::Error> {
    let journal = spool.journal();
    if let Some(file) = journal.pending_by_name(&row.account, &row.channel, owner).await? {
        // The file is waiting for this very sidecar: make it due now; it takes the sidecar.
        journal.wake(&file.id).await?;
        spool.notify_received();
        return Ok(SidecarStep::Wait(Utc::now() + chrono::Duration::seconds(2)));
    }
    let end = wait_end(row, SidecarPolicy { wait: policy.wait.max(FILE_WAIT_MIN), ..policy });
    if Utc::now() < end {
        return Ok(SidecarStep::Wait(recheck(end)));
    }
    Ok(SidecarStep::Orphan(format!(
        "sidecar {} arrived, but no file {owner} came within {} s or it had already been processed \
         (the file waits {} s for its sidecar)",
        row.name,
        policy.wait.max(FILE_WAIT_MIN).as_secs(),
        policy.wait.as_secs()
    )))
}

/// After the file's outcome: a delivered file's sidecar body is removed; an excepted file's is
/// moved beside it into the exception folder, as `<file>.meta.json`, to be fixed and resubmitted.
pub(super) fn settle(spool: &Spool, sidecar: &TransferRow, excepted_as: Option<PathBuf>) {
    let body = spool.body(&sidecar.body_path);
    let result = match excepted_as {
        None => std::fs::remove_file(&body),
        Some(file) => {
            let shown = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            std::fs::rename(&body, file.with_file_name(rules::sidecar_name(&shown)))
        }
    };
    if let Err(e) = result {
        tracing::warn!(sidecar = %sidecar.id, error = %e, "cannot settle the sidecar's body");
    }
}

/// How long a waiting transfer is deferred at most before it is looked at again: a safety net,
/// as an arriving sidecar wakes its file at once.
const RECHECK: Duration = Duration::from_secs(30);

fn recheck(end: DateTime<Utc>) -> DateTime<Utc> {
    end.min(Utc::now() + chrono::Duration::from_std(RECHECK).unwrap_or_default())
}
