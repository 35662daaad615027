//! Retention packages for retired Contentstack entries (scenario 000): with `package_from` set,
//! a webhook's transfer is not the bare payload but a zip of what is retired, for the campaign's
//! Business Workspace: `entry.json` (the entry as the event carries it: its last published
//! JSON), `webhook.json` (the whole event), `assets/<uid>/<file>` (every asset the entry
//! references, fetched now) and `manifest.json` (each asset's size and SHA-256, and the assets
//! that were already gone).
//!
//! Assets are referenced in entry JSON as objects with a `uid` and a `filename` or `url`; each is
//! read through the API (`GET /v3/assets/{uid}`, credentials and the target's rate limiter) and
//! its file downloaded from its `url` without credentials (Contentstack serves files from its
//! CDN). A failure to reach Contentstack answers the webhook 503, so Contentstack retries it;
//! an asset deleted meanwhile is listed under `missing`, not fatal.
//! Decision: the package is built while the webhook waits (Contentstack allows 30 s); a set of
//! assets above `MAX_PACKAGE_BYTES` is refused with 503 and a reason in the audit trail.

use super::webhook::Refusal;
use crate::targets::contentstack::client::{ApiError, Client};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Write;

/// Largest sum of asset files put into one package.
pub const MAX_PACKAGE_BYTES: u64 = 256 << 20;

/// Builds packages with one Contentstack connection.
pub struct Packager {
    api: Client,
    cdn: reqwest::Client,
}

impl std::fmt::Debug for Packager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packager").finish_non_exhaustive()
    }
}

/// The asset uids an entry references (objects with a `uid` and a `filename` or `url`).
pub fn asset_uids(entry: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![entry];
    while let Some(v) = todo.pop() {
        match v {
            Value::Object(m) => {
                if let Some(uid) = m.get("uid").and_then(Value::as_str)
                    && (m.contains_key("filename") || m.contains_key("url"))
                    && !uid.is_empty()
                    && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !std::ptr::eq(v, entry)
                {
                    out.insert(uid.to_string());
                }
                todo.extend(m.values());
            }
            Value::Array(a) => todo.extend(a.iter()),
            _ => {}
        }
    }
    out
}

/// A file name fit for a zip entry: one safe component.
fn entry_name(name: &str) -> String {
    let n: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    let n = n.trim_start_matches('.').to_string();
    if n.is_empty() { "file".into() } else { n.chars().take(120).collect() }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Refusal {
    Refusal::Unavailable(format!("the retention package cannot be built now ({what}: {e}); retry later"))
}

impl Packager {
    /// A packager reading through `api`.
    ///
    /// # Errors
    /// The plain HTTP client for asset files cannot be built.
    pub fn new(api: Client) -> Result<Self, reqwest::Error> {
        let cdn = reqwest::Client::builder().timeout(std::time::Duration::from_secs(25)).build()?;
        Ok(Self { api, cdn })
    }

    /// The zip for the event `payload`.
    ///
    /// # Errors
    /// [`Refusal::Unavailable`] when Contentstack cannot be read or the package is too large.
    pub async fn package(&self, payload: &Value) -> Result<Vec<u8>, Refusal> {
        let entry = &payload["data"]["entry"];
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let (mut listed, mut missing, mut total) = (Vec::new(), Vec::new(), 0u64);
        for uid in asset_uids(entry) {
            let asset = match self.api.get_json(&format!("/v3/assets/{uid}"), &[]).await {
                Ok(v) => v["asset"].clone(),
                Err(ApiError::Rejected { status: 404 | 422, .. }) => {
                    missing.push(uid);
                    continue;
                }
                Err(e) => return Err(unavailable(&format!("asset {uid}"), e)),
            };
            let (Some(url), Some(filename)) = (asset["url"].as_str(), asset["filename"].as_str()) else {
                missing.push(uid);
                continue;
            };
            let resp = self.cdn.get(url).send().await.map_err(|e| unavailable(&format!("asset {uid} file"), e))?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                missing.push(uid);
                continue;
            }
            if !resp.status().is_success() {
                return Err(unavailable(&format!("asset {uid} file"), resp.status()));
            }
            let bytes = resp.bytes().await.map_err(|e| unavailable(&format!("asset {uid} file"), e))?;
            total += bytes.len() as u64;
            if total > MAX_PACKAGE_BYTES {
                return Err(unavailable("assets", format!("more than {MAX_PACKAGE_BYTES} bytes in all")));
            }
            let path = format!("assets/{uid}/{}", entry_name(filename));
            listed.push(json!({
                "uid": uid, "filename": filename, "path": path, "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(&bytes)), "title": asset["title"], "version": asset["_version"],
            }));
            files.push((path, bytes.to_vec()));
        }
        let manifest = json!({
            "entry": entry["uid"], "content_type": payload["data"]["content_type"]["uid"],
            "event": payload["event"], "triggered_at": payload["triggered_at"],
            "assets": listed, "missing": missing,
        });
        let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();
        files.insert(0, ("manifest.json".into(), pretty(&manifest)));
        files.insert(1, ("entry.json".into(), pretty(entry)));
        files.insert(2, ("webhook.json".into(), pretty(payload)));
        zip_of(&files).map_err(|e| unavailable("zip", e))
    }
}

fn zip_of(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), opts)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_wherever_the_entry_references_them() {
        let entry = json!({
            "uid": "bltentry", "title": "Spring",
            "hero": {"uid": "blta1", "filename": "hero.jpg", "url": "https://cdn/x"},
            "gallery": [{"uid": "blta2", "url": "https://cdn/y"}, {"uid": "blta1", "filename": "hero.jpg"}],
            "campaign": [{"uid": "bltref", "_content_type_uid": "campaign"}],
            "bad": {"uid": "../x", "filename": "x"},
        });
        assert_eq!(asset_uids(&entry).into_iter().collect::<Vec<_>>(), ["blta1", "blta2"]);
    }

    #[test]
    fn zip_entry_names_are_one_safe_component() {
        assert_eq!(entry_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(entry_name("Frühling Plakat.pdf"), "Fr_hling_Plakat.pdf");
        assert_eq!(entry_name(""), "file");
    }
}
