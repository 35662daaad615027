//! Confluence as a source: pages selected by CQL (v1 content search), newer than a watermark;
//! a page's storage body, labels and content properties; the page rendered as a standalone HTML
//! file; and the write-back after delivery (a label, a content property with the receipt).
//!
//! Confluence Cloud has no documented PDF export API, so a page travels as HTML.

use super::client::{ApiError, Client, enc};
use super::{escape, id_string};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How far back a watermark query reaches, to cover CQL's use of the API user's time zone.
/// Decision (UNVERIFIED): Confluence interprets CQL dates in the user's time zone (UTC offsets
/// reach ±14 h); the query starts 14 h before the watermark and (page id, version) dedupe drops
/// what was taken already.
const WATERMARK_MARGIN_HOURS: i64 = 14;

/// One page found by the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Page id.
    pub id: String,
    /// Current version number.
    pub version: u64,
    /// Title.
    pub title: String,
    /// Space key.
    pub space: String,
    /// When the current version was made (RFC 3339).
    pub modified: String,
}

/// Everything taken from a page for one transfer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The page rendered as a standalone HTML file.
    pub html: Vec<u8>,
    /// `transfer.source.*` fields.
    pub fields: BTreeMap<String, String>,
}

/// The CQL with the watermark clause and the order the poll needs.
pub fn watermarked(cql: &str, watermark: Option<&str>) -> String {
    let since = watermark
        .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
        .map(|w| w.with_timezone(&chrono::Utc) - chrono::Duration::hours(WATERMARK_MARGIN_HOURS));
    match since {
        Some(t) => format!("({cql}) AND lastmodified >= \"{}\" ORDER BY lastmodified ASC", t.format("%Y-%m-%d %H:%M")),
        None => format!("({cql}) ORDER BY lastmodified ASC"),
    }
}

/// The pages a CQL query selects, all result pages, oldest change first.
///
/// # Errors
/// The classified failure (an invalid query is a permanent 400 with the server's words).
pub async fn search(client: &Client, cql: &str) -> Result<Vec<Found>, ApiError> {
    let path = format!("/wiki/rest/api/content/search?cql={}&limit=100&expand=space,version", enc(cql));
    let results = client.all(&path).await?;
    Ok(results
        .iter()
        .filter(|r| r["type"].as_str().is_none_or(|t| t == "page"))
        .filter_map(|r| {
            Some(Found {
                id: id_string(r.get("id")?)?,
                version: r.pointer("/version/number").and_then(Value::as_u64)?,
                title: r["title"].as_str().unwrap_or_default().to_string(),
                space: r.pointer("/space/key").and_then(Value::as_str).unwrap_or_default().to_string(),
                modified: r.pointer("/version/when").and_then(Value::as_str).unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// A property key as a field name: `prop_` + the key with everything but ASCII letters, digits
/// and `_` turned into `_` (`document-type` → `prop_document_type`).
pub fn prop_field(key: &str) -> String {
    let k: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("prop_{k}").chars().take(64).collect()
}

/// A property value as text: strings as they are, anything else as JSON.
fn prop_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The standalone HTML file of a page.
pub fn render(title: &str, space: &str, version: u64, author: &str, modified: &str, storage: &str) -> String {
    let t = escape(title);
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n</head>\n<body>\n<h1>{t}</h1>\n\
         <p class=\"wharf-source\">Space {} &middot; version {version} &middot; author {} &middot; last modified {}</p>\n\
         <div class=\"wharf-body\">\n{storage}\n</div>\n</body>\n</html>\n",
        escape(space),
        escape(author),
        escape(modified)
    )
}

/// Reads the found version of a page with its labels and properties; `None` when the page has
/// moved on to another version (or is gone): the next poll takes what it is then.
///
/// # Errors
/// The classified failure.
pub async fn fetch(client: &Client, f: &Found) -> Result<Option<Fetched>, ApiError> {
    let path = format!("/wiki/api/v2/pages/{}?body-format=storage&version={}", enc(&f.id), f.version);
    let page = match client.get(&path).await {
        Ok(p) => p,
        Err(ApiError::Permanent { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if page.pointer("/version/number").and_then(Value::as_u64) != Some(f.version) {
        return Ok(None);
    }
    // Decision (UNVERIFIED): whether a `limit` above 250 is refused or clamped is not documented;
    // wharf asks for 250 at most (100 for the v1 search) and follows `_links.next`.
    let labels = client.all(&format!("/wiki/api/v2/pages/{}/labels?limit=250", enc(&f.id))).await?;
    let props = client.all(&format!("/wiki/api/v2/pages/{}/properties?limit=250", enc(&f.id))).await?;
    let labels: Vec<&str> = labels.iter().filter_map(|l| l["name"].as_str()).collect();
    let author = page["authorId"].as_str().unwrap_or_default();
    let editor = page.pointer("/version/authorId").and_then(Value::as_str).unwrap_or(author);
    let modified = page.pointer("/version/createdAt").and_then(Value::as_str).unwrap_or(&f.modified).to_string();
    let storage = page.pointer("/body/storage/value").and_then(Value::as_str).unwrap_or_default();
    let title = page["title"].as_str().unwrap_or(&f.title);
    let link = client.web_link(page.pointer("/_links/webui").and_then(Value::as_str).unwrap_or_default());
    let mut fields: BTreeMap<String, String> = [
        ("system", "confluence".to_string()),
        ("id", f.id.clone()),
        ("space", f.space.clone()),
        ("title", title.to_string()),
        ("version", f.version.to_string()),
        ("author", author.to_string()),
        ("modified_by", editor.to_string()),
        ("modified", modified.clone()),
        ("labels", labels.join(",")),
        ("link", link),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for p in &props {
        if let Some(k) = p["key"].as_str() {
            fields.insert(prop_field(k), prop_text(&p["value"]));
        }
    }
    let html = render(title, &f.space, f.version, author, &modified, storage).into_bytes();
    Ok(Some(Fetched { html, fields }))
}

/// Adds a global label to a page (v1; adding one it has is a no-op in Confluence).
///
/// # Errors
/// The classified failure.
pub async fn add_label(client: &Client, page: &str, label: &str) -> Result<(), ApiError> {
    let body = json!([{ "prefix": "global", "name": label }]);
    client.json(Method::POST, &format!("/wiki/rest/api/content/{}/label", enc(page)), Some(&body)).await?;
    Ok(())
}

/// Creates or updates a content property of a page (unchanged when it already holds `value`).
///
/// # Errors
/// The classified failure.
pub async fn set_property(client: &Client, page: &str, key: &str, value: &Value) -> Result<(), ApiError> {
    let base = format!("/wiki/api/v2/pages/{}/properties", enc(page));
    let existing = client.all(&format!("{base}?key={}", enc(key))).await?;
    match existing.iter().find(|p| p["key"].as_str() == Some(key)) {
        Some(p) if p["value"] == *value => Ok(()),
        Some(p) => {
            let pid = p.get("id").and_then(id_string).unwrap_or_default();
            let number = p.pointer("/version/number").and_then(Value::as_u64).unwrap_or(0) + 1;
            let body =
                json!({ "key": key, "value": value, "version": { "number": number, "message": "wharf receipt" } });
            client.json(Method::PUT, &format!("{base}/{}", enc(&pid)), Some(&body)).await?;
            Ok(())
        }
        None => {
            client.json(Method::POST, &base, Some(&json!({ "key": key, "value": value }))).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_reaches_back_and_orders_by_change() {
        assert_eq!(watermarked("label = \"a\"", None), "(label = \"a\") ORDER BY lastmodified ASC");
        assert_eq!(
            watermarked("type=page", Some("2024-03-04T15:30:00.000Z")),
            "(type=page) AND lastmodified >= \"2024-03-04 01:30\" ORDER BY lastmodified ASC"
        );
        assert_eq!(prop_field("Document-Type"), "prop_document_type");
    }

    #[test]
    fn the_rendered_page_escapes_its_title() {
        let h = render("A <b> & \"c\"", "ENG", 3, "557058:x", "2024-03-04T15:30:00.000Z", "<p>body</p>");
        assert!(h.contains("<h1>A &lt;b&gt; &amp; &quot;c&quot;</h1>"), "{h}");
        assert!(h.contains("<title>A &lt;b&gt;"), "{h}");
        assert!(h.contains("Space ENG &middot; version 3"), "{h}");
        assert!(h.contains("<p>body</p>"), "{h}");
    }
}
