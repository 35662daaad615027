//! What a body is, by its bytes (never by its name): the `content` check of an accept entry.
//!
//! Magic bytes come from `infer` (pdf, png, jpeg, zip). Office documents are zip archives, and
//! `infer` tells them apart only when Office's own entry order is used, so docx/xlsx are decided
//! here from the archive's central directory (`[Content_Types].xml` plus `word/` or `xl/` parts).
//! Text, CSV and XML are decided from the first [`TEXT_SCAN`] bytes. Reading stops there: a check
//! costs at most that much I/O besides the zip directory.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::PathBuf;

/// How much of a body is read to decide whether it is text, CSV or XML.
pub const TEXT_SCAN: u64 = 1024 * 1024;

/// The body of a transfer, for content and archive checks.
#[derive(Debug, Clone)]
pub enum Body {
    /// A file on disk (the spool's committed body). Only read, never changed.
    Path(PathBuf),
    /// Bytes in memory (rule tests, small bodies).
    Bytes(Vec<u8>),
}

/// Something a zip archive can be read from.
pub(crate) trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

impl Body {
    /// A fresh reader positioned at the start.
    pub(crate) fn open(&self) -> io::Result<Box<dyn ReadSeek + '_>> {
        Ok(match self {
            Body::Path(p) => Box::new(BufReader::new(File::open(p)?)),
            Body::Bytes(b) => Box::new(Cursor::new(b.as_slice())),
        })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match self {
            Body::Path(p) => Ok(std::fs::metadata(p)?.len()),
            Body::Bytes(b) => Ok(b.len() as u64),
        }
    }
}

/// A content kind a rule may expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContentKind {
    /// A PDF document (`%PDF` within the first KiB).
    Pdf,
    /// Any zip archive (docx and xlsx included).
    Zip,
    /// A Word document: a zip with `[Content_Types].xml` and `word/` parts.
    Docx,
    /// An Excel workbook: a zip with `[Content_Types].xml` and `xl/` parts.
    Xlsx,
    /// XML text (`<?xml` or a root element first).
    Xml,
    /// Text: no NUL or control bytes (UTF-8 or an 8-bit encoding); CSV and XML are text too.
    Text,
    /// CSV: text of at least two columns with the same count in every row.
    Csv,
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
}

impl ContentKind {
    /// Every kind, in the order documented.
    pub const ALL: [ContentKind; 9] = [
        ContentKind::Pdf,
        ContentKind::Zip,
        ContentKind::Docx,
        ContentKind::Xlsx,
        ContentKind::Xml,
        ContentKind::Text,
        ContentKind::Csv,
        ContentKind::Png,
        ContentKind::Jpeg,
    ];

    /// The name used in rule files.
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Pdf => "pdf",
            ContentKind::Zip => "zip",
            ContentKind::Docx => "docx",
            ContentKind::Xlsx => "xlsx",
            ContentKind::Xml => "xml",
            ContentKind::Text => "text",
            ContentKind::Csv => "csv",
            ContentKind::Png => "png",
            ContentKind::Jpeg => "jpeg",
        }
    }

    /// Parses a rule file's name for a kind (`jpg` is accepted for `jpeg`).
    pub fn parse(s: &str) -> Option<ContentKind> {
        if s == "jpg" {
            return Some(ContentKind::Jpeg);
        }
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The kind a file extension promises, if it is one of ours.
    pub fn for_extension(ext: &str) -> Option<ContentKind> {
        match ext.to_ascii_lowercase().as_str() {
            "txt" => Some(ContentKind::Text),
            "jpg" => Some(ContentKind::Jpeg),
            e => Self::ALL.into_iter().find(|k| k.name() == e),
        }
    }

    /// Zip-based kinds get the archive checks.
    pub fn is_zip_based(self) -> bool {
        matches!(self, ContentKind::Zip | ContentKind::Docx | ContentKind::Xlsx)
    }

    /// For reasons: "pdf", "docx (a Word document)".
    pub fn label(self) -> &'static str {
        match self {
            ContentKind::Docx => "docx (a Word document)",
            ContentKind::Xlsx => "xlsx (an Excel workbook)",
            ContentKind::Text => "text",
            ContentKind::Csv => "csv (comma-separated rows)",
            k => k.name(),
        }
    }
}

/// The layout of a zip archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZipLayout {
    Plain,
    Docx,
    Xlsx,
}

/// What a body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Empty,
    Pdf,
    Png,
    Jpeg,
    Zip(ZipLayout),
    /// Starts like a zip but its directory cannot be read.
    BrokenZip(String),
    Xml,
    Csv,
    Text,
    /// Anything else: the MIME type if `infer` knows it.
    Other(Option<String>),
}

impl Sniffed {
    /// For reasons: "its content is {describe}".
    pub(crate) fn describe(&self) -> String {
        match self {
            Sniffed::Empty => "empty (0 bytes)".into(),
            Sniffed::Pdf => "a PDF document".into(),
            Sniffed::Png => "a PNG image".into(),
            Sniffed::Jpeg => "a JPEG image".into(),
            Sniffed::Zip(ZipLayout::Plain) => "a zip archive".into(),
            Sniffed::Zip(ZipLayout::Docx) => "a Word document (docx)".into(),
            Sniffed::Zip(ZipLayout::Xlsx) => "an Excel workbook (xlsx)".into(),
            Sniffed::BrokenZip(e) => format!("a damaged zip archive ({e})"),
            Sniffed::Xml => "XML".into(),
            Sniffed::Csv => "CSV text".into(),
            Sniffed::Text => "plain text".into(),
            Sniffed::Other(Some(mime)) => format!("binary data of type {mime}"),
            Sniffed::Other(None) => "binary data of no known type".into(),
        }
    }

    /// Whether this body is acceptable as `kind`.
    pub(crate) fn satisfies(&self, kind: ContentKind) -> bool {
        match kind {
            ContentKind::Pdf => *self == Sniffed::Pdf,
            ContentKind::Zip => matches!(self, Sniffed::Zip(_)),
            ContentKind::Docx => *self == Sniffed::Zip(ZipLayout::Docx),
            ContentKind::Xlsx => *self == Sniffed::Zip(ZipLayout::Xlsx),
            ContentKind::Xml => *self == Sniffed::Xml,
            ContentKind::Text => matches!(self, Sniffed::Text | Sniffed::Csv | Sniffed::Xml),
            ContentKind::Csv => *self == Sniffed::Csv,
            ContentKind::Png => *self == Sniffed::Png,
            ContentKind::Jpeg => *self == Sniffed::Jpeg,
        }
    }

    /// Whether the body is a readable zip archive (so the archive checks apply).
    pub(crate) fn is_zip(&self) -> bool {
        matches!(self, Sniffed::Zip(_))
    }
}

/// Decides what `body` is.
///
/// # Errors
/// Only I/O errors reading the body; a body of any shape yields a [`Sniffed`].
pub(crate) fn sniff(body: &Body) -> io::Result<Sniffed> {
    let mut head = Vec::new();
    body.open()?.take(TEXT_SCAN).read_to_end(&mut head)?;
    let truncated = head.len() as u64 == TEXT_SCAN;
    if head.is_empty() {
        return Ok(Sniffed::Empty);
    }
    if infer::archive::is_pdf(&head) {
        return Ok(Sniffed::Pdf);
    }
    if infer::image::is_png(&head) {
        return Ok(Sniffed::Png);
    }
    if infer::image::is_jpeg(&head) {
        return Ok(Sniffed::Jpeg);
    }
    if infer::archive::is_zip(&head) {
        return Ok(match zip_layout(body.open()?) {
            Ok(layout) => Sniffed::Zip(layout),
            Err(e) => Sniffed::BrokenZip(e),
        });
    }
    if let Some(text) = as_text(&head) {
        if is_xml(text) {
            return Ok(Sniffed::Xml);
        }
        if is_csv(text, truncated) {
            return Ok(Sniffed::Csv);
        }
        return Ok(Sniffed::Text);
    }
    Ok(Sniffed::Other(infer::get(&head).map(|t| t.mime_type().to_string())))
}

fn zip_layout(mut reader: impl Read + Seek) -> Result<ZipLayout, String> {
    use super::archive::{MAX_ZIP_ENTRIES, declared_entries};
    match declared_entries(&mut reader) {
        Ok(Some(n)) if n > MAX_ZIP_ENTRIES => return Err(format!("it declares {n} entries")),
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    let archive = zip::ZipArchive::new(reader).map_err(|e| e.to_string())?;
    let mut content_types = false;
    let (mut word, mut xl) = (false, false);
    for name in archive.file_names_raw() {
        content_types |= name == b"[Content_Types].xml";
        word |= name.starts_with(b"word/");
        xl |= name.starts_with(b"xl/");
    }
    Ok(match (content_types, word, xl) {
        (true, true, false) => ZipLayout::Docx,
        (true, false, true) => ZipLayout::Xlsx,
        _ => ZipLayout::Plain,
    })
}

/// The bytes without a UTF-8 byte-order mark, if they look like text.
fn as_text(head: &[u8]) -> Option<&[u8]> {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let binary = text.iter().any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F);
    (!binary).then_some(text)
}

fn is_xml(text: &[u8]) -> bool {
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &text[i..]);
    start.starts_with(b"<?xml") || (start.first() == Some(&b'<') && start.get(1).is_some_and(u8::is_ascii_alphabetic))
}

/// At least two columns, the same number in every complete row of the scanned part.
fn is_csv(text: &[u8], truncated: bool) -> bool {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(false).from_reader(text);
    let mut records = reader.byte_records();
    let width = match records.next() {
        Some(Ok(r)) if r.len() >= 2 => r.len(),
        _ => return false,
    };
    let mut rows: Vec<Result<usize, ()>> = records.map(|r| r.map(|r| r.len()).map_err(|_| ())).collect();
    if truncated {
        // The last row may be cut off by the scan limit.
        rows.pop();
    }
    rows.iter().all(|r| *r == Ok(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(bytes: &[u8]) -> Sniffed {
        sniff(&Body::Bytes(bytes.to_vec())).expect("in-memory read")
    }

    #[test]
    fn magic_bytes_decide_not_names() {
        assert_eq!(kind_of(b"%PDF-1.7\n%%EOF\n"), Sniffed::Pdf);
        assert_eq!(kind_of(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Sniffed::Png);
        assert_eq!(kind_of(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Sniffed::Jpeg);
        assert_eq!(kind_of(b""), Sniffed::Empty);
        assert_eq!(kind_of(b"GIF89a\x01\0\x01\0\0\0\0"), Sniffed::Other(Some("image/gif".into())));
        assert_eq!(kind_of(b"\0\x01\x02garbage"), Sniffed::Other(None));
    }

    #[test]
    fn text_csv_and_xml_are_told_apart() {
        assert_eq!(kind_of(b"id,name\n1,alpha\n2,beta\n"), Sniffed::Csv);
        assert_eq!(kind_of(b"\xEF\xBB\xBFid;name\n"), Sniffed::Text, "one column (no comma) is not CSV");
        assert_eq!(kind_of(b"id,name\n1,alpha,extra\n"), Sniffed::Text, "ragged rows are not CSV");
        assert_eq!(kind_of(b"  <?xml version=\"1.0\"?><a/>"), Sniffed::Xml);
        assert_eq!(kind_of(b"<invoice/>"), Sniffed::Xml);
        assert_eq!(kind_of(b"caf\xe9 latin-1 text\n"), Sniffed::Text);
        assert!(Sniffed::Csv.satisfies(ContentKind::Text) && Sniffed::Xml.satisfies(ContentKind::Text));
        assert!(!Sniffed::Text.satisfies(ContentKind::Csv));
    }

    #[test]
    fn a_broken_zip_is_a_value_not_an_error() {
        let s = kind_of(b"PK\x03\x04 this is not really a zip archive at all");
        assert!(matches!(s, Sniffed::BrokenZip(_)), "{s:?}");
        assert!(!s.satisfies(ContentKind::Zip));
    }

    #[test]
    fn kinds_parse_and_map_extensions() {
        for k in ContentKind::ALL {
            assert_eq!(ContentKind::parse(k.name()), Some(k));
        }
        assert_eq!(ContentKind::parse("jpg"), Some(ContentKind::Jpeg));
        assert_eq!(ContentKind::for_extension("PDF"), Some(ContentKind::Pdf));
        assert_eq!(ContentKind::for_extension("txt"), Some(ContentKind::Text));
        assert_eq!(ContentKind::for_extension("exe"), None);
    }
}
