//! The audit trail: an append-only JSONL file, one line per event, each line chained to the one
//! before it by SHA-256 so that a removed or edited line is detectable (`wharf audit verify`).
//!
//! Every line carries `prev`, the hex SHA-256 of the previous line's bytes (without its newline);
//! the first line's `prev` is 64 zeros. Lines are written whole with one `write` on an `O_APPEND`
//! file under a lock, so concurrent events never interleave. The lock is also an `flock` on the
//! file, and a writer whose file grew behind its back (a second process, such as
//! `wharf outbound run` beside `wharf serve`) re-reads the last line first, so the chain holds
//! with several writers.
//!
//! A last line torn by a crash or a full disk (no newline at the end) would make the next line
//! chain onto the fragment; on open the fragment is moved aside into `<trail>.torn-<time>` (kept
//! as evidence), the trail is cut back to its last whole line, and an `audit_tail_repaired`
//! event says so.

use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited event. Built with the chained setters, recorded with [`Audit::record`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Event {
    /// What happened: `login_ok`, `login_failed`, `upload_completed`, `download_completed`, ...
    pub event: String,
    /// The account (or the name that was tried, for failed logins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// `sftp`, `ftp`, `ftps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The virtual path the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A second path (rename target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_path: Option<String>,
    /// Bytes moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SHA-256 of the content, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The transfer this is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// Why (failures, aborts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event {
    /// A new event of this kind.
    pub fn new(kind: &str) -> Self {
        Self { event: kind.to_string(), ..Self::default() }
    }
    /// Sets the account.
    pub fn account(mut self, v: &str) -> Self {
        self.account = Some(v.to_string());
        self
    }
    /// Sets the remote address.
    pub fn remote(mut self, v: Option<&str>) -> Self {
        self.remote_addr = v.map(str::to_string);
        self
    }
    /// Sets the protocol.
    pub fn protocol(mut self, v: &str) -> Self {
        self.protocol = Some(v.to_string());
        self
    }
    /// Sets the path.
    pub fn path(mut self, v: &str) -> Self {
        self.path = Some(v.to_string());
        self
    }
    /// Sets the second path.
    pub fn to_path(mut self, v: &str) -> Self {
        self.to_path = Some(v.to_string());
        self
    }
    /// Sets the size.
    pub fn size(mut self, v: u64) -> Self {
        self.size = Some(v);
        self
    }
    /// Sets the digest.
    pub fn sha256(mut self, v: &str) -> Self {
        self.sha256 = Some(v.to_string());
        self
    }
    /// Sets the transfer id.
    pub fn transfer(mut self, v: &str) -> Self {
        self.transfer_id = Some(v.to_string());
        self
    }
    /// Sets the reason.
    pub fn reason(mut self, v: &str) -> Self {
        self.reason = Some(v.to_string());
        self
    }
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    event: &'a Event,
    prev: &'a str,
}

struct Tail {
    file: File,
    prev: String,
    /// The file's length after our last write (or when we read it).
    len: u64,
}

/// The hash of the last line of `file` (or [`GENESIS`]) and the file's length.
fn last_line_hash(file: &File) -> io::Result<(String, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut f = file.try_clone()?;
    // Lines are short (an event is well under 64 KiB); read the tail and take its last line.
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    let last = body.rsplit(|b| *b == b'\n').next().unwrap_or_default();
    Ok((if last.is_empty() { GENESIS.to_string() } else { line_hash(last) }, len))
}

/// Moves a torn last line (the bytes after the last newline) into `<path>.torn-<time>` and cuts
/// the trail back to its last whole line. Returns the fragment's length and where it went.
fn repair_torn_tail(file: &File, path: &Path) -> io::Result<Option<(u64, PathBuf)>> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut f = file.try_clone()?;
    // read back from the end, 64 KiB more each time, until a newline ends the last whole line
    let (mut buf, mut window) = (Vec::new(), 64 * 1024u64);
    let (cut, start) = loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start))?;
        buf.clear();
        f.read_to_end(&mut buf)?;
        if buf.last() == Some(&b'\n') {
            return Ok(None);
        }
        match buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => break (start + i as u64 + 1, start),
            None if start == 0 => break (0, 0),
            None => window = window.saturating_mul(4),
        }
    };
    let fragment = &buf[(cut - start) as usize..];
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let mut n = 1;
    let (aside, mut out) = loop {
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".torn-{stamp}"));
        if n > 1 {
            aside.push(format!("-{n}"));
        }
        match OpenOptions::new().create_new(true).write(true).open(&aside) {
            Ok(f) => break (PathBuf::from(aside), f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(e),
        }
    };
    out.write_all(fragment)?;
    out.sync_all()?;
    file.set_len(cut)?;
    file.sync_all()?;
    Ok(Some((fragment.len() as u64, aside)))
}

/// Holds an exclusive `flock` on the trail while a line is appended.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn new(f: &'a File) -> Self {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; a failure only loses the cross-process guard.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        Self(f)
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Audit errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The trail cannot be opened or read.
    #[error("audit trail {path}")]
    Io {
        /// The trail's path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A line does not chain to the one before it.
    #[error("audit trail {path}: line {line} is broken: {why}")]
    Broken {
        /// The trail's path.
        path: PathBuf,
        /// 1-based line number of the first bad line.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The open audit trail of a gateway.
pub struct Audit {
    path: PathBuf,
    tail: Mutex<Tail>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("path", &self.path).finish()
    }
}

fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

impl Audit {
    /// Opens (creating if needed) the trail and finds the hash of its last line.
    ///
    /// # Errors
    /// The file cannot be opened or read.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let err = |source| Error::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new().create(true).append(true).read(true).open(path).map_err(err)?;
        let (prev, len, torn) = {
            let _lock = FileLock::new(&file);
            let torn = repair_torn_tail(&file, path).map_err(err)?;
            let (prev, len) = last_line_hash(&file).map_err(err)?;
            (prev, len, torn)
        };
        let audit = Self { path: path.to_path_buf(), tail: Mutex::new(Tail { file, prev, len }) };
        if let Some((bytes, aside)) = torn {
            let why = format!(
                "the trail ended in a torn line of {bytes} bytes (a crash or a full disk while it was written); \
                 the fragment was moved to {} and the trail cut back to its last whole line",
                aside.display()
            );
            tracing::warn!(path = %path.display(), "{why}");
            audit.record(Event::new("audit_tail_repaired").reason(&why));
        }
        Ok(audit)
    }

    /// The trail's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event. A failure to write is logged loudly; it does not stop the transfer that
    /// caused the event (the journal remains the record of transfers).
    pub fn record(&self, event: Event) {
        tracing::info!(target: "wharf::audit", event = %event.event, account = ?event.account, path = ?event.path, transfer = ?event.transfer_id, "audit");
        let Ok(mut tail) = self.tail.lock() else {
            tracing::error!("audit trail lock poisoned; event lost: {event:?}");
            return;
        };
        let tail = &mut *tail;
        let _lock = FileLock::new(&tail.file);
        if tail.file.metadata().map(|m| m.len()).ok() != Some(tail.len) {
            match last_line_hash(&tail.file) {
                Ok((prev, len)) => (tail.prev, tail.len) = (prev, len),
                Err(e) => tracing::error!(path = %self.path.display(), error = %e, "cannot re-read the audit trail"),
            }
        }
        let line = Line { ts: crate::spool::journal::timestamp(Utc::now()), event: &event, prev: &tail.prev };
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        let hash = line_hash(&bytes);
        bytes.push(b'\n');
        match (&tail.file).write_all(&bytes) {
            Ok(()) => {
                tail.prev = hash;
                tail.len += bytes.len() as u64;
            }
            Err(e) => {
                // a part of the line may be in the file (a full disk): cut it off, so the next
                // line starts on a line of its own and the chain stays verifiable
                let cut = tail.file.set_len(tail.len);
                tracing::error!(path = %self.path.display(), error = %e, cut_back = cut.is_ok(), "cannot append to the audit trail; event lost");
            }
        }
    }
}

/// Checks the whole chain of a trail. Returns the number of lines on success.
///
/// # Errors
/// The first broken link, or an I/O error.
pub fn verify(path: &Path) -> Result<usize, Error> {
    let err = |source| Error::Io { path: path.to_path_buf(), source };
    let reader = BufReader::new(File::open(path).map_err(err)?);
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(err)?;
        if line.is_empty() {
            continue;
        }
        let broken = |why: String| Error::Broken { path: path.to_path_buf(), line: i + 1, why };
        let value: serde_json::Value = serde_json::from_slice(&line).map_err(|e| broken(format!("not JSON ({e})")))?;
        let got = value.get("prev").and_then(|v| v.as_str()).unwrap_or("");
        if got != prev {
            return Err(broken(format!(
                "its `prev` is {got:?} but the line before it hashes to {prev}: a line was changed, removed or inserted here"
            )));
        }
        prev = line_hash(&line);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_verifies_and_survives_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("audit.jsonl");
        let a = Audit::open(&p)?;
        a.record(Event::new("login_ok").account("acme"));
        a.record(Event::new("upload_completed").account("acme").size(3).sha256("abc"));
        drop(a);
        let a = Audit::open(&p)?;
        a.record(Event::new("login_failed").account("x"));
        assert_eq!(verify(&p)?, 3);
        Ok(())
    }

    #[test]
    fn two_writers_of_one_trail_keep_the_chain() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("audit.jsonl");
        // two handles stand for two processes (`wharf serve` and `wharf outbound run`)
        let a = Audit::open(&p)?;
        let b = Audit::open(&p)?;
        for i in 0..5 {
            a.record(Event::new("upload_completed").size(i));
            b.record(Event::new("package_published").size(i));
        }
        assert_eq!(verify(&p)?, 10);
        Ok(())
    }

    #[test]
    fn a_torn_last_line_is_moved_aside_and_the_chain_goes_on() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("audit.jsonl");
        let a = Audit::open(&p)?;
        a.record(Event::new("login_ok").account("acme"));
        a.record(Event::new("upload_completed").size(7));
        drop(a);
        // a crash in the middle of a write leaves half a line
        let mut f = OpenOptions::new().append(true).open(&p)?;
        f.write_all(b"{\"ts\":\"2026-12-03T10:00:00Z\",\"event\":\"upl")?;
        drop(f);
        let a = Audit::open(&p)?;
        a.record(Event::new("login_ok").account("globex"));
        assert_eq!(verify(&p)?, 4, "two old lines, the repair, the new one");
        let text = std::fs::read_to_string(&p)?;
        assert!(text.lines().nth(2).is_some_and(|l| l.contains("audit_tail_repaired")), "{text}");
        let torn: Vec<_> = std::fs::read_dir(dir.path())?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("audit.jsonl.torn-"))
            .collect();
        assert_eq!(torn.len(), 1);
        assert!(std::fs::read_to_string(torn[0].path())?.ends_with("\"event\":\"upl"));
        // a torn line longer than the first window read back is still cut at its start
        drop(a);
        let mut f = OpenOptions::new().append(true).open(&p)?;
        f.write_all(&vec![b'x'; 200 * 1024])?;
        drop(f);
        let a = Audit::open(&p)?;
        assert_eq!(verify(&p)?, 5, "the second repair is a line of its own");
        // a whole trail is left alone
        drop(a);
        Audit::open(&p)?;
        assert_eq!(verify(&p)?, 5);
        Ok(())
    }

    #[test]
    fn tampering_is_detected_at_the_next_line() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("audit.jsonl");
        let a = Audit::open(&p)?;
        for i in 0..4 {
            a.record(Event::new("upload_completed").size(i));
        }
        let text = std::fs::read_to_string(&p)?;
        std::fs::write(&p, text.replacen("\"size\":1", "\"size\":9", 1))?;
        match verify(&p) {
            Err(Error::Broken { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a broken link, got {other:?}"),
        }
        Ok(())
    }
}
