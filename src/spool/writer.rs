//! Streams an upload's body to a temporary file on a blocking thread, hashing as it goes.
//!
//! Protocol handlers answer one request at a time per session (russh-sftp's loop is serial), so a
//! write must return as soon as its bytes are queued. The first [`SMALL_BODY`] bytes are only kept
//! in memory; a body that grows beyond that gets a writer thread, which does the `pwrite`s and the
//! SHA-256 updates while the client sends more. [`BodyWriter::finish`] writes what is still held
//! (a small body: all of it, in one blocking task), fsyncs the file, returns size and digest, and
//! runs the caller's next step (placing the file) on the same thread. A write error is remembered
//! and reported on the next write or at finish, never swallowed.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How many chunks may wait for the writer thread before a client's writes are slowed down.
const QUEUE_DEPTH: usize = 128;

/// Bodies up to this size are held in memory until finish and written in one go, without a
/// writer thread of their own (most documents are small; this saves two thread hand-offs each).
pub const SMALL_BODY: usize = 64 * 1024;

/// Size and SHA-256 of a completely written, fsynced body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes in the file.
    pub size: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
}

/// A step run on the writer's thread right after the body is fsynced (e.g. moving it into place).
pub type After = Box<dyn FnOnce() -> io::Result<()> + Send>;

enum Cmd {
    Write { offset: u64, data: Vec<u8> },
    Finish(oneshot::Sender<io::Result<Written>>, Option<After>),
}

/// The writer thread of a body that outgrew [`SMALL_BODY`].
struct Thread {
    tx: mpsc::Sender<Cmd>,
    failed: Arc<Mutex<Option<io::ErrorKind>>>,
}

enum Mode {
    /// Nothing written yet: the file and the chunks received so far.
    Held { file: File, chunks: Vec<(u64, Vec<u8>)>, bytes: usize },
    /// A writer thread has the file.
    Streaming(Thread),
    /// Between the two (only while switching; never observed by a caller).
    Switching,
}

/// Handle to one body being written.
pub struct BodyWriter {
    mode: tokio::sync::Mutex<Mode>,
}

struct State {
    file: File,
    hasher: Sha256,
    hashed: u64,
    end: u64,
    sequential: bool,
}

impl State {
    fn new(file: File) -> Self {
        Self { file, hasher: Sha256::new(), hashed: 0, end: 0, sequential: true }
    }
}

fn finish_then(st: State, after: Option<After>) -> io::Result<Written> {
    let written = st.finish()?;
    if let Some(after) = after {
        after()?;
    }
    Ok(written)
}

fn spawn_thread(file: File) -> Thread {
    let (tx, mut rx) = mpsc::channel::<Cmd>(QUEUE_DEPTH);
    let failed = Arc::new(Mutex::new(None));
    let failed_w = failed.clone();
    tokio::task::spawn_blocking(move || {
        let mut st = State::new(file);
        let mut error: Option<io::Error> = None;
        while let Some(cmd) = rx.blocking_recv() {
            match cmd {
                Cmd::Write { offset, data } => {
                    if error.is_some() {
                        continue;
                    }
                    if let Err(e) = st.write(offset, &data) {
                        if let Ok(mut f) = failed_w.lock() {
                            *f = Some(e.kind());
                        }
                        error = Some(e);
                    }
                }
                Cmd::Finish(reply, after) => {
                    let result = match error.take() {
                        Some(e) => Err(e),
                        None => finish_then(st, after),
                    };
                    let _ = reply.send(result);
                    return;
                }
            }
        }
    });
    Thread { tx, failed }
}

fn stopped() -> io::Error {
    io::Error::other("body writer stopped")
}

impl BodyWriter {
    /// A writer for `file` (empty, opened for reading and writing: out-of-order writes are hashed
    /// by reading the file back). Must be called within a Tokio runtime.
    pub fn spawn(file: File) -> Self {
        Self { mode: tokio::sync::Mutex::new(Mode::Held { file, chunks: Vec::new(), bytes: 0 }) }
    }

    /// Queues `data` to be written at `offset`.
    ///
    /// # Errors
    /// An earlier write failed (the error kind is returned), or the writer is gone.
    pub async fn write_at(&self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        let mut mode = self.mode.lock().await;
        if let Mode::Held { chunks, bytes, .. } = &mut *mode
            && *bytes + data.len() <= SMALL_BODY
        {
            *bytes += data.len();
            chunks.push((offset, data));
            return Ok(());
        }
        if let Mode::Held { .. } = &*mode
            && let Mode::Held { file, chunks, .. } = std::mem::replace(&mut *mode, Mode::Switching)
        {
            // Outgrown: a writer thread takes over, first with what was held.
            let thread = spawn_thread(file);
            for (offset, data) in chunks {
                thread.tx.send(Cmd::Write { offset, data }).await.map_err(|_| stopped())?;
            }
            *mode = Mode::Streaming(thread);
        }
        let Mode::Streaming(thread) = &*mode else { return Err(stopped()) };
        if let Ok(f) = thread.failed.lock()
            && let Some(kind) = *f
        {
            return Err(io::Error::new(kind, "an earlier write to this file failed"));
        }
        thread.tx.send(Cmd::Write { offset, data }).await.map_err(|_| stopped())
    }

    /// Waits for every queued write, fsyncs the file, runs `after` (on the same blocking thread)
    /// and returns the body's size and SHA-256.
    ///
    /// # Errors
    /// Any write, fsync or `after` error.
    pub async fn finish(self, after: Option<After>) -> io::Result<Written> {
        match self.mode.into_inner() {
            Mode::Held { file, chunks, .. } => tokio::task::spawn_blocking(move || {
                let mut st = State::new(file);
                for (offset, data) in chunks {
                    st.write(offset, &data)?;
                }
                finish_then(st, after)
            })
            .await
            .map_err(io::Error::other)?,
            Mode::Streaming(thread) => {
                let (tx, rx) = oneshot::channel();
                thread.tx.send(Cmd::Finish(tx, after)).await.map_err(|_| stopped())?;
                rx.await.map_err(|_| stopped())?
            }
            Mode::Switching => Err(stopped()),
        }
    }
}

/// Size and lower-case hex SHA-256 of a file, read in 256 KiB blocks.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &std::path::Path) -> io::Result<(u64, String)> {
    sha256_of(&File::open(path)?)
}

fn sha256_of(f: &File) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut pos = 0u64;
    loop {
        let n = f.read_at(&mut buf, pos)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok((pos, hex::encode(h.finalize())))
}

impl State {
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)?;
        if self.sequential && offset == self.hashed {
            self.hasher.update(data);
            self.hashed += data.len() as u64;
        } else {
            // Out-of-order or overlapping writes: hash the file from disk at the end instead.
            self.sequential = false;
        }
        self.end = self.end.max(offset + data.len() as u64);
        Ok(())
    }

    fn finish(self) -> io::Result<Written> {
        self.file.sync_all()?;
        let size = self.file.metadata()?.len();
        let sha256 = if self.sequential && self.hashed == size {
            hex::encode(self.hasher.finalize())
        } else {
            // Out-of-order writes: hash what is on disk.
            sha256_of(&self.file)?.1
        };
        Ok(Written { size, sha256 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &std::path::Path) -> io::Result<File> {
        std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(path)
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[tokio::test]
    async fn sequential_writes_hash_while_streaming() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("body");
        let w = BodyWriter::spawn(create(&path)?);
        w.write_at(0, b"hello ".to_vec()).await?;
        w.write_at(6, b"world".to_vec()).await?;
        let done = w.finish(None).await?;
        assert_eq!(done, Written { size: 11, sha256: sha(b"hello world") });
        assert_eq!(std::fs::read(&path)?, b"hello world");
        Ok(())
    }

    #[tokio::test]
    async fn out_of_order_writes_are_hashed_from_disk() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("body");
        let w = BodyWriter::spawn(create(&path)?);
        w.write_at(6, b"world".to_vec()).await?;
        w.write_at(0, b"hello ".to_vec()).await?;
        let done = w.finish(None).await?;
        assert_eq!(done.sha256, sha(b"hello world"));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_body_beyond_the_small_size_streams_through_a_thread_and_hashes_the_same() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("body");
        let w = BodyWriter::spawn(create(&path)?);
        let chunk = vec![7u8; 40 * 1024];
        let mut all = Vec::new();
        for i in 0..5u64 {
            w.write_at(i * chunk.len() as u64, chunk.clone()).await?;
            all.extend_from_slice(&chunk);
        }
        assert!(matches!(*w.mode.lock().await, Mode::Streaming(_)), "switched to a writer thread");
        let done = w.finish(None).await?;
        assert_eq!(done, Written { size: all.len() as u64, sha256: sha(&all) });
        assert_eq!(std::fs::read(&path)?, all);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_after_step_runs_once_the_body_is_written_and_its_error_is_reported() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        for big in [false, true] {
            let path = dir.path().join(format!("body-{big}"));
            let w = BodyWriter::spawn(create(&path)?);
            let data = vec![1u8; if big { SMALL_BODY + 1 } else { 10 }];
            w.write_at(0, data.clone()).await?;
            let (p, moved) = (path.clone(), dir.path().join(format!("moved-{big}")));
            let to = moved.clone();
            w.finish(Some(Box::new(move || std::fs::rename(&p, &to)))).await?;
            assert_eq!(std::fs::read(&moved)?, data, "the step saw the whole body");
            let w = BodyWriter::spawn(create(&path)?);
            w.write_at(0, data).await?;
            let failing: After = Box::new(|| Err(io::Error::other("no room")));
            let e = w.finish(Some(failing)).await.expect_err("the step failed");
            assert_eq!(e.to_string(), "no room");
        }
        Ok(())
    }
}
