//! The admin HTTP listener (axum): health for load balancers and supervisors, Prometheus
//! metrics, and the webhook intakes. It is a separate listener from SFTP/FTP so it can be bound
//! to an internal interface only; nothing on it serves partner files.
//!
//! - `GET /healthz`: 200 `ok` when the journal answers, 503 otherwise.
//! - `GET /metrics`: transfers by state, in the Prometheus text format.
//! - `POST /webhooks/{name}`: one event of a [`crate::intake::webhook::Webhook`]; 202 with the
//!   transfer id, or the refusal's 4xx/503 with `{"error": ...}`.

use crate::intake::webhook::Webhook;
use crate::spool::Spool;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Clone)]
pub struct Admin {
    spool: Arc<Spool>,
    webhooks: Arc<BTreeMap<String, Arc<Webhook>>>,
}

impl Admin {
    /// The admin plane over `spool`, serving `webhooks` by name.
    pub fn new(spool: Arc<Spool>, webhooks: Vec<Webhook>) -> Self {
        let webhooks = webhooks.into_iter().map(|w| (w.name().to_string(), Arc::new(w))).collect();
        Self { spool, webhooks: Arc::new(webhooks) }
    }

    /// The routes, with request bodies limited to `max_body` bytes (413 above).
    pub fn router(self, max_body: usize) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/webhooks/{name}", post(webhook))
            .layer(DefaultBodyLimit::max(max_body))
            .with_state(self)
    }
}

/// Serves `router` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the admin listener failed");
    }
}

async fn healthz(State(admin): State<Admin>) -> Response {
    match admin.spool.journal().count_by_state().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the journal does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the journal does not answer\n").into_response()
        }
    }
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let counts = match admin.spool.journal().count_by_state().await {
        Ok(c) => c,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("the journal does not answer: {e}\n")).into_response();
        }
    };
    let mut text =
        String::from("# HELP wharf_transfers Transfers in the journal, by state.\n# TYPE wharf_transfers gauge\n");
    for (state, n) in counts {
        // states are the journal's own words (`received`, `delivered`, ...): no escaping needed
        text.push_str(&format!("wharf_transfers{{state=\"{state}\"}} {n}\n"));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn webhook(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(hook) = admin.webhooks.get(&name) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "no webhook of that name"}))).into_response();
    };
    match hook.receive(&headers, &body, Some(peer.ip().to_string())).await {
        Ok(id) => (StatusCode::ACCEPTED, axum::Json(json!({"transfer": id}))).into_response(),
        Err(r) => (r.status(), axum::Json(json!({"error": r.to_string()}))).into_response(),
    }
}
