//! The emulator's state: assets (with their versions' bytes in memory: test files are small),
//! issued tokens, upload settings (policies) and uploads being processed.

use std::collections::{BTreeMap, HashMap};

/// The schemes Canto knows.
pub const SCHEMES: [&str; 6] = ["image", "video", "audio", "document", "presentation", "other"];

/// One asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Id.
    pub id: String,
    /// Scheme.
    pub scheme: String,
    /// File name.
    pub name: String,
    /// Current content.
    pub bytes: Vec<u8>,
    /// Versions so far (1 = the first upload).
    pub version: u32,
    /// `Approved`, `Pending`, `Restricted`.
    pub approval: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: String,
    /// Custom fields by id.
    pub custom: BTreeMap<String, String>,
    /// `Date modified`, `yyyyMMddHHmmssSSS`.
    pub modified: String,
}

/// An issued access token.
pub struct Token {
    /// The generation it was issued under (`expire_tokens` bumps the current one).
    pub generation: u64,
    /// Expiry.
    pub until: std::time::Instant,
}

/// An issued upload setting.
pub struct Setting {
    /// The key prefix (`<uuid>/<user>/`).
    pub prefix: String,
    /// When the policy expires.
    pub expires: chrono::DateTime<chrono::Utc>,
}

/// One upload accepted by the storage, being processed.
#[derive(Debug, Clone)]
pub struct Upload {
    /// File name.
    pub name: String,
    /// Scheme asked for (may be empty: guessed from the name).
    pub scheme: String,
    /// Asset to add a version to, if any.
    pub version_of: Option<String>,
    /// Tags given at upload (`x-amz-meta-tag`, comma-separated).
    pub tags: Vec<String>,
    /// Content.
    pub bytes: Vec<u8>,
    /// `yyyyMMddHHmmssSSS`.
    pub time: String,
    /// `Initial`, `Done`, `Error`.
    pub status: String,
    /// Status polls left before processing ends.
    pub polls_left: u32,
    /// The resulting asset id once `Done`.
    pub id: Option<String>,
}

/// Everything the handlers share behind one lock.
#[derive(Default)]
pub struct State {
    /// Assets by id.
    pub assets: BTreeMap<String, Asset>,
    /// Access tokens.
    pub tokens: HashMap<String, Token>,
    /// Refresh tokens.
    pub refresh_tokens: HashMap<String, ()>,
    /// Upload settings by policy.
    pub settings: HashMap<String, Setting>,
    /// Uploads, oldest first.
    pub uploads: Vec<Upload>,
    /// Counter for ids and tokens.
    pub counter: u64,
    /// Token generation (bumped by `expire_tokens`).
    pub generation: u64,
    /// The last `Date modified` handed out (kept strictly increasing).
    pub last_modified: String,
}

/// Now as `yyyyMMddHHmmssSSS`.
pub fn now_stamp() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S%3f").to_string()
}

/// Whether a string is a `yyyyMMddHHmmssSSS` stamp.
pub fn is_stamp(s: &str) -> bool {
    s.len() == 17 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The scheme of a file name, by extension.
pub fn scheme_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "gif" | "tif" | "tiff" | "webp" | "psd" => "image",
        "mp4" | "mov" | "avi" => "video",
        "mp3" | "wav" => "audio",
        "pdf" | "doc" | "docx" | "txt" | "xlsx" | "csv" => "document",
        "ppt" | "pptx" | "key" => "presentation",
        _ => "other",
    }
}

impl State {
    /// A fresh unique string.
    pub fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:024x}{:08x}", self.counter, rand_part(self.counter))
    }

    /// A `Date modified` for a change now, later than every earlier one.
    pub fn touch(&mut self) -> String {
        let mut s = now_stamp();
        if s <= self.last_modified {
            let n: u64 = self.last_modified.parse().unwrap_or(0);
            s = format!("{:017}", n + 1);
        }
        self.last_modified = s.clone();
        s
    }

    /// Ends processing of uploads whose polls ran out (creates assets / versions).
    pub fn process(&mut self, error: bool, stuck: bool) {
        if stuck {
            return;
        }
        let mut done = vec![];
        for (i, u) in self.uploads.iter_mut().enumerate() {
            if u.status != "Initial" {
                continue;
            }
            if u.polls_left > 0 {
                u.polls_left -= 1;
                continue;
            }
            if error {
                u.status = "Error".into();
            } else {
                done.push(i);
            }
        }
        for i in done {
            let u = self.uploads[i].clone();
            let modified = self.touch();
            let id = match u.version_of.as_ref().and_then(|id| self.assets.get_mut(id)) {
                Some(a) => {
                    a.bytes = u.bytes.clone();
                    a.version += 1;
                    a.name = u.name.clone();
                    a.modified = modified;
                    for t in &u.tags {
                        if !a.tags.contains(t) {
                            a.tags.push(t.clone());
                        }
                    }
                    a.id.clone()
                }
                None => {
                    let id = self.next("");
                    let scheme = if u.scheme.is_empty() { scheme_of(&u.name).to_string() } else { u.scheme.clone() };
                    self.assets.insert(
                        id.clone(),
                        Asset {
                            id: id.clone(),
                            scheme,
                            name: u.name.clone(),
                            bytes: u.bytes.clone(),
                            version: 1,
                            approval: "Pending".into(),
                            keywords: vec![],
                            tags: u.tags.clone(),
                            description: String::new(),
                            custom: BTreeMap::new(),
                            modified,
                        },
                    );
                    id
                }
            };
            let u = &mut self.uploads[i];
            u.status = "Done".into();
            u.id = Some(id);
        }
    }
}

fn rand_part(n: u64) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() as u32
}
