//! `/workflow/v1/process-instances`: start, read one (with its variables), list with filters,
//! and read variables.
//!
//! Decision (UNVERIFIED: TARGETS.md §3 gives the list's filters, not its reply): the list is HAL
//! like `/tasks`: `{"_embedded": {"process-instances": [..]}, "page": {"size","totalElements",
//! "totalPages","number"}}`. Ended instances stay readable (GET and list) with `ended`/`completed`
//! set, as the instance fields of OTC imply (Flowable would move them to history).

use super::Shared;
use super::http::{Query, details, exception, reply};
use super::state::{Instance, now};
use axum::response::Response;
use serde_json::{Value, json};

const MAX_COUNT: usize = 1000;

fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(exception("The request body must be a JSON object")),
        Err(e) => Err(exception(&format!("Could not read the JSON request body: {e}"))),
    }
}

/// `POST /process-instances`.
pub fn start(sh: &Shared, body: &[u8]) -> Response {
    let b = match body_object(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let key = b.get("processDefinitionKey").and_then(Value::as_str);
    let by_id = b.get("processDefinitionId").and_then(Value::as_str);
    if b.contains_key("message") && key.is_none() && by_id.is_none() {
        return exception("No process definition starts with the message given");
    }
    let key = match (key, by_id) {
        (Some(k), _) => k.to_string(),
        (None, Some(id)) => id.split(':').next().unwrap_or_default().to_string(),
        (None, None) => {
            return exception("One of processDefinitionKey, processDefinitionId or message is required");
        }
    };
    let Some(def) = sh.seed.definitions.iter().find(|d| d.key == key) else {
        return exception(&format!("No process definition found with key '{key}'"));
    };
    let business_key = match b.get("businessKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return exception("businessKey must be a string"),
    };
    let mut variables = match super::vars::parse("variables", b.get("variables")) {
        Ok(v) => v,
        Err(m) => return exception(&m),
    };
    if let Err(m) = super::vars::parse("transientVariables", b.get("transientVariables")) {
        return exception(&m);
    }
    let return_vars = b.get("returnVariables").and_then(Value::as_bool).unwrap_or(false);
    let name = b.get("name").and_then(Value::as_str).unwrap_or(&def.name).to_string();
    let mut st = sh.st();
    let id = st.next_id(1);
    let inst = Instance {
        id: id.clone(),
        definition_key: def.key.clone(),
        definition_name: def.name.clone(),
        name,
        business_key: business_key.clone(),
        variables: variables.drain(..).map(|v| (v.name.clone(), v)).collect(),
        next_task: 0,
        ended: false,
        completed: false,
        start_time: now(),
        end_time: None,
    };
    st.instances.insert(id.clone(), inst);
    *st.started.entry(business_key.unwrap_or_default()).or_default() += 1;
    st.advance(&id, &def.tasks);
    let json = st.instances.get(&id).map(|i| i.json(&sh.seed.tenant, return_vars)).unwrap_or(Value::Null);
    reply(201, json)
}

/// `GET /process-instances/{id}`.
pub fn get(sh: &Shared, id: &str, q: &Query) -> Response {
    let with = match q.flag("includeProcessVariables") {
        Ok(w) => w,
        Err(r) => return r,
    };
    match sh.st().instances.get(id) {
        Some(i) => reply(200, i.json(&sh.seed.tenant, with)),
        None => details(404, &format!("Could not find a process instance with id '{id}'")),
    }
}

/// `GET /process-instances?processDefinitionKey=&businessKey=&name=&offset=&count=...`.
pub fn list(sh: &Shared, q: &Query) -> Response {
    let (with, offset, count) = match (
        q.flag("includeProcessVariables"),
        q.number("offset", 0, usize::MAX),
        q.number("count", 10, MAX_COUNT),
    ) {
        (Ok(w), Ok(o), Ok(c)) => (w, o, c),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let st = sh.st();
    let hits: Vec<&Instance> = st
        .instances
        .values()
        .filter(|i| q.get("processDefinitionKey").is_none_or(|k| i.definition_key == k))
        .filter(|i| q.get("businessKey").is_none_or(|k| i.business_key.as_deref() == Some(k)))
        .filter(|i| q.get("name").is_none_or(|n| i.name == n))
        .filter(|i| q.get("nameLike").is_none_or(|n| i.name.contains(n.trim_matches('%'))))
        .collect();
    let total = hits.len();
    let page: Vec<Value> = hits.iter().skip(offset).take(count).map(|i| i.json(&sh.seed.tenant, with)).collect();
    reply(200, json!({ "_embedded": { "process-instances": page }, "page": page_json(total, offset, count) }))
}

/// The HAL `page` object.
pub fn page_json(total: usize, offset: usize, count: usize) -> Value {
    let pages = if count == 0 { 0 } else { total.div_ceil(count) };
    json!({ "size": count, "totalElements": total, "totalPages": pages, "number": offset.checked_div(count).unwrap_or(0) })
}

/// `GET /process-instances/{id}/variables?scope=&type=&offset=&count=`.
pub fn variables(sh: &Shared, id: &str, q: &Query) -> Response {
    let (offset, count) = match (q.number("offset", 0, usize::MAX), q.number("count", 10, MAX_COUNT)) {
        (Ok(o), Ok(c)) => (o, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let st = sh.st();
    let Some(i) = st.instances.get(id) else {
        return details(404, &format!("Could not find a process instance with id '{id}'"));
    };
    let content: Vec<Value> = i
        .variables
        .values()
        .filter(|v| q.get("scope").is_none_or(|s| v.scope == s))
        .filter(|v| q.get("type").is_none_or(|t| v.kind == t))
        .skip(offset)
        .take(count)
        .map(super::state::Variable::json)
        .collect();
    reply(200, json!({ "content": content, "links": {} }))
}
