//! HTML from files made safe for the systems that render it: a Confluence page body (XHTML
//! storage format) and a Contentstack rich-text field. One sanitizer for both, built on
//! `ammonia` (an allowlist of tags, attributes and URL schemes over a real HTML5 parser), not on
//! patterns: a file is hostile input, and pattern-based filters are the classic way to let
//! `<scr<script>ipt>`, an unclosed `<script`, or `href="javascript:..."` through.
//!
//! What survives: ammonia's default allowlist of structural and text tags (headings, paragraphs,
//! lists, tables, links, images, emphasis, code), with link and image URLs limited to `http`,
//! `https` and `mailto`; no scripts, styles, frames, forms, event handlers or `style`
//! attributes. The result is then written as XHTML (void elements closed), which Confluence's
//! storage format requires.

use regex::Regex;
use std::collections::HashSet;
use std::sync::LazyLock;

static BODY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<body\b[^>]*>(.*)</body\s*>").unwrap_or_else(|e| panic!("static regex: {e}")));
static HEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<head\b.*?</head\s*>").unwrap_or_else(|e| panic!("static regex: {e}")));
/// Void elements as html5ever writes them (`<br>`, `<img src="x">`): closed for XHTML. Attribute
/// values come out of the serializer with `"` escaped, so `[^>]*` cannot end inside one unless a
/// value holds a literal `>` (then the body is malformed XHTML and the target refuses it whole).
static VOID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<(br|hr|img|col|wbr|area|source|track)\b([^>]*?)\s*/?>")
        .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// The body of an HTML document (or the whole text without `<body>`), sanitized, as XHTML.
pub fn sanitize(html: &str) -> String {
    // Only the body: a document's <head> (title, meta, styles) is not content.
    let inner = match BODY.captures(html).and_then(|c| c.get(1)) {
        Some(m) => m.as_str().to_string(),
        None => HEAD.replace_all(html, "").into_owned(),
    };
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    let clean = ammonia::Builder::default().url_schemes(schemes).link_rel(None).clean(&inner).to_string();
    VOID.replace_all(&clean, "<$1$2 />").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn a_document_keeps_its_body_and_loses_what_must_not_be_rendered() {
        let html = "<!DOCTYPE html><html><head><title>x</title><style>p{}</style></head>\
                    <body class=\"a\"><h1 onclick=\"steal()\">Charter</h1><script>alert(1)</script>\
                    <p>Scope</p><iframe src=\"https://evil\"></iframe></body></html>";
        assert_eq!(sanitize(html), "<h1>Charter</h1><p>Scope</p>");
        assert_eq!(sanitize("<p>bare</p>"), "<p>bare</p>");
        assert_eq!(sanitize("<html><head><title>t</title></head><p>x</p></html>"), "<p>x</p>");
    }

    #[test]
    fn the_tricks_pattern_filters_miss_are_caught() {
        for hostile in [
            "<p>a</p><scr<script>ipt>alert(1)</script>",
            "<p>a</p><script src=x",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\" JaVaScRiPt:alert(1)\">x</a>",
            "<img src=\"data:text/html;base64,PHNjcmlwdD4=\">",
            "<svg onload=alert(1)><p>a</p></svg>",
            "<p style=\"background:url(javascript:alert(1))\">a</p>",
            "<form action=\"https://evil\"><input name=p></form>",
            "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
        ] {
            let out = sanitize(hostile).to_lowercase();
            for bad in ["<script", "javascript:", "onload", "data:", "style=", "<form", "<input", "alert(1)</"] {
                assert!(!out.contains(bad), "{hostile:?} gave {out:?}");
            }
        }
        assert_eq!(sanitize("<a href=\"https://example.com/x\">x</a>"), "<a href=\"https://example.com/x\">x</a>");
    }

    #[test]
    fn void_elements_are_written_as_xhtml() {
        assert_eq!(sanitize("<p>a<br>b</p><hr>"), "<p>a<br />b</p><hr />");
        assert_eq!(
            sanitize("<img src=\"https://example.com/a.png\" alt=\"a\">"),
            "<img src=\"https://example.com/a.png\" alt=\"a\" />"
        );
    }
}
