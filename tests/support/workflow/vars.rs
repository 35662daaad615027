//! Variables as the API takes them: an array of `{name, value, type?, scope?}`. A map
//! (`{"a": 1}`) or anything else is refused, as the real service does (TARGETS.md §3).

use super::state::Variable;
use serde_json::Value;

const TYPES: [&str; 8] = ["string", "integer", "long", "short", "double", "boolean", "date", "json"];

fn inferred(v: &Value) -> &'static str {
    match v {
        Value::String(_) | Value::Null => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "double",
        _ => "json",
    }
}

fn fits(kind: &str, v: &Value) -> bool {
    match kind {
        "string" | "date" => v.is_string() || v.is_null(),
        "integer" | "long" | "short" => {
            v.is_i64() || v.is_u64() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok()) || v.is_null()
        }
        "double" => v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()) || v.is_null(),
        "boolean" => v.is_boolean() || matches!(v.as_str(), Some("true" | "false")) || v.is_null(),
        _ => true,
    }
}

/// Parses the `variables` member of a request (absent = none); `Err` is the 400 message.
pub fn parse(field: &str, v: Option<&Value>) -> Result<Vec<Variable>, String> {
    let Some(v) = v else { return Ok(vec![]) };
    if v.is_null() {
        return Ok(vec![]);
    }
    let Some(items) = v.as_array() else {
        return Err(format!("'{field}' must be an array of {{\"name\", \"value\"}} objects, not a map or a scalar"));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            return Err(format!("{field}[{i}] must be an object {{\"name\", \"value\"}}"));
        };
        let name = match obj.get("name").and_then(Value::as_str) {
            Some(n) if !n.trim().is_empty() => n.to_string(),
            _ => return Err(format!("{field}[{i}]: variable name is required")),
        };
        let value = obj.get("value").cloned().unwrap_or(Value::Null);
        let kind = match obj.get("type") {
            None | Some(Value::Null) => inferred(&value).to_string(),
            Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.clone(),
            Some(t) => return Err(format!("{field}[{i}]: unsupported variable type {t}")),
        };
        if !fits(&kind, &value) {
            return Err(format!("{field}[{i}]: value {value} of variable '{name}' is not of type {kind}"));
        }
        let scope = match obj.get("scope").and_then(Value::as_str) {
            None => "global".to_string(),
            Some(s @ ("local" | "global")) => s.to_string(),
            Some(s) => return Err(format!("{field}[{i}]: unknown scope '{s}'")),
        };
        out.push(Variable { name, kind, value, scope });
    }
    Ok(out)
}
