//! The `opentext` target: delivers documents into OpenText Extended ECM Content Server folders
//! or Business Workspaces through the documented REST API (`/api/v1`, `/api/v2`).
//!
//! One delivery:
//! 1. the parent folder: the rule's destination path below `root_folder` (or below the matching
//!    Business Workspace's subfolder), resolved folder by folder, made when allowed;
//! 2. **idempotency**: a document of the same name whose description (or one of whose version
//!    descriptions) carries this transfer's `sha256:<hex>` is this delivery, done before a crash:
//!    it is reused, never duplicated;
//! 3. a new document: `POST /api/v2/nodes`, multipart with the JSON in the form field `body`
//!    (type 144, parent, name, description, category values in `roles.categories` keyed
//!    `{category}_{attribute}`) and the file part `file` streamed from the spool; a body above
//!    `multipart_threshold` goes through a Large File Upload session first ([`upload`]) and the
//!    create names its `upload_key` instead;
//! 4. a name taken by another document: the rule's conflict policy: `version`/`overwrite` add a
//!    version (`POST /api/v2/nodes/{id}/versions`, `file` or `upload_key`) and update the category
//!    values (`PUT /api/v2/nodes/{id}/categories/{category}`), `rename` finds `name (2).ext`,
//!    `reject` is an exception naming the existing node.
//!
//! Crash points: a create carries its category values, so a created document is complete. Adding
//! a version and updating its values are two calls; when a redelivery finds its own version (by
//! the marker in the version's description) and it is still the latest one, the values are put
//! again (the PUT is idempotent), so a crash between the two calls never leaves the old values.
//!
//! Failures are classified by [`client::ApiError`]: transient ones become `Delivery::Retry`,
//! permanent ones `Delivery::Except` quoting the server.

pub mod client;
pub mod folders;
pub mod listing;
pub mod upload;
pub mod workspace;

use crate::config::opentext::OpenTextConfig;
use crate::targets::{Conflict, Delivery, Document, Receipt, Target};
use client::{ApiError, Client};
use folders::{Child, DOCUMENT, Folders, find_child, new_id};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// How many `name (n).ext` are tried under the `rename` policy.
const MAX_RENAMES: u32 = 100;

/// A Content Server (or Business Workspaces) target.
#[derive(Debug)]
pub struct OpenTextTarget {
    name: String,
    cfg: OpenTextConfig,
    client: Client,
    folders: Folders,
    large: upload::LargeFiles,
}

/// An earlier delivery of this transfer found on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Earlier {
    /// None: deliver.
    No,
    /// The document was created by it (with its category values, in one call).
    Created,
    /// It added version `number`; `latest` when no other version came after it.
    Version {
        /// The version number, when the listing gives it.
        number: Option<u32>,
        /// Still the document's latest version.
        latest: bool,
    },
}

impl OpenTextTarget {
    /// A target from its validated config; reads its credentials now.
    ///
    /// # Errors
    /// A secret or CA file is missing.
    pub fn new(name: &str, cfg: OpenTextConfig) -> Result<Self, client::SetupError> {
        let client = Client::new(&cfg)?;
        let large = upload::LargeFiles::new(cfg.multipart_threshold);
        Ok(Self { name: name.to_string(), cfg, client, folders: Folders::default(), large })
    }

    /// The connection (for the outbound source and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn marker(doc: &Document) -> String {
        format!("sha256:{}", doc.sha256)
    }

    fn category_values(&self, doc: &Document) -> Map<String, Value> {
        let mut values = Map::new();
        if let Some((cat, attrs)) = &self.cfg.category {
            for (field, attr) in attrs {
                if let Some(v) = doc.metadata.get(field) {
                    values.insert(format!("{cat}_{attr}"), Value::from(v.as_str()));
                }
            }
            if let Some(attr) = self.cfg.checksum_attribute {
                values.insert(format!("{cat}_{attr}"), Value::from(doc.sha256.as_str()));
            }
        }
        values
    }

    async fn file_part(doc: &Document, name: &str) -> Result<Part, ApiError> {
        let file = tokio::fs::File::open(&doc.body)
            .await
            .map_err(|e| ApiError::Transient(format!("cannot open the spooled body: {e}")))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        Part::stream_with_length(body, doc.size)
            .file_name(name.to_string())
            .mime_str(mime_of(&doc.body))
            .map_err(|e| ApiError::Transient(format!("multipart: {e}")))
    }

    /// The completed Large File Upload session for the body, when it goes that way.
    async fn session(&self, doc: &Document, name: &str) -> Result<Option<String>, ApiError> {
        self.large.upload(&self.client, &doc.body, doc.size, name, mime_of(&doc.body)).await
    }

    /// `result`, after cancelling the session `key` if it failed (the key may not be consumed).
    async fn cancel_on_error(&self, key: &str, result: Result<Value, ApiError>) -> Result<Value, ApiError> {
        if result.is_err() {
            upload::cancel(&self.client, key).await;
        }
        result
    }

    async fn parent(&self, doc: &Document, dirs: &[&str]) -> Result<i64, ApiError> {
        let mut base = self.cfg.root_folder;
        if let Some(ws) = &self.cfg.workspace {
            base = workspace::find_or_create(&self.client, ws, &doc.metadata).await?;
            if let Some(sub) = &ws.subfolder {
                base = self.folders.resolve(&self.client, base, &[sub.as_str()], self.cfg.create_folders).await?;
            }
        }
        self.folders.resolve(&self.client, base, dirs, self.cfg.create_folders).await
    }

    async fn create(&self, doc: &Document, parent: i64, name: &str) -> Result<i64, ApiError> {
        let mut body = json!({
            "type": DOCUMENT,
            "parent_id": parent,
            "name": name,
            "description": format!("{} (wharf transfer {})", Self::marker(doc), doc.transfer_id),
        });
        let values = self.category_values(doc);
        if !values.is_empty() {
            body["roles"] = json!({ "categories": values });
        }
        if let Some(class) = self.cfg.rm_classification {
            body["roles"]["classifications"] = json!({ "create_id": [], "id": [class] });
        }
        if let Some(key) = self.session(doc, name).await? {
            body["upload_key"] = Value::from(key.as_str());
            let text = body.to_string();
            let sent = self
                .client
                .send(|| async { Ok(self.client.request(Method::POST, "/v2/nodes").form(&[("body", text.as_str())])) })
                .await;
            return new_id(&self.cancel_on_error(&key, sent).await?);
        }
        let text = body.to_string();
        let reply = self
            .client
            .send(|| async {
                let form = Form::new().text("body", text.clone()).part("file", Self::file_part(doc, name).await?);
                Ok(self.client.request(Method::POST, "/v2/nodes").multipart(form))
            })
            .await?;
        new_id(&reply)
    }

    async fn add_version(&self, doc: &Document, node: i64, name: &str) -> Result<Option<u32>, ApiError> {
        let description = format!("{} (wharf transfer {})", Self::marker(doc), doc.transfer_id);
        let path = format!("/v2/nodes/{node}/versions");
        let reply = if let Some(key) = self.session(doc, name).await? {
            let fields =
                [("upload_key", key.as_str()), ("description", description.as_str()), ("add_major_version", "false")];
            let sent = self.client.send(|| async { Ok(self.client.request(Method::POST, &path).form(&fields)) }).await;
            self.cancel_on_error(&key, sent).await?
        } else {
            self.client
                .send(|| async {
                    let form = Form::new()
                        .part("file", Self::file_part(doc, name).await?)
                        .text("description", description.clone())
                        .text("add_major_version", "false");
                    Ok(self.client.request(Method::POST, &path).multipart(form))
                })
                .await?
        };
        let version = find_key(&reply, "version_number").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok());
        self.update_categories(doc, node).await?;
        Ok(version)
    }

    /// Puts the category values of `doc` on `node` (idempotent).
    async fn update_categories(&self, doc: &Document, node: i64) -> Result<(), ApiError> {
        if let Some((cat, _)) = &self.cfg.category {
            let values: Vec<(String, String)> = self
                .category_values(doc)
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect();
            if !values.is_empty() {
                let path = format!("/v2/nodes/{node}/categories/{cat}");
                self.client.send(|| async { Ok(self.client.request(Method::PUT, &path).form(&values)) }).await?;
            }
        }
        Ok(())
    }

    /// This very delivery, made before, found by its checksum marker in `existing`'s description
    /// (created by it) or in one of its versions' descriptions (added by it).
    async fn earlier(&self, doc: &Document, existing: &Child) -> Result<Earlier, ApiError> {
        let marker = Self::marker(doc);
        if existing.description.contains(&marker) {
            return Ok(Earlier::Created);
        }
        let reply = self.client.get(&format!("/v2/nodes/{}/versions", existing.id), &[]).await?;
        let versions = versions_of(&reply);
        let latest = versions.iter().map(|(n, _)| *n).max();
        let ours = versions.iter().filter(|(_, d)| d.contains(&marker)).map(|(n, _)| *n).max();
        Ok(match ours {
            Some(n) => Earlier::Version { number: u32::try_from(n).ok(), latest: Some(n) == latest },
            // A listing of another shape that still names the marker: delivered, values unknown.
            None if contains_text(&reply, &marker) => Earlier::Version { number: None, latest: false },
            None => Earlier::No,
        })
    }

    async fn deliver_inner(&self, doc: &Document) -> Result<Receipt, ApiError> {
        let parts: Vec<&str> = doc.destination.split('/').filter(|s| !s.is_empty()).collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Err(ApiError::Permanent { status: 0, message: "the destination has no file name".into() });
        };
        let parent = self.parent(doc, dirs).await?;
        let receipt = |id: i64, shown: &str, version: Option<u32>, again: bool| Receipt {
            target: self.name.clone(),
            id: id.to_string(),
            path: dirs.iter().copied().chain([shown]).collect::<Vec<_>>().join("/"),
            version,
            already_delivered: again,
        };
        let mut candidate = (*name).to_string();
        let mut n = 1;
        // Twice at most through a name conflict that appears between the lookup and the create.
        for _ in 0..MAX_RENAMES + 2 {
            let existing = find_child(&self.client, parent, &candidate).await?;
            let Some(existing) = existing else {
                match self.create(doc, parent, &candidate).await {
                    Ok(id) => return Ok(receipt(id, &candidate, Some(1), false)),
                    Err(ApiError::NameConflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            };
            if existing.kind == DOCUMENT {
                let earlier = self.earlier(doc, &existing).await?;
                if earlier != Earlier::No {
                    tracing::info!(
                        node = existing.id,
                        ?earlier,
                        "found this transfer's earlier delivery; not delivering again"
                    );
                }
                match earlier {
                    Earlier::No => {}
                    Earlier::Created => return Ok(receipt(existing.id, &candidate, None, true)),
                    Earlier::Version { number, latest } => {
                        // The crash may have come between the version and its category values.
                        if latest {
                            self.update_categories(doc, existing.id).await?;
                        }
                        return Ok(receipt(existing.id, &candidate, number, true));
                    }
                }
            }
            match doc.conflict {
                Conflict::Version | Conflict::Overwrite if existing.kind == DOCUMENT => {
                    let version = self.add_version(doc, existing.id, &candidate).await?;
                    return Ok(receipt(existing.id, &candidate, version, false));
                }
                Conflict::Rename if n < MAX_RENAMES => {
                    n += 1;
                    candidate = renamed(name, n);
                }
                _ => {
                    return Err(ApiError::Permanent {
                        status: 0,
                        message: format!(
                            "an item named `{candidate}` (node {}) already exists in folder node {parent} and the \
                             conflict policy is {:?}",
                            existing.id, doc.conflict
                        ),
                    });
                }
            }
        }
        Err(ApiError::Transient(format!("the name `{name}` kept changing hands in folder node {parent}")))
    }
}

#[async_trait::async_trait]
impl Target for OpenTextTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, doc: &Document) -> Delivery {
        match self.deliver_inner(doc).await {
            Ok(r) => Delivery::Delivered(r),
            Err(ApiError::Transient(why)) => Delivery::Retry(why),
            Err(e @ ApiError::Permanent { .. }) => {
                // A folder in the cache may be gone; resolve afresh next time.
                self.folders.forget().await;
                Delivery::Except(e.to_string())
            }
            Err(e @ ApiError::NameConflict(_)) => Delivery::Except(e.to_string()),
        }
    }
}

/// `name (n).ext`.
fn renamed(name: &str, n: u32) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
        _ => format!("{name} ({n})"),
    }
}

fn mime_of(path: &Path) -> &'static str {
    infer::get_from_path(path).ok().flatten().map_or("application/octet-stream", |t| t.mime_type())
}

/// The first value under `key` anywhere in a reply (version replies differ between v1 and v2).
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

/// `(version_number, description)` of every version in a versions listing (v1 or v2 shape).
fn versions_of(v: &Value) -> Vec<(u64, String)> {
    let mut out = vec![];
    fn walk(v: &Value, out: &mut Vec<(u64, String)>) {
        match v {
            Value::Object(m) => match m.get("version_number").and_then(Value::as_u64) {
                Some(n) => out.push((n, m.get("description").and_then(Value::as_str).unwrap_or_default().to_string())),
                None => m.values().for_each(|x| walk(x, out)),
            },
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// Whether any string in a reply contains `needle`.
fn contains_text(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Object(m) => m.values().any(|x| contains_text(x, needle)),
        Value::Array(a) => a.iter().any(|x| contains_text(x, needle)),
        _ => false,
    }
}

/// Metadata with only strings (for templates over it).
pub type Metadata = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opentext_rename_keeps_the_extension() {
        assert_eq!(renamed("INV-1.pdf", 2), "INV-1 (2).pdf");
        assert_eq!(renamed("README", 3), "README (3)");
        assert_eq!(renamed(".profile", 2), ".profile (2)");
    }

    #[test]
    fn opentext_version_numbers_are_found_in_either_reply_shape() {
        assert_eq!(find_key(&json!({"id": 5, "version_number": 2}), "version_number"), Some(&json!(2)));
        let v2 = json!({"results": {"data": {"properties": {"id": 5}, "version_number": 3}}});
        assert_eq!(find_key(&v2, "version_number"), Some(&json!(3)));
        assert!(contains_text(&json!({"results": [{"data": {"description": "sha256:ab (x)"}}]}), "sha256:ab"));
    }

    #[test]
    fn opentext_versions_are_listed_with_their_descriptions() {
        let v2 = json!({"results": [
            {"data": {"versions": {"version_number": 1, "description": ""}}},
            {"data": {"versions": {"version_number": 2, "description": "sha256:ab (wharf transfer T)"}}},
        ]});
        assert_eq!(versions_of(&v2), vec![(1, String::new()), (2, "sha256:ab (wharf transfer T)".to_string())]);
        assert_eq!(versions_of(&json!({"data": [{"version_number": 3}]})), vec![(3, String::new())]);
    }
}
