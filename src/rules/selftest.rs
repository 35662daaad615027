//! Inline rule tests (`[[test]]`): synthesise a body, evaluate, compare with what was expected.
//!
//! Bodies are small but real: a PDF header and trailer, a zip written with the zip crate, Office
//! layouts for docx/xlsx, PNG and JPEG signatures, text and CSV, plus hostile archives (zip slip,
//! absolute entry, symlink, ratio bomb, a broken zip) so that a rule author can test archive limits.

use super::content::Body;
use super::model::{Expect, TestCase};
use super::{Input, Outcome, RuleSet, Transfer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

/// Body kinds a `[[test]]` may ask for with `content = "…"`.
pub const BODIES: [&str; 17] = [
    "pdf",
    "zip",
    "docx",
    "xlsx",
    "xml",
    "text",
    "csv",
    "png",
    "jpeg",
    "empty",
    "binary",
    "zip-slip",
    "zip-absolute",
    "zip-symlink",
    "zip-bomb",
    "zip-broken",
    "zip-empty",
];

const PDF: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\0IEND\xaeB`\x82";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xFF\xD9";

/// Builds a zip in memory: `(name, bytes)` files and `(name, target)` symlinks.
pub fn make_zip(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let err = |e: &dyn fmt::Display| format!("cannot build test zip: {e}");
    for (name, data) in files {
        w.start_file(*name, opts).map_err(|e| err(&e))?;
        w.write_all(data).map_err(|e| err(&e))?;
    }
    for (name, target) in links {
        w.add_symlink(*name, *target, opts).map_err(|e| err(&e))?;
    }
    Ok(w.finish().map_err(|e| err(&e))?.into_inner())
}

const CONTENT_TYPES: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>";
const RELS: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"/>";

/// The bytes of a synthetic body of kind `kind` (one of [`BODIES`]).
///
/// # Errors
/// An unknown kind, or the zip writer failing.
pub fn synthesise(kind: &str) -> Result<Vec<u8>, String> {
    Ok(match kind {
        "pdf" => PDF.to_vec(),
        "png" => PNG.to_vec(),
        "jpeg" => JPEG.to_vec(),
        "text" => b"This is a plain text file.\n".to_vec(),
        "csv" => b"id,name,size\n1,alpha,100\n2,beta,200\n".to_vec(),
        "xml" => b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<document><title>test</title></document>\n".to_vec(),
        "empty" => Vec::new(),
        "binary" => (0u8..=255).cycle().take(4096).collect(),
        "zip" => make_zip(&[("readme.txt", b"hello\n"), ("data/items.csv", b"id,name\n1,a\n")], &[])?,
        "docx" => make_zip(
            &[("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", RELS), ("word/document.xml", b"<w:document/>")],
            &[],
        )?,
        "xlsx" => make_zip(
            &[("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", RELS), ("xl/workbook.xml", b"<workbook/>")],
            &[],
        )?,
        "zip-slip" => make_zip(&[("ok.txt", b"fine\n"), ("../../evil.sh", b"#!/bin/sh\n")], &[])?,
        "zip-absolute" => make_zip(&[("/etc/cron.d/evil", b"* * * * * root true\n")], &[])?,
        "zip-symlink" => make_zip(&[("ok.txt", b"fine\n")], &[("link", "/etc/passwd")])?,
        "zip-bomb" => make_zip(&[("zeros.bin", &vec![0u8; 4 << 20])], &[])?,
        "zip-broken" => b"PK\x03\x04\x14\0\0\0\x08\0 truncated, no central directory".to_vec(),
        "zip-empty" => make_zip(&[], &[])?,
        other => return Err(format!("unknown test body `{other}`")),
    })
}

/// The result of one `[[test]]`.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// Channel of the rule file.
    pub channel: String,
    /// Test name (its `name`, or its file).
    pub name: String,
    /// `rules/<channel>.toml:<line>` of the test.
    pub location: String,
    /// Whether everything expected happened.
    pub passed: bool,
    /// What differed, one line each (empty when passed).
    pub diffs: Vec<String>,
    /// What the rules decided (`None` if the body could not be synthesised).
    pub outcome: Option<Outcome>,
}

impl fmt::Display for TestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.passed { "ok  " } else { "FAIL" };
        write!(f, "{status} {}: {} ({})", self.channel, self.name, self.location)?;
        for d in &self.diffs {
            write!(f, "\n       {d}")?;
        }
        Ok(())
    }
}

impl RuleSet {
    /// Runs every `[[test]]` of this rule file.
    pub fn run_tests(&self) -> Vec<TestResult> {
        self.tests.iter().map(|t| self.run_test(t)).collect()
    }

    fn run_test(&self, t: &TestCase) -> TestResult {
        let mut result = TestResult {
            channel: self.channel.clone(),
            name: t.name.clone(),
            location: t.site.loc.clone(),
            passed: false,
            diffs: Vec::new(),
            outcome: None,
        };
        let bytes = match synthesise(&t.body) {
            Ok(b) => b,
            Err(e) => {
                result.diffs.push(e);
                return result;
            }
        };
        let field = |k: &str, default: String| t.transfer.get(k).cloned().unwrap_or(default);
        let input = Input {
            name: t.file.clone(),
            size: Some(t.size.unwrap_or(bytes.len() as u64)),
            account: t.account.clone(),
            transfer: Transfer {
                id: field("id", "01JTEST0000000000000000000".into()),
                sha256: field("sha256", hex::encode(Sha256::digest(&bytes))),
                received_at: field("received_at", "2026-01-15T09:30:00Z".into()),
                protocol: field("protocol", "sftp".into()),
                source: t
                    .transfer
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("source.").map(|k| (k.to_string(), v.clone())))
                    .collect(),
            },
            sidecar: t.sidecar.clone(),
            overrides: t.overrides.clone(),
            body: Some(Body::Bytes(bytes)),
        };
        let outcome = self.evaluate(&input);
        result.diffs = compare(&t.expect, &outcome);
        result.passed = result.diffs.is_empty();
        result.outcome = Some(outcome);
        result
    }
}

fn compare(expect: &Expect, outcome: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    match (expect, outcome) {
        (Expect::Accepted { .. }, Outcome::Excepted(r)) => {
            diffs.push(format!("expected accepted, got excepted ({}) by {}: {}", r.kind.name(), r.rule, r.reason));
        }
        (Expect::Excepted { .. }, Outcome::Accepted { entry, destination, .. }) => {
            diffs.push(format!("expected excepted, got accepted by entry `{entry}` to {destination}"));
        }
        (
            Expect::Accepted { entry, metadata, destination },
            Outcome::Accepted { entry: got, metadata: m, destination: d, .. },
        ) => {
            if let Some(e) = entry
                && e != got
            {
                diffs.push(format!("entry: expected `{e}`, got `{got}`"));
            }
            for (k, v) in metadata {
                match m.get(k) {
                    Some(g) if g == v => {}
                    Some(g) => diffs.push(format!("metadata.{k}: expected `{v}`, got `{g}`")),
                    None => diffs.push(format!("metadata.{k}: expected `{v}`, got no value")),
                }
            }
            if let Some(dest) = destination
                && dest != d
            {
                diffs.push(format!("destination: expected `{dest}`, got `{d}`"));
            }
        }
        (Expect::Excepted { reason, kind }, Outcome::Excepted(r)) => {
            if let Some(k) = kind
                && *k != r.kind
            {
                diffs.push(format!("kind: expected `{}`, got `{}` ({})", k.name(), r.kind.name(), r.reason));
            }
            if let Some(want) = reason
                && !r.reason.contains(want.as_str())
            {
                diffs.push(format!("reason: expected to contain `{want}`, got `{}`", r.reason));
            }
        }
    }
    diffs
}
