//! Resubmit: a file moved (renamed if needed) into `exceptions/<channel>/<account>/retry/` goes
//! through the pipeline again, as a new attempt linked to the first transfer of its lineage.
//! A `<name>.meta.json` beside it in `retry/` carries metadata overrides (the rules accept only
//! the fields they mark overridable).
//!
//! The folders are scanned every second. A file is taken once it has been seen twice with the
//! same size and modification time (files written over SFTP/FTP appear whole, by rename; this
//! covers files copied in by other means). Taking it is crash-safe: the file is hard-linked into
//! the inbound box, the transfer is journaled `received`, and only then is it removed from
//! `retry/`; a crash in between leaves it in `retry/`, and the next scan finds the transfer it
//! already made (same content, protocol `resubmit`) instead of making a second one.
//!
//! Moving a file into `discard/` instead drops the exception: the transfer becomes `discarded`,
//! the file and its reason files are removed, and the decision is audited.
//!
//! The original is found by, in order: an `.error.json` of the same name whose file is gone from
//! the folder; the newest excepted transfer of the account with the same content; the only
//! `.error.json` in the folder whose file is gone. Its reason files are removed once the fixed
//! file is resubmitted. Without an original, the file is still processed, as a first attempt.

use crate::audit::Event;
use crate::spool::Spool;
use crate::spool::journal::{NewTransfer, TransferRow};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Name of the resubmit folder inside each exception folder.
pub const RETRY: &str = "retry";
/// Name of the folder a file is moved into to drop it (state `discarded`, audited).
pub const DISCARD: &str = "discard";
/// Largest accepted overrides file.
const MAX_OVERRIDES: u64 = 64 * 1024;

/// A file waiting in a `retry/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    channel: String,
    account: String,
    path: PathBuf,
    name: String,
}

type Seen = HashMap<PathBuf, (u64, Option<SystemTime>)>;

fn is_reason_or_override(name: &str) -> bool {
    name.ends_with(".meta.json")
        || name.ends_with(".error.txt")
        || name.ends_with(".error.json")
        || name.starts_with('.')
}

/// Lists the files of every `retry/` folder that have been stable since the previous scan.
fn scan(root: &Path, sub: &str, seen: &mut Seen) -> Vec<Candidate> {
    let mut now_seen = Seen::new();
    let mut ready = Vec::new();
    let dirs = |p: &Path| -> Vec<(String, PathBuf)> {
        fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
                    .filter(|(n, _)| crate::config::is_valid_name(n))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (channel, cdir) in dirs(root) {
        for (account, adir) in dirs(&cdir) {
            let Ok(entries) = fs::read_dir(adir.join(sub)) else { continue };
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                // Regular files only: links and folders are never taken.
                let Ok(m) = e.metadata() else { continue };
                if !m.is_file() || is_reason_or_override(&name) {
                    continue;
                }
                let sig = (m.len(), m.modified().ok());
                if seen.get(&e.path()) == Some(&sig) {
                    ready.push(Candidate { channel: channel.clone(), account: account.clone(), path: e.path(), name });
                }
                now_seen.insert(e.path(), sig);
            }
        }
    }
    *seen = now_seen;
    ready
}

/// The `.error.json` files of a folder whose file is no longer there, as (name, transfer id).
fn orphaned_reasons(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(n) = e.file_name().to_str().map(str::to_string) else { continue };
        let Some(file) = n.strip_suffix(".error.json") else { continue };
        if dir.join(file).exists() {
            continue;
        }
        let id = fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("transfer_id").and_then(|t| t.as_str()).map(str::to_string));
        if let Some(id) = id {
            out.push((file.to_string(), id));
        }
    }
    out
}

/// Watches every `retry/` folder until shutdown.
pub async fn watch(spool: Arc<Spool>, stop: CancellationToken) {
    let mut seen = Seen::new();
    let mut seen_discard = Seen::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let root = spool.exceptions_dir();
        let (found, dropped, s, sd) = tokio::task::spawn_blocking(move || {
            let r = scan(&root, RETRY, &mut seen);
            let d = scan(&root, DISCARD, &mut seen_discard);
            (r, d, seen, seen_discard)
        })
        .await
        .unwrap_or_default();
        (seen, seen_discard) = (s, sd);
        for c in dropped {
            if let Err(e) = discard(&spool, &c).await {
                tracing::error!(path = %c.path.display(), error = %e, "cannot discard");
            }
        }
        for c in found {
            if let Err(e) = resubmit(&spool, &c).await {
                tracing::error!(path = %c.path.display(), error = %e, "cannot resubmit");
            }
        }
    }
}

/// Drops an exception for good: the transfer becomes `discarded` (found like a resubmit's
/// original), the file, its reason files and its kept sidecar are removed, and the decision is audited.
async fn discard(spool: &Arc<Spool>, c: &Candidate) -> Result<(), String> {
    let discard_dir = c.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let folder = discard_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let orphans = orphaned_reasons(&folder);
    let found = orphans.iter().find(|(n, _)| *n == c.name).or(match orphans.as_slice() {
        [only] => Some(only),
        _ => None,
    });
    let journal = spool.journal();
    let mut ev = Event::new("discarded").account(&c.account).path(&c.name);
    if let Some((n, id)) = found {
        let reason = format!("discarded by moving it into {DISCARD}/");
        journal.mark_discarded(id, &reason).await.map_err(|e| e.to_string())?;
        let _ = fs::remove_file(folder.join(format!("{n}.error.txt")));
        let _ = fs::remove_file(folder.join(format!("{n}.error.json")));
        let _ = fs::remove_file(folder.join(crate::rules::sidecar_name(n)));
        ev = ev.transfer(id).reason(&reason);
    } else {
        ev = ev.reason("no exception of this name was found; the file was removed");
    }
    fs::remove_file(&c.path).map_err(|e| e.to_string())?;
    tracing::info!(name = %c.name, transfer = ?found.map(|f| &f.1), "discarded");
    spool.audit().record(ev);
    Ok(())
}

async fn resubmit(spool: &Arc<Spool>, c: &Candidate) -> Result<(), String> {
    let path = c.path.clone();
    let (size, sha) = tokio::task::spawn_blocking(move || crate::spool::writer::sha256_file(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let journal = spool.journal();
    let retry_dir = c.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let folder = retry_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let overrides_path = retry_dir.join(format!("{}.meta.json", c.name));

    // Already taken before a crash: finish by removing it from retry/.
    if let Some(done) =
        journal.latest_with_sha(&c.channel, &c.account, &sha, Some("resubmit")).await.map_err(|e| e.to_string())?
        && done.name == c.name
        && done.state != "excepted"
    {
        let _ = fs::remove_file(&c.path);
        let _ = fs::remove_file(&overrides_path);
        return Ok(());
    }

    // The original transfer.
    let orphans = orphaned_reasons(&folder);
    let mut parent: Option<TransferRow> = None;
    let mut reason_name: Option<String> = None;
    if let Some((n, id)) = orphans.iter().find(|(n, _)| *n == c.name) {
        parent = journal.get(id).await.map_err(|e| e.to_string())?;
        reason_name = Some(n.clone());
    }
    if parent.is_none()
        && let Some(p) = journal.latest_with_sha(&c.channel, &c.account, &sha, None).await.map_err(|e| e.to_string())?
        && p.state == "excepted"
    {
        reason_name = orphans.iter().find(|(_, id)| *id == p.id).map(|(n, _)| n.clone());
        parent = Some(p);
    }
    if parent.is_none()
        && let [(n, id)] = orphans.as_slice()
    {
        parent = journal.get(id).await.map_err(|e| e.to_string())?;
        reason_name = Some(n.clone());
    }

    let overrides = match fs::metadata(&overrides_path) {
        Ok(m) if m.len() > MAX_OVERRIDES => {
            return Err(format!("{} is larger than {MAX_OVERRIDES} bytes; not resubmitted", overrides_path.display()));
        }
        Ok(_) => fs::read_to_string(&overrides_path).ok(),
        Err(_) => None,
    };

    let id = ulid::Ulid::generate().to_string();
    let body_path = format!("inbound/{}/{}/{id}", c.channel, c.account);
    let body = spool.body(&body_path);
    let mount = parent.as_ref().map_or_else(|| c.channel.clone(), |p| p.mount.clone());
    let (src, dst) = (c.path.clone(), body.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = dst.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
        fs::create_dir_all(dir)?;
        fs::hard_link(&src, &dst)?;
        fs::File::open(&dst)?.sync_all()?;
        fs::File::open(dir)?.sync_all()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot take {} into the spool: {e}", c.path.display()))?;

    let attempt = parent.as_ref().map_or(1, |p| p.attempt + 1);
    let first = parent.as_ref().map(|p| p.parent_id.clone().unwrap_or_else(|| p.id.clone()));
    let t = NewTransfer {
        id: id.clone(),
        channel: c.channel.clone(),
        account: c.account.clone(),
        mount,
        name: c.name.clone(),
        protocol: "resubmit".into(),
        remote_addr: None,
        body_path,
    };
    if let Err(e) = journal.insert_resubmitted(&t, size, &sha, attempt, first.as_deref(), overrides.as_deref()).await {
        let _ = fs::remove_file(&body);
        return Err(e.to_string());
    }
    let _ = fs::remove_file(&c.path);
    let _ = fs::remove_file(&overrides_path);
    if let Some(n) = &reason_name {
        let _ = fs::remove_file(folder.join(format!("{n}.error.txt")));
        let _ = fs::remove_file(folder.join(format!("{n}.error.json")));
    }
    tracing::info!(transfer = %id, parent = ?first, attempt, name = %c.name, "resubmitted");
    let mut ev = Event::new("resubmitted")
        .account(&c.account)
        .protocol("resubmit")
        .path(&c.name)
        .transfer(&id)
        .size(size)
        .sha256(&sha);
    ev.reason = Some(match &first {
        Some(p) => {
            format!("attempt {attempt} of transfer {p}{}", if overrides.is_some() { ", with overrides" } else { "" })
        }
        None => "no original transfer found; processed as a first attempt".into(),
    });
    spool.audit().record(ev);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stable_regular_files_are_taken() {
        let dir = tempfile::tempdir().expect("tmp");
        let retry = dir.path().join("invoices/acme/retry");
        fs::create_dir_all(&retry).expect("mkdir");
        fs::write(retry.join("a.pdf"), b"x").expect("write");
        fs::write(retry.join("a.pdf.meta.json"), b"{}").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", retry.join("link.pdf")).expect("symlink");
        let mut seen = Seen::new();
        assert!(scan(dir.path(), RETRY, &mut seen).is_empty(), "first sight: not yet stable");
        let ready = scan(dir.path(), RETRY, &mut seen);
        assert_eq!(ready.len(), 1, "{ready:?}");
        assert_eq!(
            (ready[0].channel.as_str(), ready[0].account.as_str(), ready[0].name.as_str()),
            ("invoices", "acme", "a.pdf")
        );
        fs::write(retry.join("a.pdf"), b"grown").expect("write");
        assert!(scan(dir.path(), RETRY, &mut seen).is_empty(), "changed since the last scan: wait");
    }
}
