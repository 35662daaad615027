//! `[admin]` (the admin HTTP listener) and `[[webhooks]]`: events pushed by a connected system
//! (Contentstack's `entries.unpublish` / `entries.delete`) that become transfers of a channel,
//! the fourth kind of intake beside mounts, hot folders and polls.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:9080"        # health and webhooks; keep it off the partner-facing interface
//!
//! [[webhooks]]
//! name = "cs-retired"              # the URL is http://<admin>/webhooks/cs-retired
//! type = "contentstack"
//! channel = "retired-entries"
//! account = "contentstack-intake"  # whose attributes the rules see
//! events = ["entries.unpublish", "entries.delete"]
//! secret_env = "WHARF_CS_WEBHOOK_SECRET"   # or secret_file
//! auth = "header"                  # the secret in a custom header (default) | "hmac-sha256"
//! header = "X-Wharf-Webhook-Secret"
//! api_key = "blt0123456789abcdef"  # only events of this stack
//! max_age_secs = 86400             # older events (by `triggered_at`) are refused
//! package_from = "cs"              # a `contentstack` target: the transfer is a retention zip
//! ```

use super::is_valid_name;
use super::locate::{Checker, KeyPath};
use super::secret::{SecretSource, from_keys};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// `[admin]` as written.
#[derive(Debug, Deserialize)]
pub struct RawAdmin {
    /// Address to bind.
    pub listen: String,
    /// Largest request body accepted (bytes).
    pub max_body_bytes: Option<usize>,
}

/// `[[webhooks]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawWebhook {
    /// Name: the last segment of its URL, and its key in the journal.
    pub name: String,
    /// Sender: `contentstack`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The channel its events become transfers of.
    pub channel: String,
    /// The account the transfers are attributed to.
    pub account: String,
    /// Events accepted (`module.action`).
    pub events: Option<Vec<String>>,
    /// Environment variable holding the shared secret.
    pub secret_env: Option<String>,
    /// File holding the shared secret.
    pub secret_file: Option<String>,
    /// `header` or `hmac-sha256`.
    pub auth: Option<String>,
    /// The header carrying the secret (`auth = "header"`).
    pub header: Option<String>,
    /// The stack whose events are accepted.
    pub api_key: Option<String>,
    /// Oldest event accepted, by its `triggered_at`.
    pub max_age_secs: Option<u64>,
    /// A `contentstack` target: each event becomes a retention package (entry JSON + assets)
    /// read through its connection, instead of the bare payload.
    pub package_from: Option<String>,
}

/// The admin HTTP listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

/// How a webhook request proves where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAuth {
    /// The shared secret itself in this header (Contentstack's custom headers).
    Header(String),
    /// `X-Contentstack-Signature`: hex HMAC-SHA256 of the body under the secret.
    HmacSha256,
}

/// One webhook intake.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Name (URL segment, journal key).
    pub name: String,
    /// The channel.
    pub channel: String,
    /// The account the transfers are attributed to.
    pub account: String,
    /// Accepted events, `module.action` (`entries.unpublish`).
    pub events: Vec<String>,
    /// The shared secret (read when the gateway starts).
    pub secret: SecretSource,
    /// How the secret is checked.
    pub auth: WebhookAuth,
    /// The only stack accepted, if set.
    pub api_key: Option<String>,
    /// Oldest event accepted.
    pub max_age: Duration,
    /// The `contentstack` target whose connection builds retention packages, if any.
    pub package_from: Option<String>,
}

/// Contentstack's webhook channels wharf understands.
const CONTENTSTACK_EVENTS: &[&str] = &["entries.unpublish", "entries.delete", "entries.publish"];

/// Validates `[admin]`.
pub fn build_admin(raw: &RawAdmin, ck: &mut Checker<'_>) -> AdminConfig {
    let key = KeyPath::root().key("admin");
    let listen = raw.listen.parse().unwrap_or_else(|e| {
        ck.report(&key.key("listen"), format!("`{}` is not an address with a port ({e})", raw.listen));
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    let max_body_bytes = raw.max_body_bytes.unwrap_or(1024 * 1024);
    if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
        ck.report(&key.key("max_body_bytes"), "must be between 1024 and 67108864");
    }
    AdminConfig { listen, max_body_bytes }
}

/// Validates `[[webhooks]]` against the rest of the config.
pub fn build(raw: &[RawWebhook], config: &super::Config, base: &Path, ck: &mut Checker<'_>) -> Vec<WebhookConfig> {
    let mut names: std::collections::HashSet<&str> = config.polls.iter().map(|p| p.name.as_str()).collect();
    let mut out = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let key = KeyPath::root().key("webhooks").index(i);
        let before = ck.problems.len();
        if !is_valid_name(&w.name) || !names.insert(w.name.as_str()) {
            ck.report(&key.key("name"), format!("`{}` is not a valid name unique among webhooks and polls", w.name));
        }
        if w.kind != "contentstack" {
            ck.report(
                &key.key("type"),
                format!("`{}` is not a webhook sender wharf knows (known: contentstack)", w.kind),
            );
        }
        if !is_valid_name(&w.channel) {
            ck.report(&key.key("channel"), format!("`{}` is not a valid channel name", w.channel));
        }
        if config.account(&w.account).is_none() {
            ck.report(&key.key("account"), format!("no account named `{}`", w.account));
        }
        if config.pipeline.is_none() {
            ck.report(&key.key("channel"), "a webhook needs [pipeline]: nothing would process its events");
        }
        if config.admin.is_none() {
            ck.report(&key.key("name"), "a webhook needs [admin]: it is served on the admin listener");
        }
        let events = w.events.clone().unwrap_or_else(|| vec!["entries.unpublish".into(), "entries.delete".into()]);
        if events.is_empty() {
            ck.report(&key.key("events"), "name at least one event");
        }
        for e in &events {
            if !CONTENTSTACK_EVENTS.contains(&e.as_str()) {
                ck.report(&key.key("events"), format!("`{e}` is not one of {}", CONTENTSTACK_EVENTS.join(", ")));
            }
        }
        let secret = from_keys(&w.secret_env, &w.secret_file, &key, ("secret_env", "secret_file"), base, ck);
        if w.secret_env.is_none() && w.secret_file.is_none() {
            ck.report(&key.key("secret_env"), "a webhook needs a shared secret: give `secret_env` or `secret_file`");
        }
        let auth = match w.auth.as_deref().unwrap_or("header") {
            "header" => {
                let h = w.header.clone().unwrap_or_else(|| "X-Wharf-Webhook-Secret".into());
                if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    ck.report(&key.key("header"), format!("`{h}` is not an HTTP header name"));
                }
                WebhookAuth::Header(h)
            }
            "hmac-sha256" => WebhookAuth::HmacSha256,
            other => {
                ck.report(&key.key("auth"), format!("`{other}` must be `header` or `hmac-sha256`"));
                WebhookAuth::HmacSha256
            }
        };
        if let Some(t) = &w.package_from {
            let found = config.targets.iter().find(|x| &x.name == t);
            if !found.is_some_and(|x| matches!(x.kind, super::TargetKind::Contentstack(_))) {
                ck.report(&key.key("package_from"), format!("`{t}` is not a `contentstack` target of this config"));
            }
        }
        let max_age = Duration::from_secs(w.max_age_secs.unwrap_or(86_400));
        if max_age.is_zero() {
            ck.report(&key.key("max_age_secs"), "must be at least 1");
        }
        if ck.problems.len() == before
            && let Some(secret) = secret
        {
            out.push(WebhookConfig {
                name: w.name.clone(),
                channel: w.channel.clone(),
                account: w.account.clone(),
                events,
                secret,
                auth,
                api_key: w.api_key.clone(),
                max_age,
                package_from: w.package_from.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn config(extra: &str) -> Result<Config, crate::config::Error> {
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[pipeline]\nrules = \"r\"\n\
             [[accounts]]\nname = \"cs\"\ndisabled = true\n{extra}"
        );
        Config::parse(Path::new("/etc/wharf/wharf.toml"), &text)
    }

    #[test]
    fn a_webhook_is_parsed_with_its_defaults() {
        let cfg = config(
            "[admin]\nlisten = \"127.0.0.1:9080\"\n[[webhooks]]\nname = \"cs\"\ntype = \"contentstack\"\n\
             channel = \"retired\"\naccount = \"cs\"\nsecret_env = \"S\"\n",
        )
        .expect("valid");
        let w = &cfg.webhooks[0];
        assert_eq!(w.events, ["entries.unpublish", "entries.delete"]);
        assert_eq!(w.auth, super::WebhookAuth::Header("X-Wharf-Webhook-Secret".into()));
        assert_eq!(cfg.admin.as_ref().map(|a| a.max_body_bytes), Some(1024 * 1024));
    }

    #[test]
    fn webhook_mistakes_are_located_and_explained() {
        let err = config(
            "[[webhooks]]\nname = \"cs\"\ntype = \"wordpress\"\nchannel = \"retired\"\naccount = \"nobody\"\n\
             events = [\"entries.update\"]\nauth = \"basic\"\n",
        )
        .expect_err("invalid")
        .to_string();
        for want in [
            "webhooks[0].type: `wordpress` is not a webhook sender",
            "webhooks[0].account: no account named `nobody`",
            "webhooks[0].name: a webhook needs [admin]",
            "webhooks[0].events: `entries.update` is not one of",
            "webhooks[0].secret_env: a webhook needs a shared secret",
            "webhooks[0].auth: `basic` must be",
        ] {
            assert!(err.contains(want), "missing {want:?} in:\n{err}");
        }
        assert!(err.contains("/etc/wharf/wharf.toml:"), "{err}");
    }
}
