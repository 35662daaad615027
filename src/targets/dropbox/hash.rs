//! Dropbox's `content_hash`: the file cut into 4 MiB blocks, each hashed with SHA-256, the raw
//! digests concatenated and hashed again, in lowercase hex. Sent with every upload so Dropbox
//! refuses a body that arrived damaged, and compared with a listed file to recognise wharf's own
//! earlier delivery.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Dropbox's block size.
pub const BLOCK: usize = 4 * 1024 * 1024;

/// A streaming content hasher.
#[derive(Default)]
pub struct ContentHasher {
    overall: Sha256,
    block: Sha256,
    in_block: usize,
}

impl ContentHasher {
    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (BLOCK - self.in_block).min(data.len());
            self.block.update(&data[..take]);
            self.in_block += take;
            data = &data[take..];
            if self.in_block == BLOCK {
                let digest = std::mem::take(&mut self.block).finalize();
                self.overall.update(digest);
                self.in_block = 0;
            }
        }
    }

    /// The hash, lowercase hex.
    pub fn finish(mut self) -> String {
        if self.in_block > 0 {
            self.overall.update(self.block.finalize());
        }
        hex::encode(self.overall.finalize())
    }
}

/// The content hash of a file (and of a byte range of it, for session chunks).
///
/// # Errors
/// The file cannot be read.
pub fn of_file(path: &Path, offset: u64, len: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut r = f.take(len);
    let mut h = ContentHasher::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> String {
        let mut all = Vec::new();
        for block in data.chunks(BLOCK) {
            all.extend_from_slice(&Sha256::digest(block));
        }
        hex::encode(Sha256::digest(&all))
    }

    #[test]
    fn empty_is_the_sha256_of_nothing() {
        assert_eq!(
            ContentHasher::default().finish(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn blocks_are_cut_at_4_mib_however_the_bytes_arrive() {
        let data: Vec<u8> = (0..(BLOCK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        let mut h = ContentHasher::default();
        for piece in data.chunks(1_000_003) {
            h.update(piece);
        }
        assert_eq!(h.finish(), reference(&data));
        let mut exact = ContentHasher::default();
        exact.update(&data[..BLOCK]);
        assert_eq!(exact.finish(), reference(&data[..BLOCK]), "exactly one block: no empty block after it");
    }
}
