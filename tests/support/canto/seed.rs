//! The emulator's starting state: the API key (app id + secret), the user uploads are filed
//! under, the custom fields, and assets. `Seed::default()` is the demo seed (also in
//! `deploy/canto-emulator.seed.json`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the emulator starts with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    /// The API key's app id (`app_id` query parameter of the token endpoint).
    pub app_id: String,
    /// The API key's secret.
    pub app_secret: String,
    /// The user whose folder upload keys go into (`<uuid>/<user>/${filename}`).
    pub user: String,
    /// Access-token lifetime, seconds (`expiresIn`).
    pub token_ttl_secs: u64,
    /// How many `upload/status` polls an upload stays `Initial` before it is `Done`.
    pub initial_polls: u32,
    /// Custom fields: id (`meta_region`) → display name (`Region`).
    pub custom_fields: BTreeMap<String, String>,
    /// Assets present at start.
    pub assets: Vec<SeedAsset>,
}

/// One asset of the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedAsset {
    /// Asset id (Canto ids are 32-character hex-like strings; any unique string works).
    pub id: String,
    /// `image`, `video`, `audio`, `document`, `presentation` or `other`.
    pub scheme: String,
    /// File name.
    pub name: String,
    /// Content (text).
    pub content: String,
    /// `Approved`, `Pending` or `Restricted`.
    pub approval: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: String,
    /// Custom field values by field id.
    pub custom: BTreeMap<String, String>,
    /// `Date modified`, `yyyyMMddHHmmssSSS`.
    pub modified: String,
}

impl Default for SeedAsset {
    fn default() -> Self {
        Self {
            id: String::new(),
            scheme: "image".into(),
            name: String::new(),
            content: String::new(),
            approval: "Pending".into(),
            keywords: vec![],
            tags: vec![],
            description: String::new(),
            custom: BTreeMap::new(),
            modified: "20260101120000000".into(),
        }
    }
}

impl Default for Seed {
    fn default() -> Self {
        let asset = |id: &str, scheme: &str, name: &str, approval: &str, region: &str, expiry: &str, modified: &str| {
            SeedAsset {
                id: id.into(),
                scheme: scheme.into(),
                name: name.into(),
                content: format!("demo content of {name}\n"),
                approval: approval.into(),
                keywords: vec!["campaign-2026".into()],
                tags: vec!["master".into()],
                description: format!("{name} (demo)"),
                custom: [("meta_region".to_string(), region.to_string()), ("meta_rights_expiry".into(), expiry.into())]
                    .into_iter()
                    .collect(),
                modified: modified.into(),
            }
        };
        Self {
            app_id: "wharf-demo-app".into(),
            app_secret: "wharf-demo-app-secret".into(),
            user: "wharf@example.com".into(),
            token_ttl_secs: 3600,
            initial_polls: 1,
            custom_fields: [
                ("meta_region".to_string(), "Region".to_string()),
                ("meta_rights_expiry".into(), "Rights expiry".into()),
                ("meta_rights_status".into(), "Rights status".into()),
                ("meta_replacement".into(), "Replacement instructions".into()),
            ]
            .into_iter()
            .collect(),
            assets: vec![
                asset(
                    "a1000000000000000000000000000001",
                    "image",
                    "hero-spring.jpg",
                    "Approved",
                    "EU",
                    "2026-12-31",
                    "20260110090000000",
                ),
                asset(
                    "a1000000000000000000000000000002",
                    "image",
                    "hero-summer.jpg",
                    "Pending",
                    "US",
                    "2027-06-30",
                    "20260111090000000",
                ),
                asset(
                    "d1000000000000000000000000000001",
                    "document",
                    "brand-guide.pdf",
                    "Approved",
                    "GLOBAL",
                    "2027-01-31",
                    "20260112090000000",
                ),
                asset(
                    "d1000000000000000000000000000002",
                    "document",
                    "price-list.pdf",
                    "Restricted",
                    "EU",
                    "2026-03-31",
                    "20260112090000000",
                ),
            ],
        }
    }
}

impl Seed {
    /// Reads a JSON seed file.
    ///
    /// # Errors
    /// The file is unreadable or not a seed.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Seed> {
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    }
}
