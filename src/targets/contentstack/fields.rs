//! The entry a document becomes: each configured field filled from metadata templates, the body
//! as rich text, the asset's uid, or a reference; and the comparison that tells whether an
//! existing entry already holds these values (so a redelivery adds no version).
//!
//! - **Text**: `{key}` placeholders over the metadata. `title` and the unique field must render
//!   (a missing key is an exception naming it); any other field whose template names a missing
//!   key is left out of the entry, as the Canto target does with custom fields.
//! - **Rich text** (decided): an HTML body (`.html`, `.htm`, `.xhtml`) is sanitised with the very
//!   sanitizer the Confluence page publish uses (`<body>` only; no `script`, `style`, `iframe`,
//!   `object`, `embed`, `form`, `on*=`); a text body (`.txt`, `.md`, `.text`) becomes escaped
//!   paragraphs. Any other file (a PDF, an image) gives no rich text: the field is left out and
//!   the file only travels as the asset. A body that is not UTF-8 or over [`MAX_RICH_TEXT`] is an
//!   exception.
//! - **Asset**: the uid of the asset uploaded (or found) for this document.
//! - **Reference**: `[{"uid": <template>, "_content_type_uid": <content type>}]`.
//!
//! [`holds`] compares asset and reference fields by uid (the API may return an asset field as
//! the asset object) and everything else by value. A stack that normalises rich text on save
//! would make a redelivery update the entry once more: one extra version, never a second entry.

use crate::config::contentstack::{ContentstackConfig, FieldSource};
use crate::targets::canto::edit::render;
use crate::targets::confluence::publish::{storage_of_html, storage_of_text};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Largest body turned into rich text.
pub const MAX_RICH_TEXT: u64 = 4 << 20;

/// How the body can feed a rich text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// HTML, sanitised.
    Html,
    /// Plain text, escaped into paragraphs.
    Text,
    /// Anything else: no rich text.
    Binary,
}

/// The body's kind, by the file name's extension.
pub fn body_kind(name: &str) -> BodyKind {
    match name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("html" | "htm" | "xhtml") => BodyKind::Html,
        Some("txt" | "md" | "text") => BodyKind::Text,
        _ => BodyKind::Binary,
    }
}

/// Whether the mapping needs the body as rich text.
pub fn wants_rich_text(cfg: &ContentstackConfig) -> bool {
    cfg.fields.values().any(|f| *f == FieldSource::RichText)
}

/// The rich text of a body of `kind`, from its bytes.
///
/// # Errors
/// The body is not UTF-8 (the reason says so).
pub fn rich_text(kind: BodyKind, bytes: &[u8]) -> Result<Option<String>, String> {
    if kind == BodyKind::Binary {
        return Ok(None);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the body is not UTF-8 text, so it cannot be rich text")?;
    Ok(Some(if kind == BodyKind::Html { storage_of_html(text) } else { storage_of_text(text) }))
}

/// The entry's fields for a document.
///
/// # Errors
/// `title` or the unique field cannot be rendered from the metadata (the reason names the key).
pub fn entry_fields(
    cfg: &ContentstackConfig,
    meta: &BTreeMap<String, String>,
    rich: Option<&str>,
    asset_uid: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, src) in &cfg.fields {
        let value = match src {
            FieldSource::Text(t) => match render(t, meta) {
                Some(v) => Some(json!(v)),
                None if name == "title" || *name == cfg.unique_field => {
                    return Err(format!(
                        "entry field `{name}` needs metadata the document lacks (template `{t}`): \
                         make the rule set it"
                    ));
                }
                None => None,
            },
            FieldSource::RichText => rich.map(|r| json!(r)),
            FieldSource::Asset => asset_uid.map(|u| json!(u)),
            FieldSource::Reference { content_type, uid } => render(uid, meta)
                .filter(|u| !u.is_empty())
                .map(|u| json!([{ "uid": u, "_content_type_uid": content_type }])),
        };
        if let Some(v) = value {
            out.insert(name.clone(), v);
        }
    }
    if out.get(&cfg.unique_field).and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(format!("the unique field `{}` renders empty: the rule must set it", cfg.unique_field));
    }
    Ok(out)
}

/// The uid(s) a field value names: an asset field may come back as the uid or as the asset
/// object; a reference as a list of `{uid, _content_type_uid}`.
fn uids(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Object(o) => o.get("uid").and_then(Value::as_str).map(|u| vec![u]),
        Value::Array(list) => list.iter().map(|x| x.get("uid").and_then(Value::as_str)).collect(),
        _ => None,
    }
}

/// Whether `entry` (as the API returns it) already holds every value of `wanted`.
pub fn holds(entry: &Value, wanted: &Map<String, Value>, cfg: &ContentstackConfig) -> bool {
    wanted.iter().all(|(k, want)| {
        let Some(have) = entry.get(k) else { return false };
        match cfg.fields.get(k) {
            Some(FieldSource::Asset | FieldSource::Reference { .. }) => {
                uids(have).is_some() && uids(have) == uids(want)
            }
            _ => have == want,
        }
    })
}

/// The asset uid an existing entry's asset field holds, if any.
pub fn asset_of(entry: &Value, cfg: &ContentstackConfig) -> Option<String> {
    let field = cfg.fields.iter().find(|(_, s)| **s == FieldSource::Asset)?.0;
    uids(entry.get(field)?)?.first().map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::contentstack::Credential;
    use crate::config::secret::SecretSource;

    fn cfg() -> ContentstackConfig {
        let mut fields = BTreeMap::new();
        fields.insert("title".into(), FieldSource::Text("{title}".into()));
        fields.insert("source_id".into(), FieldSource::Text("{doc}".into()));
        fields.insert("summary".into(), FieldSource::Text("{summary}".into()));
        fields.insert("body".into(), FieldSource::RichText);
        fields.insert("file".into(), FieldSource::Asset);
        fields.insert(
            "campaign".into(),
            FieldSource::Reference { content_type: "campaign".into(), uid: "{campaign_uid}".into() },
        );
        ContentstackConfig {
            base_url: "http://x".into(),
            api_key: "k".into(),
            credential: Credential::ManagementToken(SecretSource::Env("T".into())),
            content_type: "campaign_asset".into(),
            unique_field: "source_id".into(),
            fields,
            environments: vec!["staging".into()],
            locales: vec!["en-us".into()],
            asset_folder: None,
            reads_per_sec: 10,
            writes_per_sec: 10,
            timeout: std::time::Duration::from_secs(5),
        }
    }

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn contentstack_fields_map_text_rich_text_asset_and_reference() {
        let m = meta(&[("title", "Spring"), ("doc", "D1"), ("campaign_uid", "bltc")]);
        let f = entry_fields(&cfg(), &m, Some("<p>x</p>"), Some("blta")).expect("fields");
        assert_eq!(f["title"], "Spring");
        assert_eq!(f["source_id"], "D1");
        assert!(f.get("summary").is_none(), "missing optional metadata leaves the field out");
        assert_eq!(f["body"], "<p>x</p>");
        assert_eq!(f["file"], "blta");
        assert_eq!(f["campaign"], json!([{"uid": "bltc", "_content_type_uid": "campaign"}]));
        let err = entry_fields(&cfg(), &meta(&[("title", "T")]), None, None).expect_err("no unique value");
        assert!(err.contains("source_id"), "{err}");
    }

    #[test]
    fn contentstack_existing_entry_holding_the_values_is_recognised() {
        let c = cfg();
        let m = meta(&[("title", "Spring"), ("doc", "D1"), ("campaign_uid", "bltc")]);
        let f = entry_fields(&c, &m, None, Some("blta")).expect("fields");
        let mut e = Value::Object(f.clone());
        e["file"] = json!({"uid": "blta", "url": "https://images/x"});
        e["_version"] = json!(3);
        assert!(holds(&e, &f, &c));
        assert_eq!(asset_of(&e, &c).as_deref(), Some("blta"));
        e["title"] = json!("Autumn");
        assert!(!holds(&e, &f, &c));
    }

    #[test]
    fn contentstack_rich_text_sanitises_html_and_escapes_text() {
        let html = b"<html><body><p onclick=\"x()\">Hi</p><script>alert(1)</script></body></html>";
        assert_eq!(rich_text(BodyKind::Html, html).expect("html").as_deref(), Some("<p>Hi</p>"));
        assert_eq!(rich_text(BodyKind::Text, b"a < b\n\nc").expect("text").as_deref(), Some("<p>a &lt; b</p><p>c</p>"));
        assert_eq!(rich_text(BodyKind::Binary, b"%PDF").expect("pdf"), None);
        assert!(rich_text(BodyKind::Text, &[0xff, 0xfe]).is_err());
        assert_eq!(body_kind("Launch.HTML"), BodyKind::Html);
        assert_eq!(body_kind("x.pdf"), BodyKind::Binary);
    }
}
