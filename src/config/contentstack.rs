//! `[targets.contentstack]`: the settings of a Contentstack target (Content Management API).
//!
//! ```toml
//! [[targets]]
//! name = "contentstack-campaigns"
//! type = "contentstack"
//! [targets.contentstack]
//! base_url = "https://eu-api.contentstack.com"    # the stack's regional CMA host
//! api_key = "blt0123456789abcdef"                 # the stack API key (not a secret by itself)
//! management_token_env = "WHARF_CS_TOKEN"         # or management_token_file, or authtoken_env/_file
//! content_type = "campaign_asset"
//! unique_field = "source_id"                      # entry field that identifies a delivery
//! environments = ["staging", "production"]
//! locales = ["en-us", "de-de"]
//! asset_folder = "bltfolder0000000001"            # parent_uid of uploaded assets (optional)
//! reads_per_sec = 10                              # the organisation's rate, shared by all workers
//! writes_per_sec = 10
//! timeout_secs = 60
//! [targets.contentstack.fields]
//! title = { type = "text", from = "{title}" }
//! source_id = { type = "text", from = "{document_id}" }
//! body = { type = "rich_text" }                   # from the transfer's HTML/text body
//! file = { type = "asset" }                       # the uploaded asset's uid
//! campaign = { type = "reference", content_type = "campaign", from = "{campaign_uid}" }
//! ```
//! Secrets are never in the file itself, so they never appear in a config dump or an error.

use super::locate::{Checker, KeyPath};
use super::secret::{self, SecretSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// One `[targets.contentstack.fields]` value as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    /// `text`, `rich_text`, `asset` or `reference`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Template over metadata (`{key}` placeholders); required for text and reference.
    pub from: Option<String>,
    /// The referenced content type (reference only).
    pub content_type: Option<String>,
}

/// `[targets.contentstack]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContentstack {
    /// Regional CMA host.
    pub base_url: Option<String>,
    /// Stack API key.
    pub api_key: String,
    /// Environment variable holding the management token.
    pub management_token_env: Option<String>,
    /// File holding the management token.
    pub management_token_file: Option<String>,
    /// Environment variable holding a session authtoken.
    pub authtoken_env: Option<String>,
    /// File holding a session authtoken.
    pub authtoken_file: Option<String>,
    /// Content type uid of delivered entries.
    pub content_type: String,
    /// Entry field used to find an earlier delivery.
    pub unique_field: String,
    /// Entry field → how it is filled.
    #[serde(default)]
    pub fields: BTreeMap<String, RawField>,
    /// Publish environments.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Publish locales (the first is the entry's master locale).
    #[serde(default)]
    pub locales: Vec<String>,
    /// Asset folder uid.
    pub asset_folder: Option<String>,
    /// Reads per second for the whole target.
    pub reads_per_sec: Option<u32>,
    /// Writes per second for the whole target.
    pub writes_per_sec: Option<u32>,
    /// Per-request timeout.
    pub timeout_secs: Option<u64>,
}

/// How one entry field is filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// A template over metadata, sent as a string.
    Text(String),
    /// The transfer's body as HTML (text bodies are escaped and wrapped in `<p>`).
    RichText,
    /// The uid of the asset uploaded for this transfer.
    Asset,
    /// `[{"uid": <template>, "_content_type_uid": <content type>}]`.
    Reference {
        /// Referenced content type uid.
        content_type: String,
        /// Template giving the referenced entry's uid.
        uid: String,
    },
}

/// Which credential the target sends.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Raw in `authorization` (no `Bearer`).
    ManagementToken(SecretSource),
    /// In `authtoken`.
    Authtoken(SecretSource),
}

/// A validated Contentstack target.
#[derive(Debug, Clone)]
pub struct ContentstackConfig {
    /// Base URL without `/v3`.
    pub base_url: String,
    /// Stack API key.
    pub api_key: String,
    /// The credential.
    pub credential: Credential,
    /// Content type uid.
    pub content_type: String,
    /// Unique entry field.
    pub unique_field: String,
    /// Entry field → source.
    pub fields: BTreeMap<String, FieldSource>,
    /// Publish environments.
    pub environments: Vec<String>,
    /// Publish locales.
    pub locales: Vec<String>,
    /// Asset folder uid.
    pub asset_folder: Option<String>,
    /// Reads per second.
    pub reads_per_sec: u32,
    /// Writes per second.
    pub writes_per_sec: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

fn uid_like(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn credential(raw: &RawContentstack, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<Credential> {
    let m = secret::from_keys(
        &raw.management_token_env,
        &raw.management_token_file,
        key,
        ("management_token_env", "management_token_file"),
        base,
        ck,
    );
    let a =
        secret::from_keys(&raw.authtoken_env, &raw.authtoken_file, key, ("authtoken_env", "authtoken_file"), base, ck);
    let given_m = raw.management_token_env.is_some() || raw.management_token_file.is_some();
    let given_a = raw.authtoken_env.is_some() || raw.authtoken_file.is_some();
    match (given_m, given_a) {
        (true, true) => {
            ck.report(&key.key("authtoken_env"), "give a management token or an authtoken, not both");
            None
        }
        (false, false) => {
            ck.report(
                &key.key("management_token_env"),
                "give `management_token_env` or `management_token_file` (or an authtoken)",
            );
            None
        }
        (true, false) => m.map(Credential::ManagementToken),
        (false, true) => a.map(Credential::Authtoken),
    }
}

/// Whether every `{` of a template is closed by a `}` before the next `{`.
fn valid_template(t: &str) -> bool {
    let mut open = false;
    for c in t.chars() {
        match (c, open) {
            ('{', false) => open = true,
            ('}', true) => open = false,
            ('{', true) | ('}', false) => return false,
            _ => {}
        }
    }
    !open
}

fn field(name: &str, raw: &RawField, key: &KeyPath, ck: &mut Checker<'_>) -> Option<FieldSource> {
    let need_from = |ck: &mut Checker<'_>| {
        let f = raw.from.clone().filter(|f| !f.trim().is_empty());
        match &f {
            None => ck.report(&key.key("from"), "must be a template over metadata such as `{document_id}`"),
            Some(t) if !valid_template(t) => ck.report(&key.key("from"), "unbalanced `{` `}` in the template"),
            Some(_) => {}
        }
        f
    };
    if raw.from.is_some() && matches!(raw.kind.as_str(), "rich_text" | "asset") {
        ck.report(&key.key("from"), "a `rich_text` or `asset` field takes no `from` (it comes from the file)");
    }
    if !uid_like(name) {
        ck.report(key, "must be a field uid (letters, digits, `_`, `-`)");
    }
    match raw.kind.as_str() {
        "text" => need_from(ck).map(FieldSource::Text),
        "rich_text" => Some(FieldSource::RichText),
        "asset" => Some(FieldSource::Asset),
        "reference" => {
            let ct = raw.content_type.clone().filter(|c| uid_like(c));
            if ct.is_none() {
                ck.report(&key.key("content_type"), "must name the referenced content type");
            }
            let uid = need_from(ck);
            Some(FieldSource::Reference { content_type: ct?, uid: uid? })
        }
        _ => {
            ck.report(&key.key("type"), "must be one of text, rich_text, asset, reference");
            None
        }
    }
}

/// Validates `[targets.contentstack]`; every problem is reported with its key.
pub fn build(raw: &RawContentstack, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<ContentstackConfig> {
    let before = ck.problems.len();
    let base_url =
        secret::http_url(raw.base_url.as_deref().unwrap_or("https://api.contentstack.io"), &key.key("base_url"), ck);
    let base_url = base_url.trim_end_matches("/v3").to_string();
    if !uid_like(&raw.api_key) {
        ck.report(&key.key("api_key"), "must be the stack API key");
    }
    let credential = credential(raw, key, base, ck);
    if !uid_like(&raw.content_type) {
        ck.report(&key.key("content_type"), "must be a content type uid");
    }
    if !uid_like(&raw.unique_field) {
        ck.report(&key.key("unique_field"), "must be an entry field uid such as `source_id`");
    }
    let mut fields = BTreeMap::new();
    for (name, f) in &raw.fields {
        if let Some(src) = field(name, f, &key.key("fields").key(name), ck) {
            fields.insert(name.clone(), src);
        }
    }
    // Fixed on review: `title` and the unique field must be text (a lookup by a rich text or an
    // asset uid would never find the earlier delivery), and templates must be balanced.
    match raw.fields.get("title") {
        None => ck.report(&key.key("fields"), "must map `title` (every entry needs one)"),
        Some(f) if f.kind != "text" => ck.report(&key.key("fields").key("title").key("type"), "must be `text`"),
        Some(_) => {}
    }
    match raw.fields.get(&raw.unique_field) {
        None => ck.report(&key.key("unique_field"), "must also be mapped in `fields`"),
        Some(f) if f.kind != "text" => {
            ck.report(&key.key("unique_field"), "must be mapped as a `text` field (it is looked up by value)")
        }
        Some(_) => {}
    }
    if raw.fields.values().filter(|f| f.kind == "asset").count() > 1 {
        ck.report(&key.key("fields"), "at most one field may take the asset");
    }
    for (k, list) in [("environments", &raw.environments), ("locales", &raw.locales)] {
        if list.is_empty() || list.iter().any(|v| !uid_like(v)) {
            ck.report(&key.key(k), "must be a non-empty list of names");
        }
    }
    if raw.asset_folder.as_deref().is_some_and(|f| !uid_like(f)) {
        ck.report(&key.key("asset_folder"), "must be a folder uid");
    }
    let mut rate = |k: &str, v: Option<u32>| {
        let v = v.unwrap_or(10);
        if v == 0 || v > 1000 {
            ck.report(&key.key(k), "must be between 1 and 1000");
        }
        v
    };
    let reads_per_sec = rate("reads_per_sec", raw.reads_per_sec);
    let writes_per_sec = rate("writes_per_sec", raw.writes_per_sec);
    let timeout = raw.timeout_secs.unwrap_or(60);
    if timeout == 0 || timeout > 3600 {
        ck.report(&key.key("timeout_secs"), "must be between 1 and 3600");
    }
    if ck.problems.len() != before {
        return None;
    }
    Some(ContentstackConfig {
        base_url,
        api_key: raw.api_key.clone(),
        credential: credential?,
        content_type: raw.content_type.clone(),
        unique_field: raw.unique_field.clone(),
        fields,
        environments: raw.environments.clone(),
        locales: raw.locales.clone(),
        asset_folder: raw.asset_folder.clone(),
        reads_per_sec,
        writes_per_sec,
        timeout: Duration::from_secs(timeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (Option<ContentstackConfig>, Vec<String>) {
        let raw: RawContentstack = toml::from_str(text).expect("parse");
        let path = Path::new("wharf.toml");
        let mut ck = Checker::new(path, text);
        let key = KeyPath::root().key("targets").index(0).key("contentstack");
        let cfg = build(&raw, &key, Path::new("/etc/wharf"), &mut ck);
        (cfg, ck.problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect())
    }

    const GOOD: &str = r#"
base_url = "https://eu-api.contentstack.com/"
api_key = "blt0123"
management_token_env = "CS_TOKEN"
content_type = "campaign_asset"
unique_field = "source_id"
environments = ["staging", "production"]
locales = ["en-us", "de-de"]
[fields]
title = { type = "text", from = "{title}" }
source_id = { type = "text", from = "{document_id}" }
body = { type = "rich_text" }
file = { type = "asset" }
campaign = { type = "reference", content_type = "campaign", from = "{campaign_uid}" }
"#;

    #[test]
    fn good_contentstack_config_builds_with_defaults() {
        let (cfg, problems) = check(GOOD);
        assert!(problems.is_empty(), "{problems:?}");
        let cfg = cfg.expect("config");
        assert_eq!(cfg.base_url, "https://eu-api.contentstack.com");
        assert_eq!((cfg.reads_per_sec, cfg.writes_per_sec), (10, 10));
        assert!(matches!(cfg.credential, Credential::ManagementToken(SecretSource::Env(ref v)) if v == "CS_TOKEN"));
        assert_eq!(
            cfg.fields["campaign"],
            FieldSource::Reference { content_type: "campaign".into(), uid: "{campaign_uid}".into() }
        );
    }

    #[test]
    fn bad_contentstack_keys_are_reported_with_their_path() {
        let text = r#"
base_url = "ftp://x"
api_key = ""
management_token_env = "A"
authtoken_env = "B"
content_type = "bad type"
unique_field = "source_id"
environments = []
locales = ["en-us"]
writes_per_sec = 0
[fields]
body = { type = "html" }
ref = { type = "reference" }
"#;
        let (cfg, problems) = check(text);
        assert!(cfg.is_none());
        let p = |s: &str| problems.iter().any(|x| x.starts_with(s));
        for key in [
            "targets[0].contentstack.base_url: must be an http(s) URL",
            "targets[0].contentstack.api_key:",
            "targets[0].contentstack.authtoken_env: give a management token or an authtoken",
            "targets[0].contentstack.content_type:",
            "targets[0].contentstack.unique_field: must also be mapped",
            "targets[0].contentstack.environments:",
            "targets[0].contentstack.writes_per_sec:",
            "targets[0].contentstack.fields.body.type:",
            "targets[0].contentstack.fields.ref.content_type:",
            "targets[0].contentstack.fields.ref.from:",
            "targets[0].contentstack.fields: must map `title`",
        ] {
            assert!(p(key), "missing {key} in {problems:?}");
        }
    }

    #[test]
    fn contentstack_needs_a_credential() {
        let text = GOOD.replace("management_token_env = \"CS_TOKEN\"\n", "");
        let (cfg, problems) = check(&text);
        assert!(cfg.is_none());
        assert!(
            problems.iter().any(|p| p.starts_with("targets[0].contentstack.management_token_env:")),
            "{problems:?}"
        );
    }

    #[test]
    fn contentstack_unique_field_and_title_must_be_text_and_templates_balanced() {
        let text = GOOD
            .replace("source_id = { type = \"text\", from = \"{document_id}\" }", "source_id = { type = \"asset\" }")
            .replace("from = \"{title}\"", "from = \"{title\"");
        let (cfg, problems) = check(&text);
        assert!(cfg.is_none());
        let all = problems.join("\n");
        assert!(all.contains("targets[0].contentstack.unique_field: must be mapped as a `text` field"), "{all}");
        assert!(all.contains("targets[0].contentstack.fields.title.from: unbalanced"), "{all}");
        assert!(all.contains("at most one field may take the asset"), "{all}");
    }

    #[test]
    fn contentstack_target_is_wired_into_the_config() {
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\n[[targets]]\nname = \"cs\"\n\
             type = \"contentstack\"\n[targets.contentstack]\n{}",
            GOOD.replace("[fields]", "[targets.contentstack.fields]")
        );
        let cfg = crate::config::Config::parse(Path::new("w.toml"), &text).expect("config");
        let crate::config::TargetKind::Contentstack(c) = &cfg.targets[0].kind else { panic!("contentstack") };
        assert_eq!(c.locales, ["en-us", "de-de"]);
        let bad = text.replace("unique_field", "uniq_field");
        let err = crate::config::Config::parse(Path::new("w.toml"), &bad).expect_err("unknown key").to_string();
        assert!(err.contains("uniq_field"), "{err}");
        let wrong = text.replace("type = \"contentstack\"", "type = \"canto\"");
        let err = crate::config::Config::parse(Path::new("w.toml"), &wrong).expect_err("wrong table").to_string();
        assert!(err.contains("[targets.contentstack] does not belong to a `canto` target"), "{err}");
    }
}
