//! Records Management: the classifications a document is created with
//! (`roles.classifications = {"create_id": [], "id": [<classification node ids>]}` in the v2
//! create `body`) and `GET /api/v1/nodes/{id}/classifications`.
//! Decisions (UNVERIFIED): the object may hold only `id` (required) and `create_id`, each an array
//! of integers; anything else is 400 "Invalid value for parameter 'classifications'". An id that
//! is not a Classification node (subtype 199) is 400 "Classification {id} does not exist or is not
//! a Classification (subtype 199).". `create_id` is checked the same way and otherwise ignored.
//! The listing replies `{"data": [{"id", "name", "type": 199}]}`.

use super::Shared;
use super::http::{error, json_reply};
use super::router::node_id;
use super::state::{CLASSIFICATION, State};
use axum::response::Response;
use serde_json::{Value, json};

fn invalid() -> Response {
    error(400, "Invalid value for parameter 'classifications'")
}

/// Integers of an array of JSON integers (no strings, no fractions).
fn ids(v: &Value) -> Result<Vec<i64>, Response> {
    v.as_array().ok_or_else(invalid)?.iter().map(|x| x.as_i64().ok_or_else(invalid)).collect()
}

/// Validates `roles.classifications` and returns the classification ids to record.
pub fn classifications_from_roles(st: &State, v: &Value) -> Result<Vec<i64>, Response> {
    let obj = v.as_object().ok_or_else(invalid)?;
    if obj.keys().any(|k| k != "id" && k != "create_id") {
        return Err(invalid());
    }
    let classes = ids(obj.get("id").ok_or_else(invalid)?)?;
    let create = match obj.get("create_id") {
        Some(c) => ids(c)?,
        None => vec![],
    };
    for id in classes.iter().chain(&create) {
        if st.nodes.get(id).is_none_or(|n| n.type_ != CLASSIFICATION) {
            return Err(error(
                400,
                format!("Classification {id} does not exist or is not a Classification (subtype 199)."),
            ));
        }
    }
    let mut out: Vec<i64> = vec![];
    for c in classes {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// `GET /v1/nodes/{id}/classifications`.
pub fn list(sh: &Shared, id: &str) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = sh.st();
    let Some(n) = st.nodes.get(&id) else { return error(400, format!("Could not get a node for {id}")) };
    let data: Vec<Value> = n
        .classifications
        .iter()
        .filter_map(|c| st.nodes.get(c))
        .map(|c| json!({"id": c.id, "name": c.name, "type": c.type_}))
        .collect();
    json_reply(200, json!({"data": data}))
}
