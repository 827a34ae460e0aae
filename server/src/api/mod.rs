//! The HTTP API: router, shared state, middleware and the OpenAPI document.
//!
//! Handlers are thin: they extract, call a service ([`FunctionService`],
//! [`Executions`]) and serialize. The utoipa annotations on them, with the
//! contract [`openapi`] adds, are the source of `openapi/openapi.json`.

pub mod admin;
pub mod dto;
pub mod executions;
pub mod extract;
pub mod functions;
pub mod openapi;
pub mod skyisland;
pub mod system;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

use crate::backend::Backends;
use crate::config::Config;
use crate::error::AppError;
use crate::executions::Executions;
use crate::functions::FunctionService;
use crate::metrics::Metrics;

/// Everything a handler may use.
#[derive(Clone)]
pub struct AppState {
    /// Server configuration.
    pub config: Arc<Config>,
    /// Function lifecycle.
    pub functions: Arc<FunctionService>,
    /// Invocations.
    pub executions: Arc<Executions>,
    /// Backend registry.
    pub backends: Backends,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Sandboxes running executions, for the admin API.
    pub sandboxes: Arc<crate::sandboxes::Sandboxes>,
    /// The jail backend's IPv4 pool, when one is configured.
    pub ip_pool: Option<Arc<skybridge_jail::ip_pool::IpPool>>,
    /// Request counts and times per route, for the admin API.
    pub api_stats: Arc<admin::ApiStats>,
}

/// Runs `work` so that dropping the request (a client hang-up) cannot cancel it
/// half-way: a build still records its deployment, a delete still clears the
/// live cache (see [`crate::detach`]).
pub async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, AppError>> + Send + 'static,
) -> Result<T, AppError> {
    use tracing::Instrument;
    crate::detach::finish_even_if_dropped(work.in_current_span())
        .await
        .map_err(|_| AppError::Internal(anyhow::anyhow!("request task panicked")))?
}

/// The application router over `state`.
pub fn app(state: AppState) -> Router {
    let bounds = crate::contract::Bounds {
        built_backends: Some(
            crate::model::BackendKind::ALL
                .into_iter()
                .filter(|k| state.backends.get(*k).is_ok())
                .collect(),
        ),
        networked_backends: Some(
            state
                .backends
                .all()
                .filter(|b| b.gives_network())
                .map(|b| b.kind())
                .collect(),
        ),
        ..crate::contract::Bounds::of(&state.config)
    };
    let api = Router::new()
        .route("/healthcheck", get(system::healthcheck))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/health", get(system::health))
        .route(
            "/api/v1/functions",
            post(functions::create).get(functions::list),
        )
        .route(
            "/api/v1/functions/{name}",
            get(functions::get)
                .put(functions::update)
                .delete(functions::delete),
        )
        .route("/api/v1/functions/{name}/deploy", post(functions::deploy))
        .route(
            "/api/v1/functions/{name}/deployments",
            get(functions::deployments),
        )
        .route("/api/v1/functions/{name}/invoke", post(executions::invoke))
        .route("/api/v1/functions/{name}/executions", get(executions::list))
        .route("/api/v1/executions/{id}", get(executions::get))
        .route("/api/v1/executions/{id}/logs", get(executions::logs))
        .route("/api/v1/function", post(skyisland::run))
        .route("/api/v1/admin/api-stats", get(admin::api_stats))
        .route(
            "/api/v1/admin/jails",
            get(admin::list_sandboxes).delete(admin::kill_all_sandboxes),
        )
        .route(
            "/api/v1/admin/jail/{id}",
            get(admin::get_sandbox).delete(admin::kill_sandbox),
        )
        .route(
            "/api/v1/admin/ips",
            get(admin::list_addresses).put(admin::set_address),
        )
        .route(
            "/api/v1/admin/network/ips",
            get(admin::list_network_addresses),
        )
        .route("/api/v1/admin/network/ip", put(admin::set_network_address))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .fallback(|uri: Uri| async move { AppError::RouteNotFound(uri.path().to_string()) })
        .layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .with_state(state);

    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(
            SwaggerUi::new("/api/docs")
                .external_url_unchecked("/api/openapi.json", openapi::document(&bounds)),
        )
        .merge(api)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Counts requests and their latency by matched route (not raw path, so ids
/// and names do not explode label cardinality).
async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_requests
        .with_label_values(&[method.as_str(), route.as_str(), resp.status().as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    state
        .api_stats
        .record(&method, &route, resp.status().as_u16(), started.elapsed());
    resp
}
