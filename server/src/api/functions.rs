//! `/api/v1/functions`: CRUD, deploy, deployments.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::dto::{
    next_cursor, page_limit, DeployQuery, DeploymentPage, FunctionPage, PageQuery, MAX_PAGE,
};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{detached, AppState};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::model::{Deployment, Function, FunctionSpec, FunctionUpdate};

/// Create a function.
///
/// The function is stored but not runnable until it is deployed.
#[utoipa::path(post, path = "/api/v1/functions", operation_id = "createFunction", tag = "functions",
    request_body = FunctionSpec,
    responses(
        (status = 201, description = "Created", body = Function, links(
            ("getFunction" = (operation_id = "getFunction", parameters(("name" = "$response.body#/name")))),
            ("updateFunction" = (operation_id = "updateFunction", parameters(("name" = "$response.body#/name")))),
            ("deployFunction" = (operation_id = "deployFunction", parameters(("name" = "$response.body#/name")))),
            ("invokeFunction" = (operation_id = "invokeFunction", parameters(("name" = "$response.body#/name")))),
            ("listDeployments" = (operation_id = "listDeployments", parameters(("name" = "$response.body#/name")))),
            ("listExecutions" = (operation_id = "listExecutions", parameters(("name" = "$response.body#/name")))),
            ("deleteFunction" = (operation_id = "deleteFunction", parameters(("name" = "$response.body#/name")))),
        )),
        (status = 400, description = "`invalid_json`: the body is not JSON", body = ErrorBody),
        (status = 409, description = "`function_exists`: the name is taken", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: body over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_body` (wrong types, unknown fields) and `validation_failed` (a pattern or bound of this schema; `field` names it); `unsupported_backend` (not built into this server); `unsupported_by_backend` (the backend cannot do what the function asks: a network or warm pool on wasm, an image on wasm, a WASI module or under 6 MiB on docker; `field` names it); `invalid_call` (Go's parser does not read `source.call` as one call)", body = ErrorBody),
        (status = 503, description = "`backend_unavailable`: the Go helper that checks `source.call` cannot be built", body = ErrorBody),
    ))]
pub async fn create(
    State(s): State<AppState>,
    ApiJson(spec): ApiJson<FunctionSpec>,
) -> AppResult<(StatusCode, Json<Function>)> {
    let f = s.functions.clone();
    let created = detached(async move { f.create(spec).await }).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List functions by name.
#[utoipa::path(get, path = "/api/v1/functions", operation_id = "listFunctions", tag = "functions",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of functions", body = FunctionPage),
        (status = 400, description = "`invalid_parameter`: `limit` out of range, an unknown parameter", body = ErrorBody),
    ))]
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<FunctionPage>> {
    let limit = page_limit(q.limit, MAX_PAGE)?;
    let items = s.functions.list(q.cursor.as_deref(), limit).await?;
    let next_cursor = next_cursor(&items, limit, |f| f.name.clone());
    Ok(Json(FunctionPage { items, next_cursor }))
}

/// Get a function.
#[utoipa::path(get, path = "/api/v1/functions/{name}", operation_id = "getFunction", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The function", body = Function),
        (status = 400, description = "`invalid_parameter`: the path is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "`function_not_found`", body = ErrorBody),
    ))]
pub async fn get(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> AppResult<Json<Function>> {
    Ok(Json(s.functions.get(&name).await?))
}

/// Replace a function's spec.
///
/// The running deployment is unchanged until the function is deployed again.
#[utoipa::path(put, path = "/api/v1/functions/{name}", operation_id = "updateFunction", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = FunctionUpdate,
    responses(
        (status = 200, description = "Updated", body = Function, links(
            ("deployFunction" = (operation_id = "deployFunction", parameters(("name" = "$response.body#/name")))),
        )),
        (status = 400, description = "`invalid_json`; `invalid_parameter` (the path is not valid UTF-8)", body = ErrorBody),
        (status = 404, description = "`function_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: another update won a race; retry", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `validation_failed`, `unsupported_backend`, `unsupported_by_backend`, `invalid_call` (as for create)", body = ErrorBody),
        (status = 503, description = "`backend_unavailable`: the Go helper that checks `source.call` cannot be built", body = ErrorBody),
    ))]
pub async fn update(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(update): ApiJson<FunctionUpdate>,
) -> AppResult<Json<Function>> {
    let f = s.functions.clone();
    let spec = update.into_spec(name.clone());
    Ok(Json(
        detached(async move { f.update(&name, spec).await }).await?,
    ))
}

/// Delete a function with its deployments and executions.
#[utoipa::path(delete, path = "/api/v1/functions/{name}", operation_id = "deleteFunction", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_parameter`: the path is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "`function_not_found`", body = ErrorBody),
    ))]
pub async fn delete(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> AppResult<StatusCode> {
    let f = s.functions.clone();
    detached(async move { f.delete(&name).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deploy a function: build its current spec into a runnable artifact.
///
/// Waits for the build. Artifacts are cached by what they are built from (for Go
/// sources: the resolved commit, package, entry, target and Go version), so
/// deploying an unchanged source again is a cache hit. `cache_bust=true` fetches
/// the repository again and rebuilds, replacing the cached artifact. A failed build
/// is kept as a `failed` deployment with its log (see the deployments list) and
/// answered with `deployment_failed` carrying the compiler's message.
#[utoipa::path(post, path = "/api/v1/functions/{name}/deploy", operation_id = "deployFunction", tag = "functions",
    params(("name" = String, Path, description = "Function name"), DeployQuery),
    responses(
        (status = 201, description = "Deployed and ready", body = Deployment, links(
            ("invokeFunction" = (operation_id = "invokeFunction", parameters(("name" = "$response.body#/function")))),
            ("listDeployments" = (operation_id = "listDeployments", parameters(("name" = "$response.body#/function")))),
        )),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`function_not_found` (also when the function is deleted while it builds)", body = ErrorBody),
        (status = 422, description = "`deployment_failed` with the build's message (the failed deployment keeps the log); `unsupported_backend`", body = ErrorBody),
        (status = 503, description = "`backend_unavailable` (e.g. no Go toolchain or no Docker Engine; the message says how to get one)", body = ErrorBody),
    ))]
pub async fn deploy(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeployQuery>,
) -> AppResult<(StatusCode, Json<Deployment>)> {
    let f = s.functions.clone();
    let cache_bust = q.cache_bust.unwrap_or(false);
    let deployment = detached(async move { f.deploy(&name, cache_bust).await }).await?;
    Ok((StatusCode::CREATED, Json(deployment)))
}

/// List a function's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/functions/{name}/deployments", operation_id = "listDeployments", tag = "functions",
    params(("name" = String, Path, description = "Function name"), PageQuery),
    responses(
        (status = 200, description = "A page of deployments", body = DeploymentPage),
        (status = 400, description = "`invalid_parameter`: `limit` out of range, a `cursor` that is not a deployment id", body = ErrorBody),
        (status = 404, description = "`function_not_found`", body = ErrorBody),
    ))]
pub async fn deployments(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<DeploymentPage>> {
    let limit = page_limit(q.limit, MAX_PAGE)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            crate::contract::parse_uuid(c).ok_or_else(|| {
                AppError::InvalidParameter(format!("cursor `{c}` is not a deployment id"))
            })
        })
        .transpose()?;
    let items = s.functions.deployments(&name, before, limit).await?;
    let next_cursor = next_cursor(&items, limit, |d| d.id.to_string());
    Ok(Json(DeploymentPage { items, next_cursor }))
}
