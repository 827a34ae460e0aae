//! Liveness, health, metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::dto::{Health, Liveness};
use super::AppState;

/// Liveness probe (Sky Island compatible): 200 while the server answers.
#[utoipa::path(get, path = "/healthcheck", operation_id = "getLiveness", tag = "system",
    responses((status = 200, description = "Alive", body = Liveness)))]
pub async fn healthcheck() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".into(),
    })
}

/// Health of the server and every backend, with reasons.
#[utoipa::path(get, path = "/api/v1/health", operation_id = "getHealth", tag = "system",
    responses((status = 200, description = "Health report", body = Health)))]
pub async fn health(State(s): State<AppState>) -> Json<Health> {
    let backends = s.backends.health().await;
    // Backends that are not built yet do not make the server degraded.
    let degraded = backends
        .iter()
        .any(|b| !b.available && s.backends.get(b.backend).is_ok());
    Json(Health {
        status: if degraded { "degraded" } else { "ok" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        backends,
        go: s.functions.go().health(),
    })
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}
