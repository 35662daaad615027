//! The emulator's starting content and knobs, read from JSON (`deploy/contentstack-emulator.seed.json`).
//!
//! Every key is optional; a missing key takes the built-in default (one stack, one management
//! token, content types `campaign_asset` and `boilerplate`, environments `staging` and
//! `production`, locales `en-us` and `de-de`, 10 reads/s and 10 writes/s, 100 MB assets).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Everything the emulator starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seed {
    /// The one stack's API key (`api_key` header).
    pub api_key: String,
    /// Management tokens accepted raw in `authorization`.
    pub management_tokens: Vec<String>,
    /// Session tokens accepted in `authtoken`.
    pub authtokens: Vec<String>,
    /// Content type uid → its field uids (`title` is always allowed).
    pub content_types: BTreeMap<String, Vec<String>>,
    /// Environment names.
    pub environments: Vec<String>,
    /// Locale codes.
    pub locales: Vec<String>,
    /// Organisation-wide reads (GET) per sliding second.
    pub reads_per_sec: usize,
    /// Organisation-wide writes (everything else) per sliding second.
    pub writes_per_sec: usize,
    /// Asset folder uids accepted as `parent_uid`.
    pub folders: Vec<String>,
    /// Largest accepted asset, bytes (Contentstack: 100 MB via the API).
    pub max_asset_bytes: u64,
}

impl Default for Seed {
    fn default() -> Self {
        let mut content_types = BTreeMap::new();
        content_types.insert(
            "campaign_asset".to_string(),
            ["source_id", "summary", "body", "file", "campaign", "market"].map(String::from).to_vec(),
        );
        content_types.insert("boilerplate".to_string(), ["source_id", "text", "language"].map(String::from).to_vec());
        Seed {
            api_key: "blt0123456789abcdef".into(),
            management_tokens: vec!["cs-mgmt-token-0001".into()],
            authtokens: vec![],
            content_types,
            environments: vec!["staging".into(), "production".into()],
            locales: vec!["en-us".into(), "de-de".into()],
            reads_per_sec: 10,
            writes_per_sec: 10,
            folders: vec!["bltfolder0000000001".into()],
            max_asset_bytes: 100 * 1000 * 1000,
        }
    }
}

impl Seed {
    /// Reads a seed file (JSON).
    pub fn from_file(path: &Path) -> std::io::Result<Seed> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}
