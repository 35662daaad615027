//! A document published *as* a Confluence page (scenario 001's "templates CS → Confluence"):
//! an outbound job takes approved templates from Content Server and keeps one page per template,
//! updated when the template gets a new version.
//!
//! - The page title is the file name without its extension (`Project Charter.html` → page
//!   `Project Charter`), in the target's space, created under its `parent_page`.
//! - An HTML file's `<body>` (or the whole file, without one) becomes the page's storage body;
//!   a text file becomes escaped paragraphs. Any other file (a `.docx` template) is attached to
//!   the page of its name, as [`ConfluenceTarget::deliver`] does with `Title/file`.
//! - Update: `PUT /pages/{id}` with `version.number` = current + 1 and a version message naming
//!   the file and its SHA-256; a 409 re-reads the page and tries once more.
//! - Idempotent: a page whose body already is this body is the earlier delivery
//!   (`already_delivered`), so a retried run never adds a version.
//!
//! Decision (storage format): Confluence's storage format is XHTML and Confluence sanitises it on
//! save; wharf keeps only an allowlist of tags, attributes and URL schemes
//! ([`crate::targets::html`]) and writes it as XHTML. A body Confluence refuses as malformed is
//! refused for good, with Confluence's message.

use super::pages::Found;
use super::{ConfluenceTarget, Failure, Receipt, escape};
use crate::targets::{Delivery, Document};

/// Largest file turned into a page body (Confluence pages are documents, not archives).
const MAX_BODY: u64 = 4 << 20;

/// How a file becomes a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Its HTML is the page body.
    Html,
    /// Its text, escaped, is the page body.
    Text,
    /// It is attached to the page.
    Attachment,
}

fn shape_of(file: &str) -> Shape {
    match file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("html" | "htm" | "xhtml") => Shape::Html,
        Some("txt" | "md" | "text") => Shape::Text,
        _ => Shape::Attachment,
    }
}

/// The page title of a file: its name without the extension, trimmed.
pub fn page_title(file: &str) -> Option<String> {
    let stem = match file.rsplit_once('.') {
        Some((stem, _)) if !stem.trim().is_empty() => stem,
        _ => file,
    };
    let title: String = stem.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_string();
    (!title.is_empty() && title.len() <= 255).then_some(title)
}

/// The storage body of an HTML document (also the Contentstack target's rich text: one
/// sanitizer, [`crate::targets::html`]).
pub fn storage_of_html(html: &str) -> String {
    crate::targets::html::sanitize(html)
}

/// The storage body of a text document: one paragraph per blank-line-separated block (also the
/// Contentstack target's rich text of a text body).
pub fn storage_of_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br />")))
        .collect()
}

impl ConfluenceTarget {
    /// Publishes a document as the page of its name (see the module documentation).
    pub async fn publish_page(&self, doc: &Document) -> Delivery {
        let span = tracing::info_span!("confluence_page", target = %self.name, transfer = %doc.transfer_id);
        super::outcome(tracing::Instrument::instrument(self.publish_inner(doc), span).await)
    }

    /// Whether the page a published file becomes exists (recovery after an interruption).
    ///
    /// # Errors
    /// Confluence cannot be asked, as a sentence.
    pub async fn page_exists(&self, file: &str) -> Result<bool, String> {
        let title = page_title(file).ok_or_else(|| format!("{file:?} gives no page title"))?;
        let space = self.space().await.map_err(|e| e.to_string())?;
        Ok(self.page_by_title(space, &title).await.map_err(|e| e.to_string())?.is_some())
    }

    async fn publish_inner(&self, doc: &Document) -> Result<Receipt, Failure> {
        let file = doc.destination.rsplit('/').next().unwrap_or(&doc.destination);
        let title = page_title(file).ok_or_else(|| Failure::Except(format!("{file:?} gives no page title")))?;
        let shape = shape_of(file);
        if shape == Shape::Attachment {
            let attach = Document { destination: format!("{title}/{file}"), ..doc.clone() };
            return self.deliver_inner(&attach).await;
        }
        if doc.size > MAX_BODY {
            return Err(Failure::Except(format!(
                "{file} is {} bytes; a page body from a file is limited to {MAX_BODY} bytes",
                doc.size
            )));
        }
        let bytes =
            tokio::fs::read(&doc.body).await.map_err(|e| Failure::Retry(format!("reading the spooled body: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Failure::Except(format!("{file} is not UTF-8 text; it cannot become a page body")))?;
        let storage = if shape == Shape::Html { storage_of_html(&text) } else { storage_of_text(&text) };
        if storage.is_empty() {
            return Err(Failure::Except(format!("{file} has no content for a page body")));
        }
        let message = format!("wharf: {file} sha256 {}", doc.sha256);
        let space = self.space().await?.clone();
        let (page, already) = match self.find_or_create(&space, &title, &storage).await? {
            Found::Created(page) => (page, false),
            Found::Existing(page) => self.put_page(page, |_| storage.clone(), &message).await?,
        };
        tracing::info!(page = %page.id, version = page.version, already, "page published");
        Ok(Receipt {
            target: self.name.clone(),
            id: page.id.clone(),
            path: format!("{}/{}", space.key, page.title),
            version: u32::try_from(page.version).ok(),
            already_delivered: already,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_file_names() {
        assert_eq!(page_title("Project Charter.html").as_deref(), Some("Project Charter"));
        assert_eq!(page_title("a.b.txt").as_deref(), Some("a.b"));
        assert_eq!(page_title("README").as_deref(), Some("README"));
        assert_eq!(page_title(".html").as_deref(), Some(".html"));
        assert_eq!(page_title("  \u{7}.txt"), None);
    }

    #[test]
    fn text_becomes_escaped_paragraphs() {
        assert_eq!(storage_of_text("a < b\nline 2\r\n\r\n\nnext"), "<p>a &lt; b<br />line 2</p><p>next</p>");
        assert_eq!(shape_of("x.HTM"), Shape::Html);
        assert_eq!(shape_of("x.docx"), Shape::Attachment);
    }
}
