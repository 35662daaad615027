//! Exception folders: a failed transfer's file goes to `exceptions/<channel>/<account>/` with
//! `<name>.error.txt` (for a person) and `<name>.error.json` (for machines) beside it.
//!
//! The journal records `excepted` first; then the body is moved (rename within the spool, then
//! fsync). A crash in between leaves an `excepted` row whose body is still in `inbound/`:
//! [`finish_pending`] completes the move at start-up. A file is never overwritten: a second
//! failure of the same name gets the transfer id in its name.

use crate::spool::Spool;
use crate::spool::journal::TransferRow;
use serde_json::json;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Why a transfer was excepted, as the pipeline knows it.
#[derive(Debug, Clone)]
pub struct Reason {
    /// The check or stage that failed (`accept[0].content`, `delivery`, ...).
    pub rule: String,
    /// `rules/<channel>.toml:<line>`, where there is one.
    pub location: String,
    /// What is wrong.
    pub reason: String,
    /// What to do about it.
    pub remedy: String,
    /// Machine-readable details (the rules' rejection as JSON, or the target's error).
    pub details: serde_json::Value,
}

impl Reason {
    /// One line for the journal and logs.
    pub fn summary(&self) -> String {
        if self.location.is_empty() {
            format!("{} [{}]", self.reason, self.rule)
        } else {
            format!("{} [{} at {}]", self.reason, self.rule, self.location)
        }
    }
}

fn free_name(dir: &Path, name: &str, id: &str) -> PathBuf {
    let first = dir.join(name);
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    let p = Path::new(name);
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    match p.extension().and_then(|e| e.to_str()) {
        Some(ext) => dir.join(format!("{stem}.{id}.{ext}")),
        None => dir.join(format!("{name}.{id}")),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let f = File::create(path)?;
    io::Write::write_all(&mut &f, bytes)?;
    f.sync_all()
}

/// The folder of a channel's exceptions for one account.
pub fn folder(spool: &Spool, channel: &str, account: &str) -> PathBuf {
    spool.exceptions_dir().join(channel).join(account)
}

/// Moves the body of an `excepted` transfer into its exception folder and writes the reason
/// files. Returns the file's path in the folder.
///
/// # Errors
/// The disk failed; the row stays `excepted` and [`finish_pending`] retries at start-up.
pub fn place(spool: &Spool, row: &TransferRow, why: &Reason) -> io::Result<PathBuf> {
    let dir = folder(spool, &row.channel, &row.account);
    // retry/ is where a fixed file is put to resubmit it (see `resubmit`).
    fs::create_dir_all(dir.join(super::resubmit::RETRY))?;
    fs::create_dir_all(dir.join(super::resubmit::DISCARD))?;
    let dest = free_name(&dir, &row.name, &row.id);
    let shown = dest.file_name().and_then(|n| n.to_str()).unwrap_or(&row.name).to_string();
    let text = format!(
        "wharf could not deliver this file.\n\n\
         File:      {shown}\nTransfer:  {id}\nAccount:   {account}\nChannel:   {channel}\n\
         Received:  {received} over {protocol}\nSize:      {size} bytes\nSHA-256:   {sha}\nAttempt:   {attempt}\n\n\
         What is wrong:\n  {reason}\n\nRule:      {rule}{loc}\n\nWhat to do:\n  {remedy}\n",
        id = row.id,
        account = row.account,
        channel = row.channel,
        received = row.received_at.as_deref().unwrap_or("?"),
        protocol = row.protocol,
        size = row.size.unwrap_or(0),
        sha = row.sha256.as_deref().unwrap_or("?"),
        attempt = row.attempt,
        reason = why.reason,
        rule = why.rule,
        loc = if why.location.is_empty() { String::new() } else { format!(" ({})", why.location) },
        remedy = why.remedy,
    );
    let machine = json!({
        "transfer_id": row.id,
        "file": shown,
        "original_name": row.name,
        "account": row.account,
        "channel": row.channel,
        "received_at": row.received_at,
        "protocol": row.protocol,
        "size": row.size,
        "sha256": row.sha256,
        "attempt": row.attempt,
        "parent_id": row.parent_id,
        "rule": why.rule,
        "location": why.location,
        "reason": why.reason,
        "remedy": why.remedy,
        "details": why.details,
    });
    // Reason files first: a file in an exception folder always has its reason beside it.
    write_synced(&dir.join(format!("{shown}.error.txt")), text.as_bytes())?;
    write_synced(&dir.join(format!("{shown}.error.json")), &serde_json::to_vec_pretty(&machine)?)?;
    fs::rename(spool.body(&row.body_path), &dest)?;
    File::open(&dir)?.sync_all()?;
    Ok(dest)
}

/// Start-up: completes the moves of `excepted` transfers whose body is still in `inbound/`, and
/// removes the bodies of `delivered` ones (a crash right after the journal commit). Returns how
/// many bodies were moved and removed.
///
/// # Errors
/// Journal errors.
pub async fn finish_pending(spool: &Spool) -> Result<(usize, usize), crate::spool::journal::Error> {
    use crate::spool::journal::State;
    let mut moved = 0;
    for row in spool.journal().in_state(State::Excepted).await? {
        if spool.body(&row.body_path).exists() {
            let why = Reason {
                rule: "recovery".into(),
                location: String::new(),
                reason: row.reason.clone().unwrap_or_else(|| "excepted before a restart".into()),
                remedy: "See the reason; fix the file and send it again.".into(),
                details: serde_json::Value::Null,
            };
            match place(spool, &row, &why) {
                Ok(_) => moved += 1,
                Err(e) => tracing::error!(transfer = %row.id, error = %e, "cannot move an excepted file"),
            }
        }
    }
    let mut removed = 0;
    for row in spool.journal().in_state(State::Delivered).await? {
        if fs::remove_file(spool.body(&row.body_path)).is_ok() {
            removed += 1;
        }
    }
    Ok((moved, removed))
}
