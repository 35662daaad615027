//! Hot folders: a local folder (a scanner's output, a share) whose files become transfers.
//!
//! A file is taken only once it is complete: a notify event (or the one-second tick, for
//! filesystems that send none) triggers a scan, and a file is taken when its size and
//! modification time are unchanged since the previous scan. It is copied into the spool through
//! the same [`crate::spool::Upload`] as an SFTP upload (fsync, rename, journal `received`), then
//! removed from the folder. A crash between the commit and the removal would take it twice: before
//! taking a file, the journal is asked for a hot-folder transfer of the same name and content, and
//! if there is one the file is only removed.
//!
//! Only regular files directly in the folder are taken; links, folders and names starting with
//! `.` (temporary files of copying tools) are left alone.

use crate::config::HotFolderConfig;
use crate::spool::{Origin, Spool};
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

type Seen = HashMap<PathBuf, (u64, Option<SystemTime>)>;

/// Files that were stable since the previous scan.
fn scan(dir: &std::path::Path, seen: &mut Seen) -> Vec<(PathBuf, String)> {
    let mut now = Seen::new();
    let mut ready = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
        let Ok(m) = e.metadata() else { continue };
        if name.starts_with('.') || !m.is_file() || crate::vfs::path::check_name(&name).is_err() {
            continue;
        }
        let sig = (m.len(), m.modified().ok());
        if seen.get(&e.path()) == Some(&sig) {
            ready.push((e.path(), name));
        }
        now.insert(e.path(), sig);
    }
    *seen = now;
    ready
}

/// Watches one hot folder until shutdown.
///
/// # Errors
/// The folder cannot be created or watched.
pub fn start(spool: Arc<Spool>, hf: HotFolderConfig, stop: CancellationToken) -> Result<(), String> {
    use notify::{RecursiveMode, Watcher};
    std::fs::create_dir_all(&hf.path).map_err(|e| format!("{}: {e}", hf.path.display()))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| e.to_string())?;
    watcher.watch(&hf.path, RecursiveMode::NonRecursive).map_err(|e| format!("{}: {e}", hf.path.display()))?;
    tokio::spawn(async move {
        let _watcher = watcher;
        let mut seen = Seen::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = rx.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            // A change wakes us at once; the file counts as complete only when a second look,
            // a moment later, finds it unchanged.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while rx.try_recv().is_ok() {}
            let dir = hf.path.clone();
            let Ok((ready, s)) = tokio::task::spawn_blocking(move || {
                let r = scan(&dir, &mut seen);
                (r, seen)
            })
            .await
            else {
                seen = Seen::new();
                continue;
            };
            seen = s;
            for (path, name) in ready {
                if let Err(e) = take(&spool, &hf, &path, &name).await {
                    tracing::error!(path = %path.display(), error = %e, "hot folder: cannot take file");
                }
            }
        }
    });
    Ok(())
}

async fn take(spool: &Arc<Spool>, hf: &HotFolderConfig, path: &std::path::Path, name: &str) -> Result<(), String> {
    let p = path.to_path_buf();
    let (_, sha) = tokio::task::spawn_blocking(move || crate::spool::writer::sha256_file(&p))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(t) = spool
        .journal()
        .latest_with_sha(&hf.channel, &hf.account, &sha, Some("hotfolder"))
        .await
        .map_err(|e| e.to_string())?
        && t.name == name
        && t.state != "aborted"
    {
        // Taken before a crash; only the removal is missing.
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    let origin = Origin { account: hf.account.clone(), protocol: "hotfolder", remote_addr: None };
    let upload = spool.begin_transfer(&hf.channel, "hotfolder", name, &origin).await.map_err(|e| e.to_string())?;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut offset = 0u64;
    loop {
        let mut buf = vec![0u8; 256 * 1024];
        let n = tokio::task::block_in_place(|| file.read(&mut buf)).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        upload.write_at(offset, buf).await.map_err(|e| e.to_string())?;
        offset += n as u64;
    }
    let done = upload.commit().await.map_err(|e| e.to_string())?;
    if done.written.sha256 != sha {
        // Changed while it was read: the transfer stands (it is what was read, consistently
        // hashed); the file stays and will be taken again once stable.
        tracing::warn!(path = %path.display(), "hot folder file changed while it was taken; leaving it for the next scan");
        return Ok(());
    }
    std::fs::remove_file(path).map_err(|e| format!("taken, but cannot remove {}: {e}", path.display()))?;
    let id = done.transfer_id.unwrap_or_default();
    tracing::info!(transfer = %id, channel = %hf.channel, name, "hot folder file taken");
    spool.audit().record(
        crate::audit::Event::new("upload_completed")
            .account(&hf.account)
            .protocol("hotfolder")
            .path(&format!("{}/{name}", hf.path.display()))
            .transfer(&id)
            .size(done.written.size)
            .sha256(&done.written.sha256),
    );
    Ok(())
}
