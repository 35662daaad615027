//! Metadata onto an asset with `PUT /api/v1/batch/edit`: keywords and tags from the metadata
//! keys the target names, custom fields from templates over the metadata, approval status.
//! A template naming a metadata key the document lacks leaves that field alone.

use super::client::{ApiError, Client};
use crate::config::canto::CantoConfig;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `{key}` placeholders replaced by metadata values; `None` when one is missing.
pub fn render(template: &str, meta: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let j = after.find('}')?;
        out.push_str(meta.get(&after[..j])?);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn prop(id: &str, value: &str, action: &str, custom: bool) -> Value {
    json!({ "propertyId": id, "propertyValue": value, "action": action, "customField": custom })
}

/// The properties the target's mapping makes of a document's metadata.
pub fn properties(cfg: &CantoConfig, meta: &BTreeMap<String, String>) -> Vec<Value> {
    let values = |keys: &[String]| -> Vec<String> {
        keys.iter()
            .filter_map(|k| meta.get(k))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut props = vec![];
    let kw = values(&cfg.keywords);
    if !kw.is_empty() {
        props.push(prop("keyword", &kw.join(","), "add", false));
    }
    let tags = values(&cfg.tags);
    if !tags.is_empty() {
        props.push(prop("tag", &tags.join(","), "add", false));
    }
    for (field, t) in &cfg.custom {
        if let Some(v) = render(t, meta) {
            props.push(prop(field, &v, "", true));
        }
    }
    props
}

/// Sets `properties` (approval status: `approvalStatus`; custom fields: `custom`) on one asset.
///
/// # Errors
/// The classified failure, or a reply other than `success`.
pub async fn edit(
    client: &Client,
    scheme: &str,
    id: &str,
    mut props: Vec<Value>,
    approval: Option<&str>,
    custom: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if let Some(a) = approval {
        props.push(prop("approvalStatus", a, "", false));
    }
    for (k, v) in custom {
        props.push(prop(k, v, "", true));
    }
    if props.is_empty() {
        return Ok(());
    }
    let body = json!({ "contents": [{ "id": id, "scheme": scheme }], "properties": props });
    let reply = client.put_json("/api/v1/batch/edit", &body).await?;
    if reply.trim().eq_ignore_ascii_case("success") {
        Ok(())
    } else {
        Err(ApiError::Transient(format!("batch/edit answered {:?}", reply.chars().take(100).collect::<String>())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_metadata_and_skip_when_a_key_is_missing() {
        let meta: BTreeMap<String, String> = [("region".to_string(), "DE".to_string())].into_iter().collect();
        assert_eq!(render("{region}", &meta).as_deref(), Some("DE"));
        assert_eq!(render("r-{region}-x", &meta).as_deref(), Some("r-DE-x"));
        assert_eq!(render("{market}", &meta), None);
        assert_eq!(render("plain", &meta).as_deref(), Some("plain"));
    }
}
