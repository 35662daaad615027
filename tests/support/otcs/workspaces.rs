//! Business Workspaces: types, search (top-level `paging`), get one, create from a template.

use super::Shared;
use super::categories::{CategoryValues, invalid_spec};
use super::http::{FileLimits, Pairs, error, json_reply, percent_encode, read_fields};
use super::nodes::{DEFAULT_LIMIT, body_json, check_new_child, compare, int_of, paging, paging_params, sorter};
use super::router::node_id;
use super::state::{BusinessProperties, FOLDER, Node, State, WORKSPACE};
use axum::extract::Request;
use axum::response::Response;
use serde_json::{Value, json};

/// `GET /v2/businessworkspacetypes[?expand_templates=true&expand_wksp_info=true&ext_system_id=&bo_type=]`.
/// Decision (UNVERIFIED): only one of `ext_system_id`/`bo_type` → 400; no types at all → 500.
pub fn types(sh: &Shared, q: &Pairs) -> Response {
    let ext = q.get("ext_system_id").filter(|s| !s.is_empty());
    let bo = q.get("bo_type").filter(|s| !s.is_empty());
    if ext.is_some() != bo.is_some() {
        return error(400, "The parameters 'ext_system_id' and 'bo_type' must be given together.");
    }
    let st = sh.st();
    if st.workspace_types.is_empty() {
        return error(500, "No business workspace types are defined.");
    }
    let templates = q.get("expand_templates") == Some("true");
    let info = q.get("expand_wksp_info") == Some("true");
    let results: Vec<Value> = st
        .workspace_types
        .iter()
        .filter(|t| ext.is_none() || (t.ext_system_id.as_deref() == ext && t.bo_type.as_deref() == bo))
        .map(|t| {
            let mut p = json!({"wksp_type_id": t.wksp_type_id, "wksp_type_name": t.name});
            if let Some(o) = p.as_object_mut() {
                if templates {
                    let tl: Vec<Value> =
                        t.templates.iter().map(|x| json!({"id": x.id, "name": x.name, "subtype": WORKSPACE})).collect();
                    o.insert("templates".into(), json!(tl));
                }
                if info {
                    let loc = st.nodes.get(&t.location_id).map(|n| n.name.clone()).unwrap_or_default();
                    o.insert("wksp_creation".into(), json!({"location": t.location_id, "location_value": loc}));
                }
            }
            json!({"data": {"properties": p}})
        })
        .collect();
    json_reply(200, json!({"links": {}, "results": results}))
}

/// Matches a string filter: `contains_x`, `startswith_x` or equality (all ignoring case).
fn matches(filter: Option<&str>, value: &str) -> bool {
    let Some(f) = filter.filter(|f| !f.is_empty()) else { return true };
    let v = value.to_lowercase();
    if let Some(x) = f.strip_prefix("contains_") {
        v.contains(&x.to_lowercase())
    } else if let Some(x) = f.strip_prefix("startswith_") {
        v.starts_with(&x.to_lowercase())
    } else {
        v == f.to_lowercase()
    }
}

fn business_json(b: &BusinessProperties) -> Value {
    json!({"business_object_id": b.bo_id, "business_object_type": b.bo_type, "external_system_id": b.ext_system_id,
        "workspace_type_id": b.workspace_type_id, "workspace_type_name": b.workspace_type_name})
}

/// `GET /v2/businessworkspaces`: filters, `expanded_view` (not `true` = only recently accessed =
/// empty here), `page`/`limit`, reply with a top-level `paging` and `actions.next.href`.
pub fn search(sh: &Shared, q: &Pairs) -> Response {
    let (page, limit) = match paging_params(q, DEFAULT_LIMIT) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (key, desc) = match sorter(q.get("sort")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let type_id = match q.get("where_workspace_type_id").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(i) => Some(i),
            Err(_) => return error(400, "Invalid value for parameter 'where_workspace_type_id'"),
        },
    };
    let st = sh.st();
    let expanded = q.get("expanded_view") == Some("true");
    let mut hits: Vec<&Node> = st
        .nodes
        .values()
        .filter(|_| expanded)
        .filter(|n| n.type_ == WORKSPACE)
        .filter(|n| {
            let Some(b) = &n.business else { return false };
            type_id.is_none_or(|t| t == b.workspace_type_id)
                && matches(q.get("where_workspace_type_name"), &b.workspace_type_name)
                && matches(q.get("where_name"), &n.name)
                && matches(q.get("where_bo_type"), &b.bo_type)
                && matches(q.get("where_bo_id"), &b.bo_id)
                && matches(q.get("where_ext_system_id"), &b.ext_system_id)
        })
        .collect();
    hits.sort_by(|a, b| {
        let o = compare(&st, a, b, &key);
        if desc { o.reverse() } else { o }
    });
    let total = hits.len() as u64;
    let with_bp = q.all("fields").iter().any(|f| f.starts_with("business_properties"));
    let results: Vec<Value> = hits
        .iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .map(|n| {
            let mut d = json!({"properties": st.properties(n)});
            if with_bp && let (Some(o), Some(b)) = (d.as_object_mut(), &n.business) {
                o.insert("business_properties".into(), business_json(b));
            }
            json!({"data": d})
        })
        .collect();
    let mut p = paging(total, page, limit);
    let mut actions = serde_json::Map::new();
    if page < total.div_ceil(limit) {
        let mut qs: Vec<String> =
            q.0.iter()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect();
        qs.push(format!("page={}", page + 1));
        actions.insert("next".into(), json!({"href": format!("/api/v2/businessworkspaces?{}", qs.join("&"))}));
    }
    p.insert("actions".into(), Value::Object(actions));
    json_reply(200, json!({"links": {}, "paging": p, "results": results}))
}

/// `GET /v2/businessworkspaces/{id}`: `results[0].data.{properties,business_properties,categories}`.
pub fn get(sh: &Shared, id: &str) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = sh.st();
    let Some(n) = st.nodes.get(&id) else { return error(400, format!("Could not get a node for {id}")) };
    let Some(b) = &n.business else { return error(400, format!("Node {id} is not a business workspace.")) };
    let d =
        json!({"properties": st.properties(n), "business_properties": business_json(b), "categories": n.categories});
    json_reply(200, json!({"links": {}, "results": [{"data": d}]}))
}

/// `POST /v2/businessworkspaces`: form field `body` (JSON) with `template_id`, `wksp_type_id`, `name`,
/// `parent_id`, `roles.categories`, `bo_id`, `bo_type`, `ext_system_id`.
/// Decisions (UNVERIFIED): a template of another type → 400; a second workspace for the same
/// business object → 500 "The business object is already assigned to workspace {id}."; no name →
/// "{type name} {bo_id}".
pub async fn create(sh: &Shared, req: Request) -> Response {
    let lim = FileLimits { dir: &sh.dir, file_fields: &[], max_size: 0, seq: &sh.seq };
    let f = match read_fields(req, lim).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let body = match body_json(&f) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut st = sh.st();
    match create_inner(&mut st, &body) {
        Ok(id) => json_reply(200, json!({"links": {}, "results": {"direct_open": true, "id": id, "sub_folder_id": 0}})),
        Err(r) => r,
    }
}

fn create_inner(st: &mut State, body: &serde_json::Map<String, Value>) -> Result<i64, Response> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let tpl_id =
        int_of(body.get("template_id")).ok_or_else(|| error(400, "Missing required parameter 'template_id'"))?;
    if body.get("type").is_some() && int_of(body.get("type")) != Some(WORKSPACE) {
        return Err(error(400, format!("Subtype {} is not a business workspace", s("type"))));
    }
    let owner = st.workspace_types.iter().find(|t| t.templates.iter().any(|x| x.id == tpl_id)).cloned();
    let Some(wt) = owner else { return Err(error(400, format!("Could not get a node for {tpl_id}"))) };
    if let Some(want) = int_of(body.get("wksp_type_id"))
        && want != wt.wksp_type_id
    {
        return Err(error(400, format!("Template {tpl_id} does not belong to workspace type {want}.")));
    }
    let (bo_id, bo_type, ext) = (s("bo_id"), s("bo_type"), s("ext_system_id"));
    let name = Some(s("name")).filter(|n| !n.trim().is_empty()).unwrap_or_else(|| format!("{} {bo_id}", wt.name));
    let parent = int_of(body.get("parent_id")).unwrap_or(wt.location_id);
    check_new_child(st, parent, &name)?;
    if !bo_id.is_empty() {
        let dup = st.nodes.values().find(|n| {
            n.business.as_ref().is_some_and(|b| b.bo_id == bo_id && b.bo_type == bo_type && b.ext_system_id == ext)
        });
        if let Some(d) = dup {
            return Err(error(500, format!("The business object is already assigned to workspace {}.", d.id)));
        }
    }
    let cats = match body.get("roles").and_then(|r| r.get("categories")) {
        Some(c) => CategoryValues::from_roles(st, c)?,
        None => CategoryValues::default(),
    };
    if !CategoryValues::check_required(st, &cats.applied, &cats.values) {
        return Err(invalid_spec());
    }
    let id = st.alloc_id();
    let mut n = Node::new(id, parent, &name, WORKSPACE);
    n.description = s("description");
    n.categories = cats.values;
    n.applied = cats.applied;
    n.business = Some(BusinessProperties {
        bo_type,
        bo_id,
        ext_system_id: ext,
        workspace_type_id: wt.wksp_type_id,
        workspace_type_name: wt.name.clone(),
        template_id: tpl_id,
    });
    st.insert(n);
    let subs = wt.templates.iter().find(|x| x.id == tpl_id).map(|x| x.subfolders.clone()).unwrap_or_default();
    for sf in subs {
        let fid = st.alloc_id();
        st.insert(Node::new(fid, id, &sf, FOLDER));
    }
    Ok(id)
}
