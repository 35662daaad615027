//! The emulator's starting content, read from JSON (`deploy/otcs-emulator.seed.json` is the default).
//!
//! Format (every top-level key optional; a missing list is empty, a missing scalar takes the default):
//! ```json
//! {
//!   "users": [{"username": "wharf", "password": "wharf-pw"}],
//!   "otds_tokens": [{"token": "wharf-otds-token", "username": "wharf"}],
//!   "ticket_ttl_secs": 1800,
//!   "multipart": {"is_enabled": true, "min_size": 1048576, "max_size": 10737418240,
//!                 "part_size": 8388608, "max_retries": 3, "session_ttl_secs": 3600, "threshold": 10485760},
//!   "folders": [{"id": 2001, "name": "Invoices", "description": "", "children": []}],
//!   "categories": [{"id": 9830, "name": "Invoice", "attributes": [
//!       {"id": 2, "name": "Vendor", "type_name": "String", "required": true, "multi_value": false,
//!        "valid_values": null, "max_length": 248}]}],
//!   "workspace_types": [{"wksp_type_id": 10, "name": "Vendor", "location_id": 2003,
//!       "bo_type": "LFA1", "ext_system_id": "SAP",
//!       "templates": [{"id": 20, "name": "Vendor Template", "subfolders": ["Contracts"]}]}],
//!   "workspaces": [{"id": 3000, "name": "ACME Corp", "wksp_type_id": 10, "template_id": 20, "parent_id": null,
//!       "bo_type": "LFA1", "bo_id": "V10001", "ext_system_id": "SAP",
//!       "subfolders": [{"id": 3001, "name": "Contracts"}]}],
//!   "classifications": [{"id": 7000, "name": "Invoices RM class"}]
//! }
//! ```
//! `classifications` are Records Management classification nodes (subtype 199) in the
//! Classification volume (id 2099); a document's `roles.classifications.id` must name them.
//! `folders` are the children of the Enterprise volume (id 2000), with fixed ids; `multipart.max_size`
//! also caps direct `file` uploads; `threshold` is only reported (the size above which a client
//! should switch to Large File Upload). A workspace without `parent_id` lives in its type's
//! `location_id`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// Id of the Enterprise volume, the root of every seeded folder.
pub const ENTERPRISE_ID: i64 = 2000;

/// Everything the emulator starts with (users, folders, categories, workspace types, workspaces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default = "default_users")]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub otds_tokens: Vec<SeedToken>,
    #[serde(default = "default_ttl")]
    pub ticket_ttl_secs: u64,
    #[serde(default)]
    pub multipart: MultipartSettings,
    #[serde(default)]
    pub folders: Vec<SeedFolder>,
    #[serde(default)]
    pub categories: Vec<SeedCategory>,
    #[serde(default)]
    pub workspace_types: Vec<SeedWorkspaceType>,
    #[serde(default)]
    pub workspaces: Vec<SeedWorkspace>,
    #[serde(default)]
    pub classifications: Vec<SeedClassification>,
}

/// Id of the Classification volume (subtype 198), the parent of every seeded classification.
pub const CLASSIFICATION_VOLUME_ID: i64 = 2099;

/// A Records Management classification (a node of subtype 199).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedClassification {
    pub id: i64,
    pub name: String,
}

/// A Content Server account accepted by `POST /v1/auth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub username: String,
    pub password: String,
}

/// An OTDS bearer token accepted by `GET /v1/auth` (acting as `username`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    pub token: String,
    pub username: String,
}

/// Large File Upload settings; `max_size` also limits direct uploads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultipartSettings {
    pub is_enabled: bool,
    pub min_size: u64,
    pub max_size: u64,
    pub part_size: u64,
    pub max_retries: u32,
    pub session_ttl_secs: u64,
    pub threshold: u64,
}

impl Default for MultipartSettings {
    fn default() -> Self {
        MultipartSettings {
            is_enabled: true,
            min_size: 1 << 20,
            max_size: 10 << 30,
            part_size: 8 << 20,
            max_retries: 3,
            session_ttl_secs: 3600,
            threshold: 10 << 20,
        }
    }
}

/// A folder with a fixed id and its subfolders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFolder {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub children: Vec<SeedFolder>,
}

/// A category definition (the attributes a node may carry as `{cat}_{attr}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCategory {
    pub id: i64,
    pub name: String,
    pub attributes: Vec<SeedAttribute>,
}

/// Attribute value types the emulator validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrType {
    String,
    Date,
    Integer,
}

impl AttrType {
    /// The `type_name` Content Server reports in category metadata.
    pub fn name(self) -> &'static str {
        match self {
            AttrType::String => "String",
            AttrType::Date => "Date",
            AttrType::Integer => "Integer",
        }
    }
}

/// One attribute of a category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAttribute {
    pub id: i64,
    pub name: String,
    pub type_name: AttrType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub multi_value: bool,
    #[serde(default)]
    pub valid_values: Option<Vec<String>>,
    #[serde(default)]
    pub max_length: Option<u32>,
}

/// A business workspace type with its templates and creation location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWorkspaceType {
    pub wksp_type_id: i64,
    pub name: String,
    pub location_id: i64,
    #[serde(default)]
    pub bo_type: Option<String>,
    #[serde(default)]
    pub ext_system_id: Option<String>,
    pub templates: Vec<SeedTemplate>,
}

/// A workspace template; its subfolders are created in every workspace made from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTemplate {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub subfolders: Vec<String>,
}

/// An existing business workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWorkspace {
    pub id: i64,
    pub name: String,
    pub wksp_type_id: i64,
    #[serde(default)]
    pub template_id: Option<i64>,
    #[serde(default)]
    pub parent_id: Option<i64>,
    #[serde(default)]
    pub bo_type: String,
    #[serde(default)]
    pub bo_id: String,
    #[serde(default)]
    pub ext_system_id: String,
    #[serde(default)]
    pub subfolders: Vec<SeedFolder>,
}

fn default_users() -> Vec<SeedUser> {
    vec![SeedUser { username: "wharf".into(), password: "wharf-pw".into() }]
}

fn default_ttl() -> u64 {
    1800
}

fn folder(id: i64, name: &str) -> SeedFolder {
    SeedFolder { id, name: name.into(), description: String::new(), children: vec![] }
}

fn attr(id: i64, name: &str, type_name: AttrType, required: bool) -> SeedAttribute {
    SeedAttribute {
        id,
        name: name.into(),
        type_name,
        required,
        multi_value: false,
        valid_values: None,
        max_length: None,
    }
}

impl Default for Seed {
    /// The demo: Invoices, Contracts, Vendors (workspace location), Templates (scenario 001), category 9830 "Invoice",
    /// category 9840 "Engineering Document" (scenario 001),
    /// workspace type 10 "Vendor" (template 20) and the workspace "ACME Corp" (BO V10001).
    fn default() -> Self {
        let mut status = attr(6, "Status", AttrType::String, false);
        status.valid_values = Some(vec!["Draft".into(), "Approved".into()]);
        Seed {
            users: default_users(),
            otds_tokens: vec![SeedToken { token: "wharf-otds-token".into(), username: "wharf".into() }],
            ticket_ttl_secs: default_ttl(),
            multipart: MultipartSettings::default(),
            folders: vec![
                folder(2001, "Invoices"),
                folder(2002, "Contracts"),
                folder(2003, "Vendors"),
                folder(2004, "Templates"),
            ],
            categories: vec![
                SeedCategory {
                    id: 9830,
                    name: "Invoice".into(),
                    attributes: vec![
                        attr(2, "Vendor", AttrType::String, true),
                        attr(3, "Invoice Number", AttrType::String, false),
                        attr(4, "Invoice Date", AttrType::Date, false),
                        attr(5, "wharf SHA256", AttrType::String, false),
                        status,
                    ],
                },
                SeedCategory {
                    // scenario 001 (deploy/confluence.example.toml): approved wiki pages
                    id: 9840,
                    name: "Engineering Document".into(),
                    attributes: vec![
                        attr(2, "Project", AttrType::String, true),
                        attr(3, "Document Type", AttrType::String, false),
                        attr(4, "Owner", AttrType::String, false),
                        attr(5, "Approval Status", AttrType::String, false),
                        attr(6, "Retention Category", AttrType::String, false),
                        attr(7, "Page Id", AttrType::String, false),
                        attr(8, "Page Version", AttrType::String, false),
                    ],
                },
            ],
            workspace_types: vec![SeedWorkspaceType {
                wksp_type_id: 10,
                name: "Vendor".into(),
                location_id: 2003,
                bo_type: Some("LFA1".into()),
                ext_system_id: Some("SAP".into()),
                templates: vec![SeedTemplate {
                    id: 20,
                    name: "Vendor Template".into(),
                    subfolders: vec!["Contracts".into()],
                }],
            }],
            workspaces: vec![SeedWorkspace {
                id: 3000,
                name: "ACME Corp".into(),
                wksp_type_id: 10,
                template_id: Some(20),
                parent_id: None,
                bo_type: "LFA1".into(),
                bo_id: "V10001".into(),
                ext_system_id: "SAP".into(),
                subfolders: vec![folder(3001, "Contracts")],
            }],
            classifications: vec![SeedClassification { id: 7000, name: "Invoices RM class".into() }],
        }
    }
}

impl Seed {
    /// Reads and checks a seed file (JSON, format in the module comment).
    pub fn from_file(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let seed: Seed = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        seed.check()?;
        Ok(seed)
    }

    /// Consistency rules: unique node ids, known types and templates, existing locations.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut ids = BTreeSet::from([ENTERPRISE_ID, CLASSIFICATION_VOLUME_ID]);
        fn walk(f: &[SeedFolder], ids: &mut BTreeSet<i64>) -> anyhow::Result<()> {
            for x in f {
                anyhow::ensure!(x.id > 0 && ids.insert(x.id), "seed: duplicate or invalid node id {}", x.id);
                anyhow::ensure!(!x.name.trim().is_empty(), "seed: folder {} has an empty name", x.id);
                walk(&x.children, ids)?;
            }
            Ok(())
        }
        walk(&self.folders, &mut ids)?;
        let folder_ids = ids.clone();
        for w in &self.workspaces {
            anyhow::ensure!(w.id > 0 && ids.insert(w.id), "seed: duplicate or invalid node id {}", w.id);
            walk(&w.subfolders, &mut ids)?;
            let t = self.workspace_types.iter().find(|t| t.wksp_type_id == w.wksp_type_id);
            let t = t.ok_or_else(|| anyhow::anyhow!("seed: workspace {} has unknown type {}", w.id, w.wksp_type_id))?;
            if let Some(tpl) = w.template_id {
                anyhow::ensure!(
                    t.templates.iter().any(|x| x.id == tpl),
                    "seed: template {tpl} not of type {}",
                    t.wksp_type_id
                );
            }
            if let Some(p) = w.parent_id {
                anyhow::ensure!(folder_ids.contains(&p), "seed: workspace {} parent {p} is not a seeded folder", w.id);
            }
        }
        for c in &self.classifications {
            anyhow::ensure!(c.id > 0 && ids.insert(c.id), "seed: duplicate or invalid node id {}", c.id);
            anyhow::ensure!(!c.name.trim().is_empty(), "seed: classification {} has an empty name", c.id);
        }
        for t in &self.workspace_types {
            anyhow::ensure!(
                folder_ids.contains(&t.location_id),
                "seed: type {} location {} unknown",
                t.wksp_type_id,
                t.location_id
            );
        }
        let mut cats = BTreeSet::new();
        for c in &self.categories {
            anyhow::ensure!(cats.insert(c.id), "seed: duplicate category {}", c.id);
            let mut attrs = BTreeSet::new();
            for a in &c.attributes {
                anyhow::ensure!(
                    a.id > 1 && attrs.insert(a.id),
                    "seed: category {} attribute id {} (must be unique, > 1)",
                    c.id,
                    a.id
                );
            }
        }
        anyhow::ensure!(self.multipart.part_size > 0, "seed: multipart.part_size must be > 0");
        anyhow::ensure!(self.multipart.min_size <= self.multipart.max_size, "seed: multipart.min_size > max_size");
        Ok(())
    }
}
