//! The emulator's repository: spaces, pages (current version, labels, content properties,
//! attachments with their stored versions) and OAuth tokens.

use super::seed::{Seed, parse_time};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// First id handed out to pages, labels, properties and attachments (one counter, like Confluence).
pub const FIRST_CONTENT_ID: u64 = 98305;

/// A space.
#[derive(Clone, Debug)]
pub struct Space {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub homepage_id: u64,
    pub created_at: DateTime<Utc>,
}

/// Who changed something when, and how (`version` of pages, properties and attachments).
#[derive(Clone, Debug)]
pub struct Version {
    pub number: u32,
    pub message: String,
    pub minor_edit: bool,
    pub author_id: String,
    pub created_at: DateTime<Utc>,
}

/// A label on a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub id: u64,
    pub prefix: String,
    pub name: String,
}

/// A content property.
#[derive(Clone, Debug)]
pub struct Property {
    pub id: u64,
    pub key: String,
    pub value: Value,
    pub version: Version,
}

/// One stored version of an attachment; the bytes are in `path`.
#[derive(Clone, Debug)]
pub struct AttVersion {
    pub version: Version,
    pub size: u64,
    pub sha256: String,
    pub media_type: String,
    pub path: PathBuf,
}

/// An attachment with its versions (last = current).
#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: u64,
    /// The Media file id (a UUID), new for every version like in Confluence.
    pub file_ids: Vec<String>,
    pub title: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub versions: Vec<AttVersion>,
}

impl Attachment {
    /// The current version (every attachment has at least one).
    pub fn current(&self) -> Option<&AttVersion> {
        self.versions.last()
    }
}

/// A page (its current version).
#[derive(Clone, Debug)]
pub struct Page {
    pub id: u64,
    pub space_id: u64,
    pub parent_id: Option<u64>,
    pub title: String,
    /// `current`, `draft`, `archived` or `trashed`.
    pub status: String,
    pub body: String,
    pub author_id: String,
    pub owner_id: String,
    pub created_at: DateTime<Utc>,
    pub version: Version,
    pub labels: Vec<Label>,
    pub properties: Vec<Property>,
    pub attachments: Vec<Attachment>,
    /// The API user may not see it.
    pub restricted: bool,
}

/// An OAuth access token: its account and the fault generation it was issued in.
#[derive(Clone, Debug)]
pub struct Token {
    pub account_id: String,
    pub generation: u64,
}

/// Everything that changes.
pub struct State {
    pub spaces: BTreeMap<u64, Space>,
    pub pages: BTreeMap<u64, Page>,
    next_id: u64,
    /// Label name → id (a label has one id site-wide).
    label_ids: HashMap<String, u64>,
    pub access_tokens: HashMap<String, Token>,
    /// Valid refresh tokens → account (rotated on every use).
    pub refresh_tokens: HashMap<String, String>,
}

/// A version dated `at` by `author`.
pub fn version(number: u32, author: &str, at: DateTime<Utc>, message: &str, minor: bool) -> Version {
    Version { number, message: message.into(), minor_edit: minor, author_id: author.into(), created_at: at }
}

/// A random-looking but deterministic UUID from a number (Media file ids).
pub fn uuid_from(n: u64, salt: u64) -> String {
    let h = hex::encode(Sha256::digest([n.to_le_bytes(), salt.to_le_bytes()].concat()));
    format!("{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

impl State {
    /// Builds the repository from a checked seed; attachment contents are written under `dir`.
    pub fn from_seed(seed: &Seed, dir: &Path) -> anyhow::Result<State> {
        let mut st = State {
            spaces: BTreeMap::new(),
            pages: BTreeMap::new(),
            next_id: FIRST_CONTENT_ID,
            label_ids: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
        };
        st.access_tokens.insert(
            seed.oauth.access_token.clone(),
            Token { account_id: seed.oauth.account_id.clone(), generation: 0 },
        );
        st.refresh_tokens.insert(seed.oauth.refresh_token.clone(), seed.oauth.account_id.clone());
        let epoch = parse_time("2024-01-02T08:00:00Z")?;
        for s in &seed.spaces {
            let home_title = s.homepage.clone().unwrap_or_else(|| format!("{} Home", s.name));
            let home = st.new_page(s.id, None, &home_title, "<p>Welcome.</p>", &seed.other_account_id, epoch);
            st.spaces.insert(
                s.id,
                Space { id: s.id, key: s.key.clone(), name: s.name.clone(), homepage_id: home, created_at: epoch },
            );
            let mut by_title = HashMap::new();
            for p in &s.pages {
                let created = p.created.as_deref().map(parse_time).transpose()?.unwrap_or(epoch);
                let modified = p.last_modified.as_deref().map(parse_time).transpose()?.unwrap_or(created);
                let author = p.author.clone().unwrap_or_else(|| seed.other_account_id.clone());
                let id = st.new_page(s.id, Some(home), &p.title, &p.body, &author, created);
                by_title.insert(p.title.to_lowercase(), id);
                for l in &p.labels {
                    st.add_label(id, "global", l);
                }
                for (k, v) in &p.properties {
                    let pid = st.next();
                    let pv = version(1, &author, created, "", false);
                    if let Some(pg) = st.pages.get_mut(&id) {
                        pg.properties.push(Property { id: pid, key: k.clone(), value: v.clone(), version: pv });
                    }
                }
                for a in &p.attachments {
                    let aid = st.next();
                    let path = dir.join(format!("att{aid}-v1"));
                    std::fs::write(&path, a.content.as_bytes())?;
                    let media_type = super::http::guess_mime(&a.title, a.media_type.as_deref());
                    let v = AttVersion {
                        version: version(1, &author, created, &a.comment, false),
                        size: a.content.len() as u64,
                        sha256: hex::encode(Sha256::digest(a.content.as_bytes())),
                        media_type,
                        path,
                    };
                    let att = Attachment {
                        id: aid,
                        file_ids: vec![uuid_from(aid, 1)],
                        title: a.title.clone(),
                        comment: a.comment.clone(),
                        created_at: created,
                        versions: vec![v],
                    };
                    if let Some(pg) = st.pages.get_mut(&id) {
                        pg.attachments.push(att);
                    }
                }
                if let Some(pg) = st.pages.get_mut(&id) {
                    pg.restricted = p.restricted;
                    pg.version = version(p.version, &author, modified, "", false);
                }
            }
            for p in &s.pages {
                if let (Some(parent), Some(id)) = (&p.parent, by_title.get(&p.title.to_lowercase())) {
                    let parent_id = by_title.get(&parent.to_lowercase()).copied().unwrap_or(home);
                    if let Some(pg) = st.pages.get_mut(id) {
                        pg.parent_id = Some(parent_id);
                    }
                }
            }
        }
        Ok(st)
    }

    /// A fresh content id.
    pub fn next(&mut self) -> u64 {
        let n = self.next_id;
        self.next_id += 1;
        n
    }

    /// Inserts a current page at version 1; returns its id.
    pub fn new_page(
        &mut self,
        space: u64,
        parent: Option<u64>,
        title: &str,
        body: &str,
        author: &str,
        at: DateTime<Utc>,
    ) -> u64 {
        let id = self.next();
        self.pages.insert(
            id,
            Page {
                id,
                space_id: space,
                parent_id: parent,
                title: title.into(),
                status: "current".into(),
                body: body.into(),
                author_id: author.into(),
                owner_id: author.into(),
                created_at: at,
                version: version(1, author, at, "", false),
                labels: vec![],
                properties: vec![],
                attachments: vec![],
                restricted: false,
            },
        );
        id
    }

    /// Adds a label (lowercased, as Confluence stores them) unless present; false when the page is missing.
    pub fn add_label(&mut self, page: u64, prefix: &str, name: &str) -> bool {
        let name = name.to_lowercase();
        let next = self.next_id;
        let id = *self.label_ids.entry(name.clone()).or_insert(next);
        if id == next {
            self.next_id += 1;
        }
        let Some(p) = self.pages.get_mut(&page) else { return false };
        if !p.labels.iter().any(|l| l.name == name && l.prefix == prefix) {
            p.labels.push(Label { id, prefix: prefix.into(), name });
        }
        true
    }

    /// A page the API user can see (not restricted, not a draft of someone else).
    pub fn visible(&self, id: u64) -> Option<&Page> {
        self.pages.get(&id).filter(|p| !p.restricted)
    }

    /// Mutable access to a visible page.
    pub fn visible_mut(&mut self, id: u64) -> Option<&mut Page> {
        self.pages.get_mut(&id).filter(|p| !p.restricted)
    }

    /// A space by key.
    pub fn space_by_key(&self, key: &str) -> Option<&Space> {
        self.spaces.values().find(|s| s.key == key)
    }

    /// Whether another current page of the space has this title (case-insensitive, like Confluence).
    pub fn title_taken(&self, space: u64, title: &str, except: Option<u64>) -> bool {
        self.pages.values().any(|p| {
            p.space_id == space
                && Some(p.id) != except
                && p.status != "trashed"
                && p.status != "draft"
                && p.title.to_lowercase() == title.to_lowercase()
        })
    }

    /// The inspection view of a page (restricted ones too).
    pub fn view(&self, id: u64) -> Option<super::PageView> {
        let p = self.pages.get(&id)?;
        let space_key = self.spaces.get(&p.space_id).map(|s| s.key.clone()).unwrap_or_default();
        Some(super::PageView {
            id: p.id.to_string(),
            space_key,
            title: p.title.clone(),
            status: p.status.clone(),
            parent_id: p.parent_id.map(|x| x.to_string()),
            version: p.version.number,
            body_storage: p.body.clone(),
            restricted: p.restricted,
            labels: p.labels.iter().map(|l| l.name.clone()).collect(),
            properties: p.properties.iter().map(|x| (x.key.clone(), x.value.clone())).collect(),
            attachments: p
                .attachments
                .iter()
                .filter_map(|a| {
                    let v = a.current()?;
                    Some(super::AttachmentView {
                        id: format!("att{}", a.id),
                        title: a.title.clone(),
                        size: v.size,
                        sha256: v.sha256.clone(),
                        version: v.version.number,
                        media_type: v.media_type.clone(),
                        comment: a.comment.clone(),
                    })
                })
                .collect(),
            author: p.author_id.clone(),
            last_editor: p.version.author_id.clone(),
            last_modified: super::http::iso(&p.version.created_at),
        })
    }
}
