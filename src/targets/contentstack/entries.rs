//! Entries of the configured content type: looked up by the unique field
//! (`GET /v3/content_types/{ct}/entries?query={"<field>":"<value>"}`), created
//! (`POST …/entries?locale=<master>` with `{"entry": {…}}`) or updated in place
//! (`PUT …/entries/{uid}?locale=<master>`). The master locale is the first configured locale;
//! the others are reached by publishing (Contentstack falls back to the master's content for a
//! locale without its own localised version).
//!
//! The lookup asks for `limit=2` with `include_count=true`: one hit is the entry, more are
//! duplicates made by hand and refused (so the unverified maximum `limit` of 100 never matters).

use super::client::{ApiError, Client};
use reqwest::Method;
use serde_json::{Map, Value, json};

/// What a lookup by the unique field found.
#[derive(Debug)]
pub enum Found {
    /// No entry has the value.
    None,
    /// Exactly one: the earlier delivery.
    One(Value),
    /// More than one (someone created duplicates by hand): refused, nothing is guessed.
    Many(u64),
}

fn path(ct: &str) -> String {
    format!("/v3/content_types/{ct}/entries")
}

/// The entry whose `field` equals `value`.
///
/// # Errors
/// The classified failure.
pub async fn find(client: &Client, ct: &str, locale: &str, field: &str, value: &str) -> Result<Found, ApiError> {
    let q = [
        ("query", json!({ field: value }).to_string()),
        ("locale", locale.to_string()),
        ("limit", "2".into()),
        ("include_count", "true".into()),
    ];
    let v = client.get_json(&path(ct), &q).await?;
    let list = v["entries"].as_array().cloned().unwrap_or_default();
    let count = v["count"].as_u64().unwrap_or(list.len() as u64);
    Ok(match (count, list.into_iter().next()) {
        (0, _) | (_, None) => Found::None,
        (1, Some(e)) => Found::One(e),
        (n, Some(_)) => Found::Many(n),
    })
}

fn entry_of(v: Value, what: &str) -> Result<Value, ApiError> {
    if v["entry"]["uid"].as_str().is_none() {
        return Err(ApiError::Transient(format!("{what}: the reply names no entry uid")));
    }
    Ok(v["entry"].clone())
}

/// Creates an entry; the entry as returned.
///
/// # Errors
/// The classified failure.
pub async fn create(client: &Client, ct: &str, locale: &str, fields: &Map<String, Value>) -> Result<Value, ApiError> {
    let q = [("locale", locale.to_string())];
    let v = client.send_json(Method::POST, &path(ct), &q, &json!({ "entry": fields })).await?;
    entry_of(v, "entry create")
}

/// Updates entry `uid` in place with `fields`; the entry as returned (version + 1).
///
/// # Errors
/// The classified failure.
pub async fn update(
    client: &Client,
    ct: &str,
    locale: &str,
    uid: &str,
    fields: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let q = [("locale", locale.to_string())];
    let p = format!("{}/{uid}", path(ct));
    let v = client.send_json(Method::PUT, &p, &q, &json!({ "entry": fields })).await?;
    entry_of(v, "entry update")
}
