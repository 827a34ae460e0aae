//! Request and response bodies that exist only at the HTTP edge.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::backend::BackendHealth;
use crate::error::AppError;
use crate::model::{Deployment, Execution, ExecutionStatus, Function};

/// Default page size.
pub const DEFAULT_PAGE: u32 = 50;
/// Largest page size for functions and deployments.
pub const MAX_PAGE: u32 = 500;
/// Largest page size for executions: each carries up to twice the output cap.
pub const MAX_EXECUTION_PAGE: u32 = 100;

/// Body of `POST /api/v1/functions/{name}/invoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// Any JSON value; the function reads its JSON text on stdin.
    #[serde(default)]
    #[schema(example = json!({"name": "Ada"}))]
    pub input: Value,
    /// Queue the execution and answer 202 at once instead of waiting.
    #[serde(default, rename = "async")]
    pub run_async: bool,
    /// URL that receives the finished execution by POST (retried on failure).
    #[schema(example = "http://127.0.0.1:9000/hooks/skybridge")]
    pub callback_url: Option<String>,
}

/// Paging for lists ordered by name.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Options of a deploy.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeployQuery {
    /// Fetch the source again and rebuild even when the artifact is cached.
    pub cache_bust: Option<bool>,
}

/// Paging and filtering for executions.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExecutionListQuery {
    /// Only executions in this state.
    pub status: Option<ExecutionStatus>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Checks a page size against `max`.
pub fn page_limit(limit: Option<u32>, max: u32) -> Result<u32, AppError> {
    match limit.unwrap_or(DEFAULT_PAGE.min(max)) {
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(AppError::InvalidParameter(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

/// A page of functions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FunctionPage {
    /// This page.
    pub items: Vec<Function>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of deployments, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentPage {
    /// This page.
    pub items: Vec<Deployment>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of executions, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionPage {
    /// This page.
    pub items: Vec<Execution>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every built-in backend is available, else `degraded`.
    #[schema(example = "ok")]
    pub status: String,
    /// Server version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// Every backend in the API, with availability and reason.
    pub backends: Vec<BackendHealth>,
    /// The Go toolchain that builds Go functions.
    pub go: crate::gobuild::GoHealth,
}

/// `GET /healthcheck` (Sky Island compatible liveness probe).
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok` while the server answers.
    #[schema(example = "ok")]
    pub status: String,
}

/// The cursor for the next page: the last item's key when the page is full.
pub fn next_cursor<T>(items: &[T], limit: u32, key: impl Fn(&T) -> String) -> Option<String> {
    (items.len() as u32 == limit)
        .then(|| items.last().map(key))
        .flatten()
}
