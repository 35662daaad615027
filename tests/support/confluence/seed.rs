//! The emulator's starting content, read from JSON (`deploy/confluence-emulator.seed.json` is the
//! default, `cargo run --example confluence-emulator -- --print-default-seed` prints it).
//!
//! Format (every top-level key optional; a missing list is empty, a missing scalar takes the default):
//! ```json
//! {
//!   "users": [{"email": "wharf@example.com", "api_token": "wharf-api-token",
//!              "account_id": "557058:wharf", "display_name": "wharf service"}],
//!   "oauth": {"cloud_id": "…", "access_token": "…", "refresh_token": "…", "account_id": "557058:wharf"},
//!   "other_account_id": "557058:editor",
//!   "max_attachment_bytes": 104857600,
//!   "spaces": [{"id": 65537, "key": "ENG", "name": "Engineering", "homepage": "Engineering Home",
//!     "pages": [{"title": "Design Spec DS-001", "body": "<p>…</p>", "labels": ["approved"],
//!                "properties": {"project": "Harbor"}, "parent": null,
//!                "created": "2024-03-01T09:00:00Z", "last_modified": "2024-03-04T15:30:00Z",
//!                "version": 3, "restricted": false, "author": null,
//!                "attachments": [{"title": "DS-001.pdf", "media_type": "application/pdf",
//!                                 "content": "%PDF-1.4 …", "comment": ""}]}]}]
//! }
//! ```
//! Every space gets a homepage (a page titled `homepage`, created first); a page without `parent`
//! (the title of an earlier or later page of the same space) lives under it. `restricted` pages
//! exist but the API user may not see them (404 everywhere, absent from lists and searches).
//! `author` defaults to `other_account_id`; page ids are assigned in seed order from 98305 on.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Everything the emulator starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Site accounts (Basic `email:api_token` on `/wiki/...`).
    #[serde(default = "default_users")]
    pub users: Vec<SeedUser>,
    /// The OAuth 2.0 (3LO) site: its cloudId and one valid token pair (`/ex/confluence/{cloudId}/wiki/...`).
    #[serde(default = "default_oauth")]
    pub oauth: SeedOAuth,
    /// The account of "another user" (seeded authors, `Emulator::add_page` / `edit_page`).
    #[serde(default = "default_other")]
    pub other_account_id: String,
    /// Larger attachments are refused (404, as documented for v1 uploads).
    #[serde(default = "default_max_attachment")]
    pub max_attachment_bytes: u64,
    /// Spaces with their pages.
    #[serde(default)]
    pub spaces: Vec<SeedSpace>,
}

/// A site account with an API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub email: String,
    pub api_token: String,
    pub account_id: String,
    #[serde(default)]
    pub display_name: String,
}

/// The OAuth side: cloudId of the site and the token pair of the app's user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOAuth {
    pub cloud_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub account_id: String,
    /// Client credentials accepted by `POST /oauth/token` (refresh grant).
    #[serde(default = "default_client_id")]
    pub client_id: String,
    #[serde(default = "default_client_secret")]
    pub client_secret: String,
}

/// A space with fixed id and key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSpace {
    pub id: u64,
    pub key: String,
    pub name: String,
    /// Title of the homepage; default `"{name} Home"`.
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub pages: Vec<SeedPage>,
}

/// A page (current version only; `version` says how many versions it had).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPage {
    pub title: String,
    /// Storage-format XHTML.
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Content properties, key → JSON value.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub attachments: Vec<SeedAttachment>,
    #[serde(default)]
    pub parent: Option<String>,
    /// RFC 3339; default 2024-01-02T08:00:00Z.
    #[serde(default)]
    pub created: Option<String>,
    /// RFC 3339; default = `created`.
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default)]
    pub author: Option<String>,
}

/// An attachment with text content (one version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAttachment {
    pub title: String,
    #[serde(default)]
    pub media_type: Option<String>,
    pub content: String,
    #[serde(default)]
    pub comment: String,
}

fn one() -> u32 {
    1
}
fn default_users() -> Vec<SeedUser> {
    vec![SeedUser {
        email: "wharf@example.com".into(),
        api_token: "wharf-api-token".into(),
        account_id: "557058:0a1b2c3d-wharf".into(),
        display_name: "wharf service".into(),
    }]
}
fn default_client_id() -> String {
    "wharf-oauth-client".into()
}
fn default_client_secret() -> String {
    "wharf-oauth-secret".into()
}
fn default_oauth() -> SeedOAuth {
    SeedOAuth {
        cloud_id: "a1b2c3d4-0000-4000-8000-00000000c0de".into(),
        access_token: "wharf-oauth-access-token".into(),
        refresh_token: "wharf-oauth-refresh-token".into(),
        account_id: "557058:0a1b2c3d-wharf".into(),
        client_id: default_client_id(),
        client_secret: default_client_secret(),
    }
}
fn default_other() -> String {
    "557058:9f8e7d6c-editor".into()
}
fn default_max_attachment() -> u64 {
    100 << 20
}

/// The storage body of a document page: a Page Properties (`details`) macro and some text.
fn spec_body(fields: &[(&str, &str)], text: &str) -> String {
    let rows: String = fields.iter().map(|(k, v)| format!("<tr><th><p>{k}</p></th><td><p>{v}</p></td></tr>")).collect();
    format!(
        "<ac:structured-macro ac:name=\"details\" ac:schema-version=\"1\"><ac:rich-text-body><table><tbody>{rows}</tbody></table></ac:rich-text-body></ac:structured-macro><p>{text}</p>"
    )
}

fn doc_page(title: &str, labels: &[&str], fields: &[(&str, &str)], text: &str) -> SeedPage {
    let properties = fields.iter().map(|(k, v)| (k.to_lowercase().replace(' ', "-"), json!(v))).collect();
    SeedPage {
        title: title.into(),
        body: spec_body(fields, text),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        properties,
        attachments: vec![],
        parent: None,
        created: Some("2024-03-01T09:00:00Z".into()),
        last_modified: Some("2024-03-04T15:30:00Z".into()),
        version: 1,
        restricted: false,
        author: None,
    }
}

impl Default for Seed {
    /// The demo: space ENG "Engineering" (two design specs, one approved with an attachment, an
    /// approved runbook, a restricted page) and TPL "Templates".
    fn default() -> Self {
        let f =
            |p: &'static str, s: &'static str, o: &'static str, a: &'static str| -> Vec<(&'static str, &'static str)> {
                vec![
                    ("Project", p),
                    ("Department", "Engineering"),
                    ("Document Type", s),
                    ("Owner", o),
                    ("Approval Status", a),
                    ("Retention Category", "ENG-7Y"),
                ]
            };
        let mut ds1 = doc_page(
            "Design Spec DS-001",
            &["approved"],
            &f("Harbor", "Design Specification", "Jane Doe", "Approved"),
            "Architecture of the Harbor transfer gateway.",
        );
        ds1.version = 3;
        ds1.attachments = vec![SeedAttachment {
            title: "DS-001-architecture.pdf".into(),
            media_type: Some("application/pdf".into()),
            content: "%PDF-1.4\n% DS-001 architecture diagram (emulator sample)\n%%EOF\n".into(),
            comment: "Architecture diagram".into(),
        }];
        let mut ds2 = doc_page(
            "Design Spec DS-002",
            &["draft"],
            &f("Harbor", "Design Specification", "John Roe", "In Review"),
            "Retry policy of the connectors (in review).",
        );
        ds2.created = Some("2024-04-10T10:00:00Z".into());
        ds2.last_modified = Some("2024-04-12T11:45:00Z".into());
        let mut rb = doc_page(
            "Runbook RB-010",
            &["approved", "runbook"],
            &f("Harbor", "Runbook", "Ops Team", "Approved"),
            "How to restart the gateway.",
        );
        rb.parent = Some("Design Spec DS-001".into());
        rb.created = Some("2024-02-01T08:00:00Z".into());
        rb.last_modified = Some("2024-02-01T08:00:00Z".into());
        let mut secret = doc_page("HR Salary Review", &["approved"], &[], "Restricted to HR.");
        secret.restricted = true;
        let mut tpl = doc_page(
            "Template: Design Specification",
            &["template"],
            &f("", "Design Specification", "", "Draft"),
            "Copy this page to start a design specification.",
        );
        tpl.properties.clear();
        Seed {
            users: default_users(),
            oauth: default_oauth(),
            other_account_id: default_other(),
            max_attachment_bytes: default_max_attachment(),
            spaces: vec![
                SeedSpace {
                    id: 65537,
                    key: "ENG".into(),
                    name: "Engineering".into(),
                    homepage: None,
                    pages: vec![ds1, ds2, rb, secret],
                },
                SeedSpace { id: 65538, key: "TPL".into(), name: "Templates".into(), homepage: None, pages: vec![tpl] },
            ],
        }
    }
}

/// Parses a seed timestamp (RFC 3339).
pub fn parse_time(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(chrono::DateTime::parse_from_rfc3339(s).map_err(|e| anyhow::anyhow!("seed: bad time {s:?}: {e}"))?.into())
}

/// Whether a label name is one Confluence accepts (no whitespace, none of `:;,.?&[]()#^*@!<>`).
pub fn valid_label(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.chars().any(|c| c.is_whitespace() || ":;,.?&[]()#^*@!<>".contains(c))
}

impl Seed {
    /// Reads and checks a seed file (JSON, format in the module comment).
    pub fn from_file(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let seed: Seed = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        seed.check()?;
        Ok(seed)
    }

    /// Consistency rules: users present, unique space ids/keys, unique titles per space, known
    /// parents, valid times, labels and attachment names.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.users.is_empty(), "seed: at least one user");
        for u in &self.users {
            anyhow::ensure!(
                u.email.contains('@') && !u.api_token.is_empty(),
                "seed: user {:?} needs email and token",
                u.email
            );
        }
        anyhow::ensure!(
            !self.oauth.cloud_id.is_empty() && !self.oauth.access_token.is_empty(),
            "seed: oauth cloud_id/access_token"
        );
        let (mut ids, mut keys) = (BTreeSet::new(), BTreeSet::new());
        for s in &self.spaces {
            anyhow::ensure!(
                s.id > 0 && s.id < 98305 && ids.insert(s.id),
                "seed: space id {} duplicate or outside 1..98304",
                s.id
            );
            anyhow::ensure!(
                !s.key.is_empty()
                    && s.key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    && keys.insert(&s.key),
                "seed: space key {:?} duplicate or not [A-Z0-9]+",
                s.key
            );
            let home = s.homepage.clone().unwrap_or_else(|| format!("{} Home", s.name));
            let mut titles = BTreeSet::from([home.to_lowercase()]);
            for p in &s.pages {
                anyhow::ensure!(!p.title.trim().is_empty(), "seed: {}: empty page title", s.key);
                anyhow::ensure!(
                    titles.insert(p.title.to_lowercase()),
                    "seed: {}: duplicate title {:?}",
                    s.key,
                    p.title
                );
                anyhow::ensure!(p.version >= 1, "seed: {:?}: version must be >= 1", p.title);
                for t in p.created.iter().chain(p.last_modified.iter()) {
                    parse_time(t)?;
                }
                for l in &p.labels {
                    anyhow::ensure!(valid_label(l), "seed: {:?}: invalid label {l:?}", p.title);
                }
                let mut names = BTreeSet::new();
                for a in &p.attachments {
                    anyhow::ensure!(
                        !a.title.is_empty() && names.insert(&a.title),
                        "seed: {:?}: attachment {:?}",
                        p.title,
                        a.title
                    );
                }
            }
            for p in &s.pages {
                if let Some(parent) = &p.parent {
                    anyhow::ensure!(
                        parent != &p.title && titles.contains(&parent.to_lowercase()),
                        "seed: {:?}: unknown parent {parent:?}",
                        p.title
                    );
                }
            }
        }
        Ok(())
    }
}
