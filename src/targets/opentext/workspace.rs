//! Business Workspaces: the workspace of a configured type whose business object id (or, without
//! one, whose name) matches a template over the metadata is searched with `GET /api/v2/businessworkspaces`
//! (`expanded_view=true`, or only recently used ones come back), created from its template with
//! `POST /api/v2/businessworkspaces` (form field `body`, JSON) when missing and allowed, and the
//! document goes into its named subfolder.

use super::client::{ApiError, Client};
use super::folders::new_id;
use crate::config::opentext::WorkspaceConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Subtype of a Business Workspace.
pub const WORKSPACE: i64 = 848;

/// Fills `{field}` placeholders from the metadata.
///
/// # Errors
/// A placeholder names a field the metadata does not have (permanent: the rules must give it).
pub fn render(template: &str, metadata: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let field = &rest[start + 1..start + end];
        let value = metadata.get(field).ok_or_else(|| ApiError::Permanent {
            status: 0,
            message: format!(
                "the workspace template `{template}` needs metadata field `{field}`, which this file has not"
            ),
        })?;
        out.push_str(value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds (or creates) the workspace for this metadata; returns its node id.
///
/// # Errors
/// No workspace and creation off (permanent), or the classified failure.
pub async fn find_or_create(
    client: &Client,
    ws: &WorkspaceConfig,
    metadata: &BTreeMap<String, String>,
) -> Result<i64, ApiError> {
    let name = ws.name.as_deref().map(|t| render(t, metadata)).transpose()?;
    let bo_id = ws.bo_id.as_deref().map(|t| render(t, metadata)).transpose()?;
    let mut query = vec![
        ("where_workspace_type_id", ws.type_id.to_string()),
        ("expanded_view", "true".to_string()),
        ("fields", "properties".to_string()),
        ("action", "properties-".to_string()),
        ("limit", "2".to_string()),
    ];
    // The business object id is the stable key; the name is searched only without one (and is
    // what a created workspace is called).
    match (&bo_id, &name) {
        (Some(b), _) => query.push(("where_bo_id", b.clone())),
        (None, Some(n)) => query.push(("where_name", n.clone())),
        (None, None) => {}
    }
    let reply = client.get("/v2/businessworkspaces", &query).await?;
    let found: Vec<i64> = reply["results"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["data"]["properties"]["id"].as_i64()).collect())
        .unwrap_or_default();
    let what = name.clone().or(bo_id.clone()).unwrap_or_default();
    match found.as_slice() {
        [one] => return Ok(*one),
        [_, _, ..] => {
            return Err(ApiError::Permanent {
                status: 0,
                message: format!("more than one workspace of type {} matches `{what}`", ws.type_id),
            });
        }
        [] => {}
    }
    let Some(template) = ws.template_id.filter(|_| ws.create) else {
        return Err(ApiError::Permanent {
            status: 0,
            message: format!(
                "no Business Workspace of type {} matches `{what}` (and the target does not create one)",
                ws.type_id
            ),
        });
    };
    let mut body = json!({ "template_id": template, "wksp_type_id": ws.type_id, "type": WORKSPACE });
    if let Some(n) = &name {
        body["name"] = Value::from(n.as_str());
    }
    if let Some(b) = &bo_id {
        body["bo_id"] = Value::from(b.as_str());
    }
    let text = body.to_string();
    tracing::info!(workspace = %what, "creating Business Workspace");
    match client
        .send(|| async { Ok(client.request(Method::POST, "/v2/businessworkspaces").form(&[("body", text.as_str())])) })
        .await
    {
        Ok(reply) => new_id(&reply),
        // Created by another worker meanwhile: search again (once; it must be there now).
        Err(ApiError::NameConflict(_)) => {
            let reply = client.get("/v2/businessworkspaces", &query).await?;
            reply["results"][0]["data"]["properties"]["id"]
                .as_i64()
                .ok_or_else(|| ApiError::Transient(format!("workspace `{what}` exists but is not found")))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opentext_workspace_names_are_rendered_from_metadata() {
        let m: BTreeMap<String, String> = [("vendor_name".to_string(), "Acme Corporation".to_string())].into();
        assert_eq!(render("{vendor_name}", &m).expect("render"), "Acme Corporation");
        assert_eq!(render("Vendor {vendor_name} (EU)", &m).expect("render"), "Vendor Acme Corporation (EU)");
        assert!(matches!(render("{vendor}", &m), Err(ApiError::Permanent { .. })));
    }
}
