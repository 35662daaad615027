//! The routes of the Content Management API the emulator serves (all under `/v3`).

use super::{Shared, assets, entries, http};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// The app: routes, the guard middleware, a body limit just above the asset limit.
pub fn app(shared: Arc<Shared>) -> Router {
    let limit = usize::try_from(shared.seed.max_asset_bytes).unwrap_or(usize::MAX).saturating_add(1 << 20);
    // The CDN: asset files by their `url`, no credentials (outside the API's guard).
    let cdn = Router::new().route("/cdn/v3/assets/{uid}/{filename}", get(assets::download)).with_state(shared.clone());
    Router::new()
        .route("/v3/content_types/{ct}/entries", get(entries::list).post(entries::create))
        .route("/v3/content_types/{ct}/entries/{uid}", get(entries::get).put(entries::update).delete(entries::delete))
        .route("/v3/content_types/{ct}/entries/{uid}/publish", post(entries::publish))
        .route("/v3/content_types/{ct}/entries/{uid}/unpublish", post(entries::unpublish))
        .route("/v3/assets", get(assets::list).post(assets::upload))
        .route("/v3/assets/{uid}", get(assets::get).put(assets::replace))
        .route("/v3/assets/{uid}/publish", post(assets::publish))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), http::guard))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
        .merge(cdn)
}
