//! Dropbox `content_hash` (4 MiB blocks, SHA-256 of each, SHA-256 of the concatenated digests,
//! lowercase hex) computed while streaming, together with the plain SHA-256 tests compare with.

use sha2::{Digest, Sha256};

/// Dropbox's hashing block size: 4 MiB.
pub const BLOCK: usize = 4 * 1024 * 1024;

/// Both hashes of a byte stream, fed in pieces of any size.
#[derive(Clone)]
pub struct Hasher {
    block: Sha256,
    in_block: usize,
    overall: Sha256,
    plain: Sha256,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher { block: Sha256::new(), in_block: 0, overall: Sha256::new(), plain: Sha256::new() }
    }
}

impl Hasher {
    /// Feeds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.plain.update(data);
        while !data.is_empty() {
            let take = (BLOCK - self.in_block).min(data.len());
            self.block.update(&data[..take]);
            self.in_block += take;
            data = &data[take..];
            if self.in_block == BLOCK {
                let d = self.block.finalize_reset();
                self.overall.update(d);
                self.in_block = 0;
            }
        }
    }

    /// `(content_hash, sha256)`, both lowercase hex. The empty input gives SHA-256("") for both.
    pub fn finish(mut self) -> (String, String) {
        if self.in_block > 0 {
            let d = self.block.finalize();
            self.overall.update(d);
        }
        (hex::encode(self.overall.finalize()), hex::encode(self.plain.finalize()))
    }
}

/// Both hashes of a byte slice.
pub fn of(bytes: &[u8]) -> (String, String) {
    let mut h = Hasher::default();
    h.update(bytes);
    h.finish()
}

/// Both hashes of a stored file (read in blocks).
pub fn of_file(path: &std::path::Path) -> std::io::Result<(String, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}
