//! What wharf sends and reads: variables (always the list form `[{name, value, type?}]`, never
//! a map, which the service refuses), process instances and tasks, parsed leniently from the
//! replies (unknown fields ignored; a missing `id` is a protocol error).

use super::error::Error;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One process variable to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Value,
    /// `string`, `integer`, `boolean`, …; `None` lets the service infer it.
    pub kind: Option<String>,
}

impl Variable {
    /// A string variable.
    pub fn string(name: &str, value: &str) -> Self {
        Self { name: name.to_string(), value: Value::String(value.to_string()), kind: Some("string".into()) }
    }

    /// String variables from metadata (what a rule passes), in key order.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Vec<Self> {
        meta.iter().map(|(k, v)| Self::string(k, v)).collect()
    }

    /// The wire form.
    pub fn json(&self) -> Value {
        let mut v = json!({ "name": self.name, "value": self.value });
        if let Some(k) = &self.kind {
            v["type"] = Value::String(k.clone());
        }
        v
    }
}

/// A process instance as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Id.
    pub id: String,
    /// Business key it was started with.
    pub business_key: Option<String>,
    /// Definition key, when the service reports it.
    pub definition_key: Option<String>,
    /// The instance has ended.
    pub ended: bool,
    /// It ended by running to completion.
    pub completed: bool,
    /// It is suspended.
    pub suspended: bool,
    /// Process variables by name (present when they were asked for).
    pub variables: BTreeMap<String, Value>,
}

impl Instance {
    /// Parses one instance object.
    ///
    /// # Errors
    /// It has no `id`.
    pub fn parse(v: &Value) -> Result<Self, Error> {
        let id = match &v["id"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(Error::Protocol("a process instance without an id".into())),
        };
        let variables = v["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| Some((x["name"].as_str()?.to_string(), x["value"].clone())))
            .collect();
        Ok(Self {
            id,
            business_key: v["businessKey"].as_str().map(str::to_string),
            definition_key: v["processDefinitionKey"].as_str().map(str::to_string),
            ended: v["ended"].as_bool().unwrap_or(false),
            completed: v["completed"].as_bool().unwrap_or(false),
            suspended: v["suspended"].as_bool().unwrap_or(false),
            variables,
        })
    }

    /// A variable as text (strings as they are, other JSON values printed).
    pub fn var(&self, name: &str) -> Option<String> {
        match self.variables.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The `outcome` variable a completed task leaves (`approved`, `rejected`, …).
    pub fn outcome(&self) -> Option<String> {
        self.var("outcome")
    }
}

/// An open user task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Id.
    pub id: String,
    /// Task name (`review`).
    pub name: String,
    /// Assignee, once claimed.
    pub assignee: Option<String>,
    /// Its process instance.
    pub instance_id: String,
}

impl Task {
    /// Parses one task object.
    ///
    /// # Errors
    /// It has no `id`.
    pub fn parse(v: &Value) -> Result<Self, Error> {
        let id =
            v["id"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| Error::Protocol("a task without an id".into()))?;
        Ok(Self {
            id: id.to_string(),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            assignee: v["assignee"].as_str().map(str::to_string),
            instance_id: v["processInstanceId"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// What [`super::WorkflowClient::start`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The instance for this business key.
    pub instance: Instance,
    /// It existed already (started earlier, e.g. before a crash): nothing new was started.
    pub reused: bool,
}

/// The items of a list reply: HAL `_embedded.<name>` (the first array there), or `content`,
/// or a bare array; plus `page.totalElements` when given.
pub fn list_items(v: &Value) -> (Vec<Value>, Option<u64>) {
    let items = v["_embedded"]
        .as_object()
        .and_then(|m| m.values().find_map(Value::as_array))
        .or_else(|| v["content"].as_array())
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default();
    (items, v["page"]["totalElements"].as_u64())
}
