//! Invoke, and reading executions back.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;

use super::dto::{
    next_cursor, page_limit, ExecutionListQuery, ExecutionPage, InvokeRequest, MAX_EXECUTION_PAGE,
};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::AppState;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::model::{Execution, ExecutionLogs};
use crate::store::ExecutionQuery;

/// Invoke a function.
///
/// The function's stdin receives the JSON text of `input` (also in env
/// `SKYBRIDGE_INPUT`). Sync (default): waits and answers 200 with the finished
/// execution, whatever its status. `"async": true`: answers 202 with a `queued`
/// execution that is already durably stored; poll `GET /api/v1/executions/{id}`
/// or pass `callback_url`.
#[utoipa::path(post, path = "/api/v1/functions/{name}/invoke", operation_id = "invokeFunction", tag = "executions",
    params(("name" = String, Path, description = "Function name")),
    request_body = InvokeRequest,
    responses(
        (status = 200, description = "Sync: the finished execution (see `status`)", body = Execution, links(
            ("getExecution" = (operation_id = "getExecution", parameters(("id" = "$response.body#/id")))),
            ("getExecutionLogs" = (operation_id = "getExecutionLogs", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 202, description = "Async: the queued execution", body = Execution, links(
            ("getExecution" = (operation_id = "getExecution", parameters(("id" = "$response.body#/id")))),
            ("getExecutionLogs" = (operation_id = "getExecutionLogs", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "`invalid_json`; `invalid_parameter` (the path is not valid UTF-8)", body = ErrorBody),
        (status = 404, description = "`function_not_found`", body = ErrorBody),
        (status = 409, description = "`function_not_deployed`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over `server.max_body_bytes`, or `input` over `limits.max_input_bytes` (`field`: `input`)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`; `validation_failed` for a `callback_url` outside the pattern", body = ErrorBody),
        (status = 503, description = "`backend_unavailable`; `ip_pool_exhausted` (a function with a network on jail, and no address left in the pool)", body = ErrorBody),
    ))]
pub async fn invoke(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<InvokeRequest>,
) -> AppResult<(StatusCode, Json<Execution>)> {
    if req.run_async {
        let rec = s
            .executions
            .invoke_async(&name, req.input, req.callback_url)
            .await?;
        Ok((StatusCode::ACCEPTED, Json(rec.to_api())))
    } else {
        let rec = s
            .executions
            .invoke_sync(&name, req.input, req.callback_url)
            .await?;
        Ok((StatusCode::OK, Json(rec.to_api())))
    }
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    crate::contract::parse_uuid(id).ok_or_else(|| AppError::ExecutionNotFound(id.to_string()))
}

/// Get an execution.
#[utoipa::path(get, path = "/api/v1/executions/{id}", operation_id = "getExecution", tag = "executions",
    params(("id" = Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = Execution),
        (status = 400, description = "`invalid_parameter`: the path is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "`execution_not_found` (also for an id that is not a UUID)", body = ErrorBody),
    ))]
pub async fn get(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<Execution>> {
    Ok(Json(s.executions.get(parse_id(&id)?).await?.to_api()))
}

/// Get an execution's full stdout and stderr.
#[utoipa::path(get, path = "/api/v1/executions/{id}/logs", operation_id = "getExecutionLogs", tag = "executions",
    params(("id" = Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "Captured output", body = ExecutionLogs),
        (status = 400, description = "`invalid_parameter`: the path is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "`execution_not_found` (also for an id that is not a UUID)", body = ErrorBody),
    ))]
pub async fn logs(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<ExecutionLogs>> {
    Ok(Json(s.executions.logs(parse_id(&id)?).await?))
}

/// List a function's executions, newest first.
#[utoipa::path(get, path = "/api/v1/functions/{name}/executions", operation_id = "listExecutions", tag = "executions",
    params(("name" = String, Path, description = "Function name"), ExecutionListQuery),
    responses(
        (status = 200, description = "A page of executions", body = ExecutionPage),
        (status = 400, description = "`invalid_parameter`: `limit` out of range, an unknown `status`, a `cursor` that is not an execution id", body = ErrorBody),
        (status = 404, description = "`function_not_found`", body = ErrorBody),
    ))]
pub async fn list(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExecutionListQuery>,
) -> AppResult<Json<ExecutionPage>> {
    let limit = page_limit(q.limit, MAX_EXECUTION_PAGE)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            crate::contract::parse_uuid(c).ok_or_else(|| {
                AppError::InvalidParameter(format!("cursor `{c}` is not an execution id"))
            })
        })
        .transpose()?;
    let recs = s
        .executions
        .list(ExecutionQuery {
            function: Some(name),
            status: q.status,
            before,
            limit,
        })
        .await?;
    let items: Vec<Execution> = recs.iter().map(|r| r.to_api()).collect();
    let next_cursor = next_cursor(&items, limit, |e| e.id.to_string());
    Ok(Json(ExecutionPage { items, next_cursor }))
}
