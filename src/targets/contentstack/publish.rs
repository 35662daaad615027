//! Publishing an entry or an asset to every configured environment × locale:
//! `POST …/entries/{uid}/publish` with `{"entry": {"environments": [..], "locales": [<one>]},
//! "locale": <one>, "version": <n>}`, and `POST /v3/assets/{uid}/publish` with `{"asset": {..}}`.
//!
//! Decided: one call per locale (all environments in it), so a publish that fails for one locale
//! is reported naming that locale with Contentstack's own message, and the locales before it stay
//! published. Pairs the item's `publish_details` already show at its current version are not
//! published again, so a redelivery after a crash or a resubmit after a failed locale only sends
//! what is missing. (The real API may name environments by uid in `publish_details`; a name that
//! does not match there only means one more, harmless, publish call.)

use super::client::{ApiError, Client};
use reqwest::Method;
use serde_json::{Value, json};

/// Why publishing stopped.
#[derive(Debug)]
pub enum PublishError {
    /// Contentstack refused the publish to `locale` for good.
    Locale {
        /// The locale.
        locale: String,
        /// Its error.
        error: ApiError,
    },
    /// Any other failure (transient, auth).
    Api(ApiError),
}

/// The environments of `envs` not yet published at `version` in `locale` according to the
/// item's `publish_details`.
pub fn missing(item: &Value, version: u64, envs: &[String], locale: &str) -> Vec<String> {
    let details = item["publish_details"].as_array().cloned().unwrap_or_default();
    envs.iter()
        .filter(|env| {
            !details.iter().any(|d| {
                d["environment"].as_str() == Some(env.as_str())
                    && d["locale"].as_str() == Some(locale)
                    && d["version"].as_u64() == Some(version)
            })
        })
        .cloned()
        .collect()
}

/// Publishes `item` (an entry when `module` is `entry`, an asset when `asset`) at `path` to
/// every environment × locale; returns how many publish calls were made.
///
/// # Errors
/// The first locale Contentstack refused, or a transient/auth failure.
pub async fn publish(
    client: &Client,
    path: &str,
    module: &str,
    item: &Value,
    envs: &[String],
    locales: &[String],
) -> Result<usize, PublishError> {
    let version = item["_version"].as_u64().unwrap_or(1);
    let mut calls = 0;
    for locale in locales {
        let todo = missing(item, version, envs, locale);
        if todo.is_empty() {
            continue;
        }
        let mut body = json!({ module: { "environments": todo, "locales": [locale] }, "locale": locale });
        if module == "entry" {
            body["version"] = json!(version);
        }
        calls += 1;
        match client.send_json(Method::POST, &format!("{path}/publish"), &[], &body).await {
            Ok(_) => {}
            Err(error @ ApiError::Rejected { .. }) => {
                return Err(PublishError::Locale { locale: locale.clone(), error });
            }
            Err(e) => return Err(PublishError::Api(e)),
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contentstack_publish_skips_pairs_already_published_at_the_version() {
        let item = json!({"_version": 2, "publish_details": [
            {"environment": "staging", "locale": "en-us", "version": 2},
            {"environment": "production", "locale": "en-us", "version": 1},
        ]});
        let envs = vec!["staging".to_string(), "production".to_string()];
        assert_eq!(missing(&item, 2, &envs, "en-us"), ["production"]);
        assert_eq!(missing(&item, 2, &envs, "de-de"), envs);
    }
}
