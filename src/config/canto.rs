//! `[targets.canto]`: the settings of a Canto DAM target (OAuth2 client credentials).
//!
//! ```toml
//! [[targets]]
//! name = "canto"
//! type = "canto"
//! [targets.canto]
//! base_url = "https://acme.canto.com"            # the tenant (…/api/v1 is added)
//! oauth_url = "https://oauth.canto.com"          # the token host (…/oauth/api/oauth2/token)
//! app_id = "abc123"
//! app_secret_env = "WHARF_CANTO_SECRET"          # or app_secret_file
//! scope = "admin"                                # admin | contributor | consumer
//! timeout_secs = 120
//! upload_status_timeout_secs = 300               # an upload still `Initial` after this: exception
//! upload_status_poll_ms = 2000
//! keywords = ["campaign", "market"]              # metadata keys whose values become keywords
//! tags = ["region"]                              # metadata keys whose values become tags
//! [targets.canto.custom]                         # custom field id = template over metadata
//! meta_region = "{region}"
//! ```

use super::locate::{Checker, KeyPath};
use super::secret::{self, SecretSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// `[targets.canto]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanto {
    /// Tenant base URL.
    pub base_url: String,
    /// OAuth host.
    pub oauth_url: Option<String>,
    /// API key id.
    pub app_id: String,
    /// Environment variable holding the app secret.
    pub app_secret_env: Option<String>,
    /// File holding the app secret.
    pub app_secret_file: Option<String>,
    /// OAuth scope.
    pub scope: Option<String>,
    /// Per-request timeout.
    pub timeout_secs: Option<u64>,
    /// How long an upload may stay `Initial`.
    pub upload_status_timeout_secs: Option<u64>,
    /// Between status polls.
    pub upload_status_poll_ms: Option<u64>,
    /// Metadata keys that become keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Metadata keys that become tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Custom field id → template over metadata (`{key}`).
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
}

/// A validated Canto target.
#[derive(Debug, Clone)]
pub struct CantoConfig {
    /// Tenant base URL, no trailing slash.
    pub base_url: String,
    /// OAuth base URL.
    pub oauth_url: String,
    /// API key id.
    pub app_id: String,
    /// API key secret.
    pub app_secret: SecretSource,
    /// OAuth scope.
    pub scope: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Upload status timeout.
    pub upload_status_timeout: Duration,
    /// Upload status poll interval.
    pub upload_status_poll: Duration,
    /// Metadata keys → keywords.
    pub keywords: Vec<String>,
    /// Metadata keys → tags.
    pub tags: Vec<String>,
    /// Custom field id → template.
    pub custom: BTreeMap<String, String>,
}

fn valid_template(t: &str) -> bool {
    let mut depth = 0;
    for c in t.chars() {
        match c {
            '{' if depth == 0 => depth = 1,
            '}' if depth == 1 => depth = 0,
            '{' | '}' => return false,
            _ => {}
        }
    }
    depth == 0
}

/// Validates `[targets.canto]`; every problem is reported with its key.
pub fn build(raw: &RawCanto, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<CantoConfig> {
    let before = ck.problems.len();
    let base_url = secret::http_url(&raw.base_url, &key.key("base_url"), ck);
    let base_url = base_url.trim_end_matches("/api/v1").to_string();
    let oauth_url =
        secret::http_url(raw.oauth_url.as_deref().unwrap_or("https://oauth.canto.com"), &key.key("oauth_url"), ck);
    if raw.app_id.trim().is_empty() {
        ck.report(&key.key("app_id"), "must be the API key's app id");
    }
    let app_secret = secret::from_keys(
        &raw.app_secret_env,
        &raw.app_secret_file,
        key,
        ("app_secret_env", "app_secret_file"),
        base,
        ck,
    );
    if raw.app_secret_env.is_none() && raw.app_secret_file.is_none() {
        ck.report(&key.key("app_secret_env"), "give `app_secret_env` or `app_secret_file`");
    }
    let scope = raw.scope.clone().unwrap_or_else(|| "admin".into());
    if !["admin", "contributor", "consumer"].contains(&scope.as_str()) {
        ck.report(&key.key("scope"), "must be `admin`, `contributor` or `consumer`");
    }
    let timeout = raw.timeout_secs.unwrap_or(120);
    if timeout == 0 || timeout > 3600 {
        ck.report(&key.key("timeout_secs"), "must be between 1 and 3600");
    }
    let status_timeout = raw.upload_status_timeout_secs.unwrap_or(300);
    if status_timeout == 0 || status_timeout > 86_400 {
        ck.report(&key.key("upload_status_timeout_secs"), "must be between 1 and 86400");
    }
    let poll = raw.upload_status_poll_ms.unwrap_or(2000);
    if !(10..=600_000).contains(&poll) {
        ck.report(&key.key("upload_status_poll_ms"), "must be between 10 and 600000");
    }
    for (list, name) in [(&raw.keywords, "keywords"), (&raw.tags, "tags")] {
        if list.iter().any(|k| k.trim().is_empty()) {
            ck.report(&key.key(name), "metadata keys must not be empty");
        }
    }
    for (field, t) in &raw.custom {
        if !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || field.is_empty() {
            ck.report(&key.key("custom").key(field), "must be a Canto custom field id such as `meta_region`");
        }
        if !valid_template(t) {
            ck.report(&key.key("custom").key(field), "unbalanced `{` `}` in the template");
        }
    }
    if ck.problems.len() != before {
        return None;
    }
    Some(CantoConfig {
        base_url,
        oauth_url,
        app_id: raw.app_id.clone(),
        app_secret: app_secret?,
        scope,
        timeout: Duration::from_secs(timeout),
        upload_status_timeout: Duration::from_secs(status_timeout),
        upload_status_poll: Duration::from_millis(poll),
        keywords: raw.keywords.clone(),
        tags: raw.tags.clone(),
        custom: raw.custom.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::locate::{Checker, KeyPath};
    use super::*;

    fn check(text: &str) -> (Option<CantoConfig>, Vec<String>) {
        let raw: RawCanto = toml::from_str(text).expect("toml");
        let mut ck = Checker::new(Path::new("wharf.toml"), "");
        let key = KeyPath::root().key("targets").index(0).key("canto");
        let cfg = build(&raw, &key, Path::new("/etc/wharf"), &mut ck);
        (cfg, ck.problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect())
    }

    #[test]
    fn a_good_table_is_taken_with_defaults() {
        let (cfg, problems) = check(
            "base_url = \"https://acme.canto.com/\"\napp_id = \"a\"\napp_secret_env = \"S\"\ntags = [\"region\"]\n[custom]\nmeta_region = \"{region}\"\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let cfg = cfg.expect("config");
        assert_eq!(cfg.base_url, "https://acme.canto.com");
        assert_eq!(cfg.oauth_url, "https://oauth.canto.com");
        assert_eq!(cfg.scope, "admin");
        assert_eq!(cfg.app_secret, SecretSource::Env("S".into()));
    }

    #[test]
    fn bad_values_name_their_keys() {
        let (cfg, problems) = check(
            "base_url = \"ftp://x\"\napp_id = \"\"\nscope = \"root\"\nupload_status_poll_ms = 1\n[custom]\n\"bad id\" = \"{x\"\n",
        );
        assert!(cfg.is_none());
        let all = problems.join("\n");
        for k in ["base_url", "app_id", "app_secret_env", "scope", "upload_status_poll_ms", "custom"] {
            assert!(all.contains(k), "{k} missing in {all}");
        }
    }

    #[test]
    fn both_secret_keys_are_refused() {
        let (_, problems) = check(
            "base_url = \"https://a.canto.com\"\napp_id = \"a\"\napp_secret_env = \"S\"\napp_secret_file = \"f\"\n",
        );
        assert!(problems.iter().any(|p| p.contains("app_secret_file")), "{problems:?}");
    }

    #[test]
    fn a_canto_poll_with_bad_values_names_its_keys() {
        let text = "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[pipeline]\nrules = \"r\"\n[[targets]]\nname = \"canto\"\ntype = \"canto\"\n\
            [targets.canto]\nbase_url = \"https://a.canto.com\"\napp_id = \"a\"\napp_secret_env = \"S\"\n\
            [[accounts]]\nname = \"i\"\ndisabled = true\n[[polls]]\nname = \"p\"\nchannel = \"c\"\naccount = \"i\"\n\
            [polls.source]\ntype = \"canto\"\ntarget = \"canto\"\nscheme = \"image|photo\"\napproval = \"maybe\"\n\
            [polls.write_back]\napproval = \"done\"\ndelivered = \"filed\"\n";
        let err = crate::config::Config::parse(Path::new("w.toml"), text).expect_err("refused").to_string();
        for k in [
            "polls[0].source.scheme",
            "polls[0].source.approval",
            "polls[0].write_back.approval",
            "polls[0].write_back.delivered",
        ] {
            assert!(err.contains(k), "{k} missing in {err}");
        }
        let good = text
            .replace("image|photo", "image|document")
            .replace("maybe", "approved")
            .replace("\"done\"", "\"approved\"")
            .replace("delivered = \"filed\"\n", "fields = { meta_rights_status = \"filed\" }\n");
        let cfg = crate::config::Config::parse(Path::new("w.toml"), &good).expect("good poll");
        assert_eq!(cfg.canto_polls["p"].delivered_fields["meta_rights_status"], "filed");
        assert_eq!(cfg.canto_polls["p"].scheme, "image|document");
    }
}
