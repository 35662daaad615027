//! The emulator's repository: nodes (with versions and category values), tickets and upload sessions.

use super::seed::{CLASSIFICATION_VOLUME_ID, ENTERPRISE_ID, Seed, SeedCategory, SeedFolder, SeedWorkspaceType};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// Subtypes Content Server knows (PYX `ITEM_TYPE_*`); anything else is "not registered".
pub const SUBTYPES: &[(i64, &str)] = &[
    (0, "Folder"),
    (1, "Shortcut"),
    (128, "Workflow Map"),
    (131, "Category"),
    (132, "Category Folder"),
    (133, "Categories Volume"),
    (136, "Compound Document"),
    (140, "URL"),
    (141, "Enterprise Workspace"),
    (142, "Personal Workspace"),
    (144, "Document"),
    (196, "Classification Tree"),
    (198, "Classification Volume"),
    (199, "Classification"),
    (751, "Email Folder"),
    (833, "Hold"),
    (848, "Business Workspace"),
    (854, "Related Workspace"),
    (862, "Business Workspaces Volume"),
    (899, "Virtual Folder"),
];

/// Subtype of a folder.
pub const FOLDER: i64 = 0;
/// Subtype of a document.
pub const DOCUMENT: i64 = 144;
/// Subtype of a business workspace.
pub const WORKSPACE: i64 = 848;
/// Subtype of a Records Management classification.
pub const CLASSIFICATION: i64 = 199;

/// The registered name of a subtype, if any.
pub fn type_name(t: i64) -> Option<&'static str> {
    SUBTYPES.iter().find(|(x, _)| *x == t).map(|(_, n)| *n)
}

/// Whether nodes of a subtype hold children (`where_type=-1`).
pub fn is_container(t: i64) -> bool {
    matches!(t, 0 | 132 | 133 | 136 | 141 | 142 | 196 | 198 | 751 | 848 | 862 | 899)
}

/// The current time as Content Server prints it (UTC, second precision).
pub fn now_string() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One stored version of a document; the bytes live in `path` (under the emulator's temp dir).
#[derive(Clone, Debug)]
pub struct Version {
    pub number: u32,
    pub size: u64,
    pub sha256: String,
    pub mime: String,
    pub file_name: String,
    pub description: String,
    pub create_date: String,
    pub path: PathBuf,
    /// Came from a Large File Upload session.
    pub via_upload_key: bool,
}

/// Business-object link of a workspace (`business_properties` in the API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessProperties {
    pub bo_type: String,
    pub bo_id: String,
    pub ext_system_id: String,
    pub workspace_type_id: i64,
    pub workspace_type_name: String,
    pub template_id: i64,
}

/// A node of the repository.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: i64,
    pub parent_id: i64,
    pub name: String,
    pub type_: i64,
    pub description: String,
    pub create_date: String,
    pub modify_date: String,
    pub external_create_date: Option<String>,
    pub external_modify_date: Option<String>,
    pub external_source: Option<String>,
    pub versions: Vec<Version>,
    /// `{cat}_{attr}` → value, for every applied category.
    pub categories: BTreeMap<String, Value>,
    pub applied: BTreeSet<i64>,
    pub business: Option<BusinessProperties>,
    /// Records Management classification node ids (`roles.classifications.id`).
    pub classifications: Vec<i64>,
}

impl Node {
    /// A fresh node dated now.
    pub fn new(id: i64, parent_id: i64, name: &str, type_: i64) -> Node {
        let now = now_string();
        Node {
            id,
            parent_id,
            name: name.to_string(),
            type_,
            description: String::new(),
            create_date: now.clone(),
            modify_date: now,
            external_create_date: None,
            external_modify_date: None,
            external_source: None,
            versions: vec![],
            categories: BTreeMap::new(),
            applied: BTreeSet::new(),
            business: None,
            classifications: vec![],
        }
    }
}

/// An issued ticket: its user and when it stops working.
pub struct Ticket {
    pub user: String,
    pub expires: Instant,
}

/// A Large File Upload session.
pub struct LfuSession {
    pub file_name: String,
    pub file_size: u64,
    pub mime: String,
    pub num_parts: u64,
    pub part_size: u64,
    pub parts: BTreeMap<u64, PathBuf>,
    pub expires: Instant,
    /// Set by the completing call: the assembled file with its size and hash.
    pub completed: Option<(PathBuf, u64, String)>,
}

/// All mutable state, behind one mutex (never held across an await).
pub struct State {
    pub nodes: BTreeMap<i64, Node>,
    pub children: HashMap<i64, BTreeSet<i64>>,
    /// `(parent, lowercase name)` → id: Content Server names are unique per folder, ignoring case.
    pub names: HashMap<(i64, String), i64>,
    pub next_id: i64,
    pub tickets: HashMap<String, Ticket>,
    pub uploads: HashMap<String, LfuSession>,
    pub categories: Vec<SeedCategory>,
    pub workspace_types: Vec<SeedWorkspaceType>,
}

impl State {
    /// Builds the repository from a checked seed.
    pub fn from_seed(seed: &Seed) -> State {
        let mut st = State {
            nodes: BTreeMap::new(),
            children: HashMap::new(),
            names: HashMap::new(),
            next_id: 100_000,
            tickets: HashMap::new(),
            uploads: HashMap::new(),
            categories: seed.categories.clone(),
            workspace_types: seed.workspace_types.clone(),
        };
        st.insert(Node::new(ENTERPRISE_ID, -1, "Enterprise", 141));
        fn walk(st: &mut State, parent: i64, f: &[SeedFolder]) {
            for x in f {
                let mut n = Node::new(x.id, parent, &x.name, FOLDER);
                n.description = x.description.clone();
                st.insert(n);
                walk(st, x.id, &x.children);
            }
        }
        walk(&mut st, ENTERPRISE_ID, &seed.folders);
        st.insert(Node::new(CLASSIFICATION_VOLUME_ID, -1, "Classifications", 198));
        for c in &seed.classifications {
            st.insert(Node::new(c.id, CLASSIFICATION_VOLUME_ID, &c.name, CLASSIFICATION));
        }
        for w in &seed.workspaces {
            let Some(t) = seed.workspace_types.iter().find(|t| t.wksp_type_id == w.wksp_type_id) else { continue };
            let mut n = Node::new(w.id, w.parent_id.unwrap_or(t.location_id), &w.name, WORKSPACE);
            n.business = Some(BusinessProperties {
                bo_type: w.bo_type.clone(),
                bo_id: w.bo_id.clone(),
                ext_system_id: w.ext_system_id.clone(),
                workspace_type_id: t.wksp_type_id,
                workspace_type_name: t.name.clone(),
                template_id: w.template_id.or(t.templates.first().map(|x| x.id)).unwrap_or(0),
            });
            st.insert(n);
            walk(&mut st, w.id, &w.subfolders);
        }
        let max = st.nodes.keys().max().copied().unwrap_or(0);
        st.next_id = st.next_id.max(max + 1);
        st
    }

    /// A new node id.
    pub fn alloc_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds a node and indexes it under its parent.
    pub fn insert(&mut self, n: Node) {
        self.children.entry(n.parent_id).or_default().insert(n.id);
        self.names.insert((n.parent_id, n.name.to_lowercase()), n.id);
        self.nodes.insert(n.id, n);
    }

    /// The child of `parent` called `name` (case-insensitive).
    pub fn child_named(&self, parent: i64, name: &str) -> Option<i64> {
        self.names.get(&(parent, name.to_lowercase())).copied()
    }

    /// The children of a node, unordered.
    pub fn children_of(&self, id: i64) -> Vec<&Node> {
        self.children.get(&id).map(|c| c.iter().filter_map(|i| self.nodes.get(i)).collect()).unwrap_or_default()
    }

    /// Removes a node and its subtree; returns the content files to delete.
    pub fn remove_tree(&mut self, id: i64) -> Vec<PathBuf> {
        let mut files = vec![];
        let kids: Vec<i64> = self.children.remove(&id).map(|c| c.into_iter().collect()).unwrap_or_default();
        for k in kids {
            files.extend(self.remove_tree(k));
        }
        if let Some(n) = self.nodes.remove(&id) {
            if let Some(c) = self.children.get_mut(&n.parent_id) {
                c.remove(&id);
            }
            self.names.remove(&(n.parent_id, n.name.to_lowercase()));
            files.extend(n.versions.into_iter().map(|v| v.path));
        }
        files
    }

    /// The category definition with this id.
    pub fn category(&self, id: i64) -> Option<&SeedCategory> {
        self.categories.iter().find(|c| c.id == id)
    }

    /// The `properties` object of a node as `GET /v2/nodes/{id}` returns it.
    pub fn properties(&self, n: &Node) -> Map<String, Value> {
        let container = is_container(n.type_);
        let child_count = self.children.get(&n.id).map(|c| c.len()).unwrap_or(0) as u64;
        let latest = n.versions.last();
        let size = if container { child_count } else { latest.map(|v| v.size).unwrap_or(0) };
        let mut p = Map::new();
        p.insert("id".into(), json!(n.id));
        p.insert("parent_id".into(), json!(n.parent_id));
        p.insert("name".into(), json!(n.name));
        p.insert("type".into(), json!(n.type_));
        p.insert("type_name".into(), json!(type_name(n.type_).unwrap_or("Unknown")));
        p.insert("description".into(), json!(n.description));
        p.insert("container".into(), json!(container));
        p.insert("container_size".into(), json!(if container { child_count } else { 0 }));
        p.insert("size".into(), json!(size));
        p.insert("mime_type".into(), latest.map(|v| json!(v.mime)).unwrap_or(Value::Null));
        p.insert("create_date".into(), json!(n.create_date));
        p.insert("modify_date".into(), json!(n.modify_date));
        p.insert("owner_user_id".into(), json!(1000));
        p.insert("volume_id".into(), json!(-ENTERPRISE_ID));
        p.insert("hidden".into(), json!(false));
        p.insert("reserved".into(), json!(false));
        p.insert("external_create_date".into(), json!(n.external_create_date));
        p.insert("external_modify_date".into(), json!(n.external_modify_date));
        p.insert("external_source".into(), json!(n.external_source));
        if let Some(b) = &n.business {
            p.insert("wnf_wksp_type_id".into(), json!(b.workspace_type_id));
            p.insert("wnf_wksp_template_id".into(), json!(b.template_id));
        }
        p
    }

    /// The inspection view of a node.
    pub fn view(&self, id: i64) -> Option<super::NodeView> {
        let n = self.nodes.get(&id)?;
        let size = if is_container(n.type_) {
            self.children.get(&id).map(|c| c.len()).unwrap_or(0) as u64
        } else {
            n.versions.last().map(|v| v.size).unwrap_or(0)
        };
        Some(super::NodeView {
            id: n.id,
            parent_id: n.parent_id,
            name: n.name.clone(),
            type_: n.type_,
            description: n.description.clone(),
            size,
            versions: n
                .versions
                .iter()
                .map(|v| super::VersionView {
                    number: v.number,
                    size: v.size,
                    sha256: v.sha256.clone(),
                    mime: v.mime.clone(),
                    file_name: v.file_name.clone(),
                    description: v.description.clone(),
                    via_upload_key: v.via_upload_key,
                })
                .collect(),
            categories: n.categories.clone(),
            business_properties: n.business.clone(),
            classifications: n.classifications.clone(),
            modify_date: n.modify_date.clone(),
            external_create_date: n.external_create_date.clone(),
            external_modify_date: n.external_modify_date.clone(),
            external_source: n.external_source.clone(),
        })
    }
}
