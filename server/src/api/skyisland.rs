//! `POST /api/v1/function`: the Sky Island compatible endpoint.
//!
//! `{"url": "github.com/mmcloughlin/geohash", "call": "Encode(100.1, 80.9)"}` →
//! `{"timestamp": <unix seconds>, "data": "<what fmt.Print printed>"}`.
//! Each (repository, function) becomes an ordinary function named `si-<hash>`,
//! visible in the API. A call of literals runs that function's handler binary with
//! the literals as arguments, so a new argument list never rebuilds; any other call
//! is checked with Go's parser and compiled as written into its own function.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::ApiJson;
use super::{detached, AppState};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::executions::OutputMode;
use crate::gobuild::{repo, shim};
use crate::model::{ExecutionStatus, FunctionSpec, LimitsSpec, SourceSpec};

/// Body of `POST /api/v1/function`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkyIslandRequest {
    /// Repository holding the Go package: `github.com/owner/name`, `https://…`, `file:///…`.
    #[schema(example = "github.com/mmcloughlin/geohash")]
    pub url: String,
    /// The call, e.g. `Encode(100.1, 80.9)`.
    #[schema(example = "Encode(100.1, 80.9)")]
    pub call: String,
    /// Fetch the repository again and rebuild before running.
    #[serde(default)]
    pub cache_bust: bool,
    /// Accepted for compatibility and ignored: wasm functions have no network.
    pub ip4: Option<String>,
}

/// Answer of `POST /api/v1/function`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SkyIslandResponse {
    /// When the execution finished, unix seconds.
    #[schema(example = 1_700_000_000)]
    pub timestamp: i64,
    /// What the call printed (`fmt.Print` of its results).
    #[schema(example = "ypzpgxczbzur")]
    pub data: String,
}

/// The name of the function serving `entry` of `url`.
fn function_name(url: &str, entry: &str) -> String {
    let d = crate::artifacts::digest(format!("{url}\n{entry}").as_bytes());
    format!("si-{}", &d[7..23])
}

/// Run a Go function from a repository, Sky Island style.
///
/// Builds on first use (and on `cache_bust`), then runs on the configured
/// default backend (`skyisland.default_backend`, or `FAAS_DEFAULT_RUNTIME`).
#[utoipa::path(post, path = "/api/v1/function", tag = "skyisland",
    request_body = SkyIslandRequest,
    responses(
        (status = 200, description = "The call's output", body = SkyIslandResponse),
        (status = 400, description = "`bad_request`, `invalid_json`: the request or the call is not valid", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`deployment_failed` (with the compiler's message), `execution_failed`", body = ErrorBody),
        (status = 503, description = "`backend_unavailable` (no Go toolchain, …)", body = ErrorBody),
        (status = 504, description = "`execution_timed_out`", body = ErrorBody),
    ))]
pub async fn run(
    State(s): State<AppState>,
    body: Result<ApiJson<SkyIslandRequest>, AppError>,
) -> AppResult<Json<SkyIslandResponse>> {
    let ApiJson(req) = body.map_err(|e| match e {
        AppError::InvalidBody(m) => AppError::BadRequest(m),
        other => other,
    })?;
    let url = req.url.trim().to_string();
    repo::parse_repo(&url).map_err(|m| AppError::BadRequest(format!("url: {m}")))?;
    if let Some(ip) = &req.ip4 {
        ip.parse::<std::net::Ipv4Addr>()
            .map_err(|_| AppError::BadRequest(format!("ip4: `{ip}` is not an IPv4 address")))?;
    }
    let call = req.call.trim();
    let backend = s.config.skyisland.default_backend;
    let (name, handler, call_src, input) = match shim::parse_literal_call(call) {
        Some(lit) => (
            function_name(&url, &format!("handler:{}", lit.function)),
            Some(lit.function),
            None,
            Value::Array(lit.args),
        ),
        None => (
            function_name(&url, &format!("call:{call}")),
            None,
            Some(call.to_string()),
            Value::Null,
        ),
    };

    // Hot path: the function is live in memory; no store access, no build. Its
    // name is derived from the call string, so a live one was checked already.
    let deployed = match s.functions.live(&name).await {
        Ok(_) => true,
        Err(AppError::NotDeployed(_) | AppError::FunctionNotFound(_)) => false,
        Err(e) => return Err(e),
    };
    if !deployed || req.cache_bust {
        if call_src.is_some() {
            // Refused with 400 before any function exists for it.
            if let Err(m) = s.functions.go().check_call(call, backend).await? {
                return Err(AppError::BadRequest(format!("call: {m}")));
            }
        }
        let functions = s.functions.clone();
        let spec = FunctionSpec {
            name: name.clone(),
            backend,
            source: SourceSpec::Go {
                repo: url,
                git_ref: None,
                package: None,
                handler,
                call: call_src,
            },
            env: Default::default(),
            limits: LimitsSpec::default(),
            // Sky Island's `ip4` asks for an address in a jail's network; it is
            // validated and not used: these functions run without a network.
            network: false,
            warm_pool_size: None,
        };
        let (n, bust) = (name.clone(), req.cache_bust);
        detached(async move {
            match functions.create(spec).await {
                Ok(_) | Err(AppError::FunctionExists(_)) => {}
                Err(e) => return Err(e),
            }
            functions.deploy(&n, bust).await
        })
        .await?;
    }

    let rec = s
        .executions
        .invoke_sync_as(&name, input, None, OutputMode::Print)
        .await?;
    let message = || rec.message.clone().unwrap_or_default();
    match rec.status {
        ExecutionStatus::Succeeded => Ok(Json(SkyIslandResponse {
            timestamp: rec.finished_at.unwrap_or(rec.created_at).timestamp(),
            data: String::from_utf8_lossy(&rec.stdout).into_owned(),
        })),
        ExecutionStatus::TimedOut => Err(AppError::ExecutionTimedOut {
            id: rec.id,
            message: message(),
        }),
        _ => Err(AppError::ExecutionFailed {
            id: rec.id,
            message: message(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names_are_stable_valid_and_distinct() {
        let a = function_name("github.com/a/b", "handler:Encode");
        assert_eq!(a, function_name("github.com/a/b", "handler:Encode"));
        assert_ne!(a, function_name("github.com/a/b", "handler:Decode"));
        assert!(a.starts_with("si-") && a.len() == 19);
    }
}
