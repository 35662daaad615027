//! Archive checks for zip-based content: entry names, links, counts, sizes and ratio.
//!
//! Nothing is extracted to disk. The central directory is read first (names, declared sizes, modes);
//! then every entry is inflated into a counting sink with a byte budget, because declared sizes are
//! written by the sender and can lie. The budget is the smaller of `max_total_size` and
//! `max_ratio` × the archive's real length, so a bomb with forged headers costs at most that much
//! CPU and no memory or disk. Overlapping entries (one compressed block referenced by many entries,
//! the "non-recursive zip bomb") are refused outright.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// Limits of `[accept.archive]`, with defaults for zip-based content that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most entries (files and folders).
    pub max_entries: u64,
    /// Most bytes all entries together may inflate to.
    pub max_total_size: u64,
    /// Largest ratio of uncompressed bytes to the archive's size.
    pub max_ratio: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits { max_entries: 10_000, max_total_size: 1 << 30, max_ratio: 100 }
    }
}

/// Why an archive was refused, and what the sender can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveProblem {
    /// Completes "… but its archive …".
    pub reason: String,
    /// What to do.
    pub remedy: String,
}

/// What a passed archive held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Entries in the central directory.
    pub entries: u64,
    /// Sum of declared uncompressed sizes.
    pub declared: u64,
    /// Bytes actually inflated.
    pub inflated: u64,
}

fn problem(reason: String, remedy: &str) -> ArchiveProblem {
    ArchiveProblem { reason, remedy: remedy.to_string() }
}

const SAFE_NAMES: &str =
    "Rebuild the archive from a folder, with relative entry names and without links, and send it again.";
const SMALLER: &str = "Split the batch into several smaller archives, or ask the channel's owner to raise the limit.";
const REBUILD: &str = "Rebuild the archive with a standard zip tool and send it again.";

/// Why an entry name is unsafe to extract anywhere, if it is.
fn unsafe_name(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.starts_with('/') || name.starts_with('\\') {
        Some("is an absolute path")
    } else if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        Some("is an absolute path with a drive letter")
    } else if name.split(['/', '\\']).any(|c| c == "..") {
        Some("contains a `..` component that would escape the extraction folder (zip slip)")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

fn human(name: &str) -> String {
    let shown: String = name.chars().take(120).collect();
    shown.escape_debug().to_string()
}

/// A sink that counts what is written to it.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Most entries any zip is parsed with (the zip crate keeps each entry of the central directory in
/// memory): beyond this an archive is refused before it is read.
pub const MAX_ZIP_ENTRIES: u64 = 1_000_000;

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |n, x| (n << 8) | u64::from(*x))
}

/// The entry count the end-of-central-directory record declares (zip64 included), read from the
/// archive's tail without parsing the directory; `None` if there is no such record.
///
/// # Errors
/// I/O errors of the reader.
pub fn declared_entries(mut r: impl Read + Seek) -> io::Result<Option<u64>> {
    let len = r.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65_535);
    r.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    (&mut r).take(tail_len).read_to_end(&mut tail)?;
    let Some(eocd) = tail.windows(4).rposition(|w| w == b"PK\x05\x06") else { return Ok(None) };
    let Some(count) = tail.get(eocd + 10..eocd + 12).map(le) else { return Ok(None) };
    if count != 0xFFFF {
        return Ok(Some(count));
    }
    // Zip64: the locator sits right before the EOCD and points at the zip64 EOCD record.
    let Some(locator) = eocd.checked_sub(20).and_then(|i| tail.get(i..i + 20)) else { return Ok(Some(count)) };
    if &locator[..4] != b"PK\x06\x07" {
        return Ok(Some(count));
    }
    r.seek(SeekFrom::Start(le(&locator[8..16])))?;
    let mut record = [0u8; 40];
    if r.read_exact(&mut record).is_err() || &record[..4] != b"PK\x06\x06" {
        return Ok(Some(count));
    }
    Ok(Some(le(&record[32..40])))
}

/// Checks one zip archive of `archive_len` bytes against `limits`.
///
/// # Errors
/// The first problem found, phrased for the sender. A malformed archive is a problem, never a panic.
pub fn check(
    mut reader: impl Read + Seek,
    archive_len: u64,
    limits: &ArchiveLimits,
) -> Result<ArchiveReport, ArchiveProblem> {
    let cap = limits.max_entries.min(MAX_ZIP_ENTRIES);
    match declared_entries(&mut reader) {
        Ok(Some(n)) if n > cap => {
            return Err(problem(format!("declares {n} entries, more than the limit of {cap}"), SMALLER));
        }
        Ok(_) => {}
        Err(e) => return Err(problem(format!("cannot be read ({e})"), REBUILD)),
    }
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| problem(format!("cannot be read as a zip archive ({e})"), REBUILD))?;
    let entries = archive.len() as u64;
    if entries > limits.max_entries {
        return Err(problem(
            format!("holds {entries} entries, more than the limit of {}", limits.max_entries),
            SMALLER,
        ));
    }
    let mut declared: u64 = 0;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index_data(i)
            .map_err(|e| problem(format!("has an unreadable entry #{} ({e})", i + 1), REBUILD))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if let Some(why) = unsafe_name(&name) {
            return Err(problem(format!("has an entry `{}` that {why}", human(&name)), SAFE_NAMES));
        }
        let link = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) || entry.is_symlink();
        if link {
            return Err(problem(format!("has an entry `{}` that is a symbolic link", human(&name)), SAFE_NAMES));
        }
        if entry.encrypted() {
            return Err(problem(
                format!("has an encrypted entry `{}`, which cannot be checked", human(&name)),
                "Send the archive without a password.",
            ));
        }
        declared = declared.saturating_add(entry.size());
        if !entry.is_dir() {
            files.push((i, name, entry.size()));
        }
    }
    if declared > limits.max_total_size {
        return Err(problem(
            format!("would unpack to {}, more than the limit of {}", bytes(declared), bytes(limits.max_total_size)),
            SMALLER,
        ));
    }
    let room = limits.max_ratio.saturating_mul(archive_len.max(1));
    if declared > room {
        return Err(problem(
            format!(
                "would unpack to {} from {}, a ratio above the limit of {}:1 (a zip bomb?)",
                bytes(declared),
                bytes(archive_len),
                limits.max_ratio
            ),
            SMALLER,
        ));
    }
    match archive.has_overlapping_files() {
        Ok(false) => {}
        Ok(true) => {
            return Err(problem("has entries that share compressed data (a zip bomb construction)".into(), REBUILD));
        }
        Err(e) => return Err(problem(format!("has an inconsistent layout ({e})"), REBUILD)),
    }
    // Declared sizes may lie: inflate everything, counting, within the budget.
    let budget = limits.max_total_size.min(room);
    let mut inflated: u64 = 0;
    for (i, name, size) in files {
        let mut file = archive
            .by_index(i)
            .map_err(|e| problem(format!("has an entry `{}` that cannot be read ({e})", human(&name)), REBUILD))?;
        let left = budget.saturating_sub(inflated);
        let mut sink = Count(0);
        io::copy(&mut (&mut file).take(left.saturating_add(1)), &mut sink)
            .map_err(|e| problem(format!("has a damaged entry `{}` ({e})", human(&name)), REBUILD))?;
        inflated = inflated.saturating_add(sink.0);
        if sink.0 > size {
            return Err(problem(
                format!(
                    "has an entry `{}` that declares {} but inflates to more (forged header)",
                    human(&name),
                    bytes(size)
                ),
                REBUILD,
            ));
        }
        if inflated > budget {
            return Err(problem(format!("inflates to more than {} (limit reached)", bytes(budget)), SMALLER));
        }
    }
    Ok(ArchiveReport { entries, declared, inflated })
}

/// A size for people: `52428800` → `50 MiB`, `1536` → `1.5 KiB` (one decimal, rounded down), `512 bytes`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let whole = n / size;
            let tenth = (n % size) * 10 / size;
            return if tenth == 0 { format!("{whole} {unit}") } else { format!("{whole}.{tenth} {unit}") };
        }
    }
    format!("{n} bytes")
}
