//! A Confluence page with its attachments as one zip: `<title>.html`, `attachments/<name>` for
//! each attachment and `manifest.json` (page fields, each file's size, version and sha256).
//! Attachment names are made safe for any unzip (no directories, `..`, control characters or
//! leading dots; duplicates numbered), so the package never writes outside its folder.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{Cursor, Write};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

/// Largest zip a page becomes (it is built in memory before it is spooled).
pub const MAX_ZIP_BYTES: u64 = 256 * 1024 * 1024;

/// The reason given for a page whose zip would be larger than [`MAX_ZIP_BYTES`].
pub fn too_large() -> String {
    format!("the page with its attachments exceeds {} MiB; take it with attachments = \"items\"", MAX_ZIP_BYTES >> 20)
}

/// A page zip being built.
pub struct PageZip {
    zip: ZipWriter<Cursor<Vec<u8>>>,
    names: BTreeSet<String>,
    files: Vec<serde_json::Value>,
    size: u64,
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(0o644)
}

impl PageZip {
    /// A zip named `zip_name` (`<title>.zip`) starting with the page's HTML file.
    ///
    /// # Errors
    /// The zip could not be written.
    pub fn new(zip_name: &str, html: Vec<u8>) -> Result<Self, String> {
        let stem = zip_name.strip_suffix(".zip").unwrap_or(zip_name);
        let mut z =
            Self { zip: ZipWriter::new(Cursor::new(Vec::new())), names: BTreeSet::new(), files: vec![], size: 0 };
        let name = format!("{}.html", super::spool_name(stem));
        z.entry(&name, &html)?;
        z.files.push(
            serde_json::json!({ "name": name, "size": html.len(), "sha256": hex::encode(Sha256::digest(&html)) }),
        );
        Ok(z)
    }

    fn entry(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        self.zip.start_file(name, options()).map_err(|e| format!("zip: {e}"))?;
        self.zip.write_all(bytes).map_err(|e| format!("zip: {e}"))?;
        self.names.insert(name.to_lowercase());
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// A name for an attachment under `attachments/`: safe, and not taken yet, also where names
    /// differ only by case (Windows and macOS unzip `Plan.pdf` and `plan.pdf` onto one file).
    fn free_name(&self, title: &str) -> String {
        let cleaned: String =
            super::spool_name(title).chars().map(|c| if ":*?\"<>|".contains(c) { '_' } else { c }).collect();
        let mut safe = cleaned.replace("..", "_");
        let stem_upper = safe.split('.').next().unwrap_or_default().trim().to_ascii_uppercase();
        let numbered = stem_upper.len() == 4
            && (stem_upper.starts_with("COM") || stem_upper.starts_with("LPT"))
            && stem_upper.ends_with(|c: char| c.is_ascii_digit());
        if numbered || ["CON", "PRN", "AUX", "NUL"].contains(&stem_upper.as_str()) {
            safe.insert(0, '_'); // a reserved device name on Windows
        }
        let (stem, ext) = match safe.rfind('.') {
            Some(i) if i > 0 => (&safe[..i], &safe[i..]),
            _ => (safe.as_str(), ""),
        };
        let mut name = format!("attachments/{safe}");
        let mut n = 2;
        while self.names.contains(&name.to_lowercase()) {
            name = format!("attachments/{stem} ({n}){ext}");
            n += 1;
        }
        name
    }

    /// Adds an attachment (`version` of it) under a safe name.
    ///
    /// # Errors
    /// The zip could not be written.
    pub fn add(&mut self, title: &str, version: &str, bytes: &[u8]) -> Result<(), String> {
        let name = self.free_name(title);
        self.entry(&name, bytes)?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        self.files.push(serde_json::json!({
            "name": name, "title": title, "version": version, "size": bytes.len(), "sha256": sha256,
        }));
        Ok(())
    }

    /// Attachments added so far.
    pub fn count(&self) -> usize {
        self.files.len() - 1
    }

    /// Uncompressed bytes added so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The finished zip, with `manifest.json` last.
    ///
    /// # Errors
    /// The zip could not be written.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        let manifest = serde_json::json!({ "attachments": self.count(), "files": self.files });
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| format!("manifest: {e}"))?;
        self.entry("manifest.json", &text)?;
        Ok(self.zip.finish().map_err(|e| format!("zip: {e}"))?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn hostile_attachment_names_stay_inside_the_zip_and_duplicates_are_numbered() {
        let mut z = PageZip::new("Spec.zip", b"<html></html>".to_vec()).expect("zip");
        for title in [
            "../../etc/passwd",
            "/abs/x.sh",
            ".hidden",
            "a\u{202e}fdp.exe",
            "plan.pdf",
            "Plan.PDF",
            "..\\..\\w.bat",
            "a:b?.txt",
            "CON.txt",
        ] {
            z.add(title, "1", title.as_bytes()).expect("add");
        }
        assert_eq!(z.count(), 9);
        let bytes = z.finish().expect("finish");
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("archive");
        let mut names = vec![];
        for i in 0..archive.len() {
            let f = archive.by_index(i).expect("entry");
            let name = f.name().expect("name").to_string();
            assert!(f.enclosed_name().is_some(), "{name} escapes");
            names.push(name);
        }
        assert_eq!(names[0], "Spec.html");
        assert!(
            names.iter().skip(1).take(9).all(|n| n.starts_with("attachments/") && !n[12..].contains('/')),
            "{names:?}"
        );
        assert!(names.iter().all(|n| !n.contains("..") && !n.contains('\u{202e}')), "{names:?}");
        assert!(names.contains(&"attachments/plan.pdf".to_string()), "{names:?}");
        assert!(names.contains(&"attachments/Plan (2).PDF".to_string()), "case-insensitive: {names:?}");
        assert!(names.contains(&"attachments/a_b_.txt".to_string()), "{names:?}");
        assert!(names.contains(&"attachments/_CON.txt".to_string()), "{names:?}");
        let mut manifest = String::new();
        archive.by_name("manifest.json").expect("manifest").read_to_string(&mut manifest).expect("read");
        let m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
        assert_eq!(m["attachments"], 9);
        assert_eq!(m["files"][5]["title"], "plan.pdf");
        assert_eq!(m["files"][5]["sha256"], hex::encode(Sha256::digest(b"plan.pdf")));
    }
}
