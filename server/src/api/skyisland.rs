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

use super::extract::LenientJson;
use super::{detached, AppState};
use crate::contract;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::executions::OutputMode;
use crate::gobuild::{repo, shim};
use crate::model::{BackendKind, ExecutionStatus, FunctionSpec, LimitsSpec, SourceSpec};

/// Body of `POST /api/v1/function`, as Sky Island's clients send it. Fields
/// this endpoint does not know are ignored, as Sky Island ignored them.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SkyIslandRequest {
    /// Repository holding the Go package: `github.com/owner/name`, `https://…`, `file:///…`.
    #[schema(example = "github.com/mmcloughlin/geohash")]
    pub url: String,
    /// The call, e.g. `Encode(100.1, 80.9)`.
    #[schema(example = "Encode(100.1, 80.9)")]
    pub call: String,
    /// Fetch the repository again and rebuild before running.
    #[serde(default)]
    pub cache_bust: Option<bool>,
    /// The execution needs a network address: the function runs with a network
    /// and an address from the backend's pool. Refused on a backend without a
    /// network (wasm) with `unsupported_by_backend`.
    #[serde(default)]
    pub ip4: Option<bool>,
    /// Branch, tag or commit of the repository to build; default: its HEAD.
    #[serde(default)]
    #[schema(example = "v1.1.0")]
    pub version: Option<String>,
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

/// The function serving `entry` of `url` (at `version`, with a network when
/// `ip4`, on `backend`). Requests without `version` and `ip4` on the wasm
/// backend keep the names earlier versions gave them.
fn function_name(
    url: &str,
    entry: &str,
    version: Option<&str>,
    ip4: bool,
    backend: BackendKind,
) -> String {
    let mut key = format!("{url}\n{entry}");
    if let Some(v) = version {
        key.push_str(&format!("\nref:{v}"));
    }
    if ip4 {
        key.push_str("\nip4");
    }
    if backend != BackendKind::Wasm {
        key.push_str(&format!("\nbackend:{}", backend.as_str()));
    }
    let d = crate::artifacts::digest(key.as_bytes());
    format!("si-{}", &d[7..23])
}

/// Run a Go function from a repository, Sky Island style.
///
/// Builds on first use (and on `cache_bust`), then runs on the configured
/// default backend (`skyisland.default_backend`, or `FAAS_DEFAULT_RUNTIME`).
/// The body is read as JSON whatever its `Content-Type` says (Sky Island's
/// clients send none, or `text/plain`, or curl's form type); a type that is
/// clearly something else gets 415. Unknown fields are ignored.
#[utoipa::path(post, path = "/api/v1/function", tag = "skyisland",
    operation_id = "runSkyIsland",
    request_body = SkyIslandRequest,
    responses(
        (status = 200, description = "The call's output", body = SkyIslandResponse),
        (status = 400, description = "`bad_request`, `invalid_json`: the request is not valid", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: a body that is declared as something other than JSON or text", body = ErrorBody),
        (status = 422, description = "`invalid_call` (Go's parser does not read the call as one call), `deployment_failed` (with the compiler's message), `execution_failed`, `unsupported_by_backend` (`ip4` on a backend without a network)", body = ErrorBody),
        (status = 503, description = "`backend_unavailable` (no Go toolchain, no Docker Engine, …); `ip_pool_exhausted` (`ip4` on jail, and no address left)", body = ErrorBody),
        (status = 504, description = "`execution_timed_out`", body = ErrorBody),
    ))]
pub async fn run(
    State(s): State<AppState>,
    body: Result<LenientJson<SkyIslandRequest>, AppError>,
) -> AppResult<Json<SkyIslandResponse>> {
    let LenientJson(req) = body.map_err(|e| match e {
        AppError::InvalidBody(m) => AppError::BadRequest(m),
        other => other,
    })?;
    let url = req.url;
    repo::parse_repo(&url).map_err(|m| AppError::BadRequest(format!("url: {m}")))?;
    let call = req.call.as_str();
    if !contract::fits(&contract::GO_CALL, contract::MAX_CALL_CHARS, call) {
        return Err(AppError::BadRequest(format!(
            "call: must be one Go call of an exported function on one line, like `Encode(100.1, 80.9)`, at most {} characters",
            contract::MAX_CALL_CHARS
        )));
    }
    if let Some(v) = &req.version {
        if !contract::fits(&contract::GIT_REF, contract::MAX_REF_CHARS, v) {
            return Err(AppError::BadRequest(format!(
                "version: `{v}` is not a branch, tag or commit"
            )));
        }
    }
    let ip4 = req.ip4.unwrap_or(false);
    let cache_bust = req.cache_bust.unwrap_or(false);
    let version = req.version.as_deref();
    let backend = s.config.skyisland.default_backend;
    let call = call.trim();
    let (name, handler, call_src, input) = match shim::parse_literal_call(call) {
        Some(lit) => (
            function_name(
                &url,
                &format!("handler:{}", lit.function),
                version,
                ip4,
                backend,
            ),
            Some(lit.function),
            None,
            Value::Array(lit.args),
        ),
        None => (
            function_name(&url, &format!("call:{call}"), version, ip4, backend),
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
    if !deployed || cache_bust {
        if call_src.is_some() {
            // Refused before any function exists for it.
            if let Err(message) = s.functions.go().check_call(call, backend).await? {
                return Err(AppError::InvalidCall {
                    field: "call".into(),
                    message,
                });
            }
        }
        let functions = s.functions.clone();
        let spec = FunctionSpec {
            name: name.clone(),
            backend,
            source: SourceSpec::Go {
                repo: url,
                git_ref: req.version.clone(),
                package: None,
                handler,
                call: call_src,
            },
            env: Default::default(),
            limits: LimitsSpec::default(),
            // Sky Island's `ip4`: the execution gets a network and an address
            // from the backend's pool.
            network: ip4,
            warm_pool_size: None,
        };
        let n = name.clone();
        detached(async move {
            match functions.create(spec).await {
                Ok(_) | Err(AppError::FunctionExists(_)) => {}
                Err(AppError::UnsupportedByBackend {
                    backend, field, message,
                }) if field == "network" => {
                    return Err(AppError::UnsupportedByBackend {
                        backend,
                        field: "ip4".into(),
                        message: format!(
                            "the Sky Island endpoint runs on `{}` (skyisland.default_backend, or FAAS_DEFAULT_RUNTIME), which gives functions no network address: {message}",
                            backend.as_str()
                        ),
                    })
                }
                Err(e) => return Err(e),
            }
            functions.deploy(&n, cache_bust).await
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

    use crate::model::BackendKind;

    #[test]
    fn names_are_stable_valid_and_distinct() {
        let name = |entry, version, ip4, backend| {
            function_name("github.com/a/b", entry, version, ip4, backend)
        };
        let a = name("handler:Encode", None, false, BackendKind::Wasm);
        assert_eq!(a, name("handler:Encode", None, false, BackendKind::Wasm));
        // Earlier releases named this function the same way.
        let d = crate::artifacts::digest(b"github.com/a/b\nhandler:Encode");
        assert_eq!(a, format!("si-{}", &d[7..23]));
        let others = [
            name("handler:Decode", None, false, BackendKind::Wasm),
            name("handler:Encode", Some("v1"), false, BackendKind::Wasm),
            name("handler:Encode", None, true, BackendKind::Docker),
            name("handler:Encode", None, false, BackendKind::Docker),
        ];
        for (i, o) in others.iter().enumerate() {
            assert_ne!(&a, o);
            assert!(others[i + 1..].iter().all(|p| p != o));
            assert!(crate::contract::FUNCTION_NAME.matches(o));
        }
        assert!(a.starts_with("si-") && a.len() == 19);
    }
}
