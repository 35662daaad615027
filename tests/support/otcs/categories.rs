//! Category attribute validation (`roles.categories`, category forms) and the category endpoints.

use super::Shared;
use super::http::{FileLimits, Pairs, error, json_reply, read_fields};
use super::router::node_id;
use super::seed::{AttrType, SeedAttribute, SeedCategory};
use super::state::{State, now_string};
use axum::extract::Request;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// CS's reply to any bad attribute key or value.
pub fn invalid_spec() -> Response {
    error(500, "Invalid specification. Invalid attribute entry found.")
}

/// Categories applied and attribute values set by one request.
#[derive(Default)]
pub struct CategoryValues {
    pub applied: BTreeSet<i64>,
    pub values: BTreeMap<String, Value>,
}

/// Splits `{cat}_{attr}` / `{cat}_{set}_{row}_{attr}` (`^\d+_\d+(_\d+_\d+)?$`) into numbers.
fn parse_key(k: &str) -> Option<Vec<i64>> {
    let parts: Vec<&str> = k.split('_').collect();
    if !(parts.len() == 2 || parts.len() == 4) {
        return None;
    }
    parts
        .iter()
        .map(|p| if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) { p.parse().ok() } else { None })
        .collect()
}

fn is_iso_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
        || chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Checks one scalar against its attribute; returns the stored form (Integer as a number).
fn scalar(a: &SeedAttribute, v: &Value) -> Option<Value> {
    match (a.type_name, v) {
        (_, Value::Null) => Some(Value::Null),
        (_, Value::String(s)) if s.is_empty() => Some(Value::Null),
        (AttrType::String, Value::String(s)) => {
            if a.max_length.is_some_and(|m| s.chars().count() > m as usize) {
                return None;
            }
            if a.valid_values.as_ref().is_some_and(|vv| !vv.contains(s)) {
                return None;
            }
            Some(v.clone())
        }
        (AttrType::Date, Value::String(s)) if is_iso_date(s) => Some(v.clone()),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() => Some(v.clone()),
        (AttrType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(|n| json!(n)),
        _ => None,
    }
}

fn value_for(a: &SeedAttribute, v: &Value) -> Option<Value> {
    match v {
        Value::Array(items) if a.multi_value => {
            let vals: Option<Vec<Value>> = items.iter().map(|x| scalar(a, x)).collect();
            Some(Value::Array(vals?))
        }
        Value::Array(_) => None,
        _ if a.multi_value => Some(match scalar(a, v)? {
            Value::Null => json!([]),
            x => json!([x]),
        }),
        _ => scalar(a, v),
    }
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.iter().all(Value::is_null),
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

impl CategoryValues {
    /// Adds one `key = value`; `{cat}_1 = {}` applies the category with defaults. `only` restricts the
    /// category (for the per-category endpoints).
    pub fn add(&mut self, st: &State, key: &str, v: &Value, only: Option<i64>) -> Result<(), Response> {
        let parts = parse_key(key).ok_or_else(invalid_spec)?;
        let cat = st.category(parts[0]).ok_or_else(invalid_spec)?;
        if only.is_some_and(|o| o != cat.id) {
            return Err(invalid_spec());
        }
        // Decision: the seed format has no attribute sets, so a 4-part key always names an unknown
        // attribute → "Invalid specification".
        if parts.len() == 4 {
            return Err(invalid_spec());
        }
        if parts[1] == 1 {
            if !v.as_object().is_some_and(Map::is_empty) {
                return Err(invalid_spec());
            }
            self.applied.insert(cat.id);
            return Ok(());
        }
        let a = cat.attributes.iter().find(|a| a.id == parts[1]).ok_or_else(invalid_spec)?;
        let stored = value_for(a, v).ok_or_else(invalid_spec)?;
        self.applied.insert(cat.id);
        self.values.insert(key.to_string(), stored);
        Ok(())
    }

    /// Reads `roles.categories`: flat `{"9830_2": ..}` or (decision: also accepted, as the Smart UI
    /// and pyxecm send it) nested per category `{"9830": {"9830_2": ..}}`.
    pub fn from_roles(st: &State, v: &Value) -> Result<CategoryValues, Response> {
        let obj = v.as_object().ok_or_else(invalid_spec)?;
        let mut cv = CategoryValues::default();
        for (k, val) in obj {
            if k.bytes().all(|b| b.is_ascii_digit())
                && let Some(inner) = val.as_object()
            {
                let cat: i64 = k.parse().map_err(|_| invalid_spec())?;
                cv.applied.insert(st.category(cat).ok_or_else(invalid_spec)?.id);
                for (k2, v2) in inner {
                    cv.add(st, k2, v2, Some(cat))?;
                }
            } else {
                cv.add(st, k, val, None)?;
            }
        }
        Ok(cv)
    }

    /// Every required attribute of every applied category has a value in `merged`.
    pub fn check_required(st: &State, applied: &BTreeSet<i64>, merged: &BTreeMap<String, Value>) -> bool {
        applied.iter().filter_map(|c| st.category(*c)).all(|c| {
            c.attributes.iter().filter(|a| a.required).all(|a| !is_empty(merged.get(&format!("{}_{}", c.id, a.id))))
        })
    }
}

/// A form's attribute fields as JSON (a repeated key is a multi-value array); `body` JSON is merged in.
fn form_values(text: &Pairs) -> Result<Vec<(String, Value)>, Response> {
    let mut out: Vec<(String, Value)> = vec![];
    for (k, v) in &text.0 {
        if k == "body" {
            let body: Value = serde_json::from_str(v).map_err(|_| error(400, "Invalid JSON in parameter 'body'"))?;
            for (bk, bv) in body.as_object().into_iter().flatten() {
                if bk != "category_id" {
                    out.push((bk.clone(), bv.clone()));
                }
            }
            continue;
        }
        if k == "category_id" {
            continue;
        }
        match out.iter_mut().find(|(n, _)| n == k) {
            Some((_, Value::Array(a))) => a.push(json!(v)),
            Some((_, old)) => *old = json!([old.clone(), v]),
            None => out.push((k.clone(), json!(v))),
        }
    }
    Ok(out)
}

fn category_json(c: &SeedCategory, values: &BTreeMap<String, Value>) -> Value {
    let mut data = Map::new();
    let mut meta = Map::new();
    meta.insert(c.id.to_string(), json!({"name": c.name, "persona": "category", "type_name": "Category"}));
    for a in &c.attributes {
        let k = format!("{}_{}", c.id, a.id);
        let empty = if a.multi_value { json!([]) } else { Value::Null };
        data.insert(k.clone(), values.get(&k).cloned().unwrap_or(empty));
        let mut m = json!({"name": a.name, "type_name": a.type_name.name(), "persona": "categoryattribute",
            "required": a.required, "multi_value": a.multi_value, "max_length": a.max_length});
        if let (Some(vv), Some(o)) = (&a.valid_values, m.as_object_mut()) {
            o.insert("valid_values".into(), json!(vv));
        }
        meta.insert(k, m);
    }
    json!({"data": {"categories": data}, "metadata": {"categories": meta}})
}

/// `GET /v2/nodes/{id}/categories`: one result per applied category, with metadata.
pub fn list(sh: &Shared, id: &str) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = sh.st();
    let Some(n) = st.nodes.get(&id) else { return error(400, format!("Could not get a node for {id}")) };
    let results: Vec<Value> =
        n.applied.iter().filter_map(|c| st.category(*c)).map(|c| category_json(c, &n.categories)).collect();
    json_reply(200, json!({"links": {}, "results": results}))
}

async fn form(sh: &Shared, req: Request) -> Result<Pairs, Response> {
    let lim = FileLimits { dir: &sh.dir, file_fields: &[], max_size: 0, seq: &sh.seq };
    let f = read_fields(req, lim).await?;
    Ok(f.text)
}

/// Applies values to a node: validates, merges, checks required attributes, stores.
fn apply(st: &mut State, id: i64, cat: i64, pairs: &[(String, Value)]) -> Result<(), Response> {
    let mut cv = CategoryValues::default();
    cv.applied.insert(cat);
    for (k, v) in pairs {
        cv.add(st, k, v, Some(cat))?;
    }
    let n = st.nodes.get(&id).ok_or_else(|| error(400, format!("Could not get a node for {id}")))?;
    let mut merged = n.categories.clone();
    merged.extend(cv.values);
    let mut applied = n.applied.clone();
    applied.insert(cat);
    if !CategoryValues::check_required(st, &applied, &merged) {
        return Err(invalid_spec());
    }
    if let Some(n) = st.nodes.get_mut(&id) {
        n.categories = merged;
        n.applied = applied;
        n.modify_date = now_string();
    }
    Ok(())
}

/// `POST /v2/nodes/{id}/categories`: form `category_id` + `{cat}_{attr}` values.
pub async fn assign(sh: &Shared, id: &str, req: Request) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let text = match form(sh, req).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let cat_id = text.get("category_id").map(str::to_string).or_else(|| {
        let b: Value = serde_json::from_str(text.get("body")?).ok()?;
        b.get("category_id").map(|v| v.to_string().trim_matches('"').to_string())
    });
    let Some(cat) = cat_id.and_then(|c| c.parse::<i64>().ok()) else {
        return error(400, "Missing required parameter 'category_id'");
    };
    let pairs = match form_values(&text) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut st = sh.st();
    let Some(n) = st.nodes.get(&id) else { return error(400, format!("Could not get a node for {id}")) };
    // Decision: an unknown category id is a 400 (CS: not accessible).
    let Some(c) = st.category(cat) else { return error(400, format!("Could not get a node for {cat}")) };
    if n.applied.contains(&cat) {
        return error(400, format!("The attribute group '{}' already exists", c.name));
    }
    match apply(&mut st, id, cat, &pairs) {
        Ok(()) => json_reply(200, json!({"links": {}, "results": {}})),
        Err(r) => r,
    }
}

/// `PUT /v2/nodes/{id}/categories/{cat}`: form `{cat}_{attr}=value` (repeat a key for multi-value).
pub async fn update(sh: &Shared, id: &str, cat: &str, req: Request) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let text = match form(sh, req).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let pairs = match form_values(&text) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(cat) = cat.parse::<i64>() else { return invalid_spec() };
    let mut st = sh.st();
    let Some(n) = st.nodes.get(&id) else { return error(400, format!("Could not get a node for {id}")) };
    // Decision (UNVERIFIED): updating a category that is not applied is a 400.
    if !n.applied.contains(&cat) {
        return error(400, format!("Category {cat} is not applied to node {id}."));
    }
    match apply(&mut st, id, cat, &pairs) {
        Ok(()) => json_reply(200, json!({"links": {}, "results": {}})),
        Err(r) => r,
    }
}
