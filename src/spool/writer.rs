//! Streams an upload's body to a temporary file on a blocking thread, hashing as it goes.
//!
//! Protocol handlers answer one request at a time per session (russh-sftp's loop is serial), so a
//! write must return as soon as its bytes are queued. The writer thread does the `pwrite` and the
//! SHA-256 update; [`BodyWriter::finish`] waits for it, fsyncs the file and returns size and digest.
//! A write error is remembered and reported on the next write or at finish, never swallowed.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How many chunks may wait for the writer thread before a client's writes are slowed down.
const QUEUE_DEPTH: usize = 128;

/// Size and SHA-256 of a completely written, fsynced body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes in the file.
    pub size: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
}

enum Cmd {
    Write { offset: u64, data: Vec<u8> },
    Finish(oneshot::Sender<io::Result<Written>>),
}

/// Handle to one body being written.
pub struct BodyWriter {
    tx: mpsc::Sender<Cmd>,
    failed: Arc<Mutex<Option<io::ErrorKind>>>,
}

struct State {
    file: File,
    hasher: Sha256,
    hashed: u64,
    end: u64,
    sequential: bool,
}

impl BodyWriter {
    /// Starts a writer thread for `file` (empty, opened for reading and writing: out-of-order
    /// writes are hashed by reading the file back).
    pub fn spawn(file: File) -> Self {
        let (tx, mut rx) = mpsc::channel::<Cmd>(QUEUE_DEPTH);
        let failed = Arc::new(Mutex::new(None));
        let failed_w = failed.clone();
        tokio::task::spawn_blocking(move || {
            let mut st = State { file, hasher: Sha256::new(), hashed: 0, end: 0, sequential: true };
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
                    Cmd::Finish(reply) => {
                        let result = match error.take() {
                            Some(e) => Err(e),
                            None => st.finish(),
                        };
                        let _ = reply.send(result);
                        return;
                    }
                }
            }
        });
        Self { tx, failed }
    }

    /// Queues `data` to be written at `offset`.
    ///
    /// # Errors
    /// An earlier write failed (the error kind is returned), or the writer is gone.
    pub async fn write_at(&self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        if let Ok(f) = self.failed.lock()
            && let Some(kind) = *f
        {
            return Err(io::Error::new(kind, "an earlier write to this file failed"));
        }
        self.tx.send(Cmd::Write { offset, data }).await.map_err(|_| io::Error::other("body writer stopped"))
    }

    /// Waits for every queued write, fsyncs the file and returns its size and SHA-256.
    ///
    /// # Errors
    /// Any write or fsync error.
    pub async fn finish(self) -> io::Result<Written> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Finish(tx)).await.map_err(|_| io::Error::other("body writer stopped"))?;
        rx.await.map_err(|_| io::Error::other("body writer stopped"))?
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
        let done = w.finish().await?;
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
        let done = w.finish().await?;
        assert_eq!(done.sha256, sha(b"hello world"));
        Ok(())
    }
}
