//! `[[workflows]]`: the OpenText Workflow Service tenants that rules may start workflows in.
//!
//! ```toml
//! [[workflows]]
//! name = "otws"                                          # what rules call it
//! base_url = "https://na-1-dev.api.opentext.com"         # the region's API host (…/workflow/v1 is added)
//! tenant = "3f6c2a9e-…"                                  # tenant id of the OAuth authority
//! # token_url = "https://na-1-dev.api.opentext.com/tenants/3f6c2a9e-…/oauth2/token"   # the default
//! client_id = "wharf-gateway"
//! client_secret_env = "WHARF_OTWS_SECRET"                # or client_secret_file
//! timeout_secs = 60
//! max_retry_after_secs = 30    # a 429 asking for a longer wait is handed back as transient
//! ```
//!
//! Decided: a top-level `[[workflows]]` array, not a `[[targets]]` type, because a workflow
//! service is not a place documents are delivered to (it has no `deliver()`): rule actions
//! (`start_workflow`) and the watcher look a service up by name, and `TargetKind` stays the
//! registry of delivery connectors. The secret is named (env or file), never written here.

use super::locate::{Checker, KeyPath};
use super::secret::{self, SecretSource};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// `[[workflows]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawWorkflow {
    /// Name rules use.
    pub name: String,
    /// Regional API host.
    pub base_url: String,
    /// Tenant id.
    pub tenant: String,
    /// Token endpoint; default `{base_url}/tenants/{tenant}/oauth2/token`.
    pub token_url: Option<String>,
    /// OAuth client id.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret.
    pub client_secret_file: Option<String>,
    /// Per-request timeout.
    pub timeout_secs: Option<u64>,
    /// Longest `Retry-After` waited out in place.
    pub max_retry_after_secs: Option<u64>,
}

/// A validated Workflow Service tenant.
#[derive(Debug, Clone)]
pub struct WorkflowConfig {
    /// Name rules use.
    pub name: String,
    /// API base, ending in `/workflow/v1`, no trailing slash.
    pub api_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Tenant id (kept for links and logs).
    pub tenant: String,
    /// OAuth client id.
    pub client_id: String,
    /// Where the client secret is read from.
    pub client_secret: SecretSource,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Longest `Retry-After` waited out in place; longer ones are returned as transient errors.
    pub max_retry_after: Duration,
}

/// Validates every `[[workflows]]` entry; every problem is reported with its key.
pub fn build(raw: &[RawWorkflow], root: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Vec<WorkflowConfig> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let key = root.key("workflows").index(i);
            if !super::is_valid_name(&w.name) {
                ck.report(&key.key("name"), format!("`{}` is not a valid workflow service name", w.name));
            }
            if !names.insert(w.name.as_str()) {
                ck.report(&key.key("name"), format!("workflow service `{}` is defined twice", w.name));
            }
            build_one(w, &key, base, ck)
        })
        .collect()
}

fn build_one(w: &RawWorkflow, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<WorkflowConfig> {
    let before = ck.problems.len();
    let host = secret::http_url(&w.base_url, &key.key("base_url"), ck);
    let host = host.trim_end_matches("/workflow/v1").trim_end_matches('/').to_string();
    let tenant = w.tenant.trim().to_string();
    if tenant.is_empty() || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        ck.report(&key.key("tenant"), "must be the tenant id (letters, digits, `-`, `_`, `.`)");
    }
    let token_url = match &w.token_url {
        Some(t) => secret::http_url(t, &key.key("token_url"), ck),
        None => format!("{host}/tenants/{tenant}/oauth2/token"),
    };
    if w.client_id.trim().is_empty() {
        ck.report(&key.key("client_id"), "must be the OAuth client id");
    }
    let client_secret = secret::from_keys(
        &w.client_secret_env,
        &w.client_secret_file,
        key,
        ("client_secret_env", "client_secret_file"),
        base,
        ck,
    );
    if w.client_secret_env.is_none() && w.client_secret_file.is_none() {
        ck.report(&key.key("client_secret_env"), "give `client_secret_env` or `client_secret_file`");
    }
    let timeout = w.timeout_secs.unwrap_or(60);
    if timeout == 0 || timeout > 3600 {
        ck.report(&key.key("timeout_secs"), "must be between 1 and 3600");
    }
    let max_wait = w.max_retry_after_secs.unwrap_or(30);
    if max_wait > 600 {
        ck.report(
            &key.key("max_retry_after_secs"),
            "must be at most 600 (longer waits belong to the pipeline's retry)",
        );
    }
    if ck.problems.len() != before {
        return None;
    }
    Some(WorkflowConfig {
        name: w.name.clone(),
        api_url: format!("{host}/workflow/v1"),
        token_url,
        tenant,
        client_id: w.client_id.trim().to_string(),
        client_secret: client_secret?,
        timeout: Duration::from_secs(timeout),
        max_retry_after: Duration::from_secs(max_wait),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const HEAD: &str = "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n";

    #[test]
    fn a_workflow_service_is_taken_with_defaults() {
        let text = format!(
            "{HEAD}[[workflows]]\nname = \"otws\"\nbase_url = \"https://na-1-dev.api.opentext.com/workflow/v1/\"\n\
             tenant = \"t-1\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\n"
        );
        let cfg = crate::config::Config::parse(Path::new("/etc/wharf/w.toml"), &text).expect("config");
        let w = cfg.workflow("otws").expect("otws");
        assert_eq!(w.api_url, "https://na-1-dev.api.opentext.com/workflow/v1");
        assert_eq!(w.token_url, "https://na-1-dev.api.opentext.com/tenants/t-1/oauth2/token");
        assert_eq!(w.client_secret, crate::config::secret::SecretSource::Env("S".into()));
        assert_eq!((w.timeout.as_secs(), w.max_retry_after.as_secs()), (60, 30));
    }

    #[test]
    fn bad_workflow_values_are_reported_with_file_line_and_key() {
        let text = format!(
            "{HEAD}[[workflows]]\nname = \"otws\"\nbase_url = \"ftp://x\"\ntenant = \"a/b\"\nclient_id = \"\"\n\
             timeout_secs = 0\nmax_retry_after_secs = 9999\ncolour = \"blue\"\n\
             [[workflows]]\nname = \"otws\"\nbase_url = \"https://x\"\ntenant = \"t\"\nclient_id = \"c\"\n\
             client_secret_env = \"S\"\nclient_secret_file = \"f\"\n"
        );
        let err = crate::config::Config::parse(Path::new("w.toml"), &text).expect_err("refused").to_string();
        for k in [
            "w.toml:8:1: workflows[0].base_url",
            "workflows[0].tenant",
            "workflows[0].client_id",
            "workflows[0].client_secret_env",
            "workflows[0].timeout_secs",
            "workflows[0].max_retry_after_secs",
            "workflows[0].colour",
            "workflows[1].name",
            "workflows[1].client_secret_file",
        ] {
            assert!(err.contains(k), "{k} missing in\n{err}");
        }
    }
}
