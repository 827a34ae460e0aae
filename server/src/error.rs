//! The one place where errors become HTTP responses.
//!
//! Every module has its own `thiserror` enum; they join here in [`AppError`], whose
//! [`IntoResponse`] picks the status and the stable machine `code`. Internal detail
//! (database errors, I/O paths) is logged with the request's span and never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::backend::BackendError;
use crate::model::BackendKind;
use crate::store::StoreError;

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// A stable machine code plus a message for people.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, part of the API contract, e.g. `function_not_found`.
    #[schema(example = "function_not_found")]
    pub code: String,
    /// What went wrong, for people; wording may change.
    #[schema(example = "function `hello` does not exist")]
    pub message: String,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "limits.memory_mb")]
    pub field: Option<String>,
    /// For `deployment_failed`: the failed deployment, whose `build_log` has the
    /// whole build output (`GET /api/v1/functions/{name}/deployments`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<uuid::Uuid>,
    /// For `execution_failed` and `execution_timed_out`: the execution
    /// (`GET /api/v1/executions/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<uuid::Uuid>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not syntactically valid JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The JSON is well formed but does not fit the schema (types, unknown fields).
    #[error("request body does not match the schema: {0}")]
    InvalidBody(String),
    /// A request the endpoint cannot take (Sky Island endpoint: every bad request).
    #[error("{0}")]
    BadRequest(String),
    /// The function ran and failed (endpoints that answer with its output only).
    #[error("execution {id} failed: {message}")]
    ExecutionFailed {
        /// The execution, readable at `/api/v1/executions/{id}`.
        id: uuid::Uuid,
        /// Its reason and message.
        message: String,
    },
    /// The function ran past its time limit while the caller waited.
    #[error("execution {id} timed out: {message}")]
    ExecutionTimedOut {
        /// The execution.
        id: uuid::Uuid,
        /// Its message.
        message: String,
    },
    /// A path or query parameter does not parse.
    #[error("{0}")]
    InvalidParameter(String),
    /// A field has a value the server will not accept.
    #[error("{field}: {message}")]
    Validation {
        /// Dotted path of the field, e.g. `limits.memory_mb`.
        field: String,
        /// Why it was rejected.
        message: String,
    },
    /// The request's `Content-Type` is not one the endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The invoke `input` is larger than `limits.max_input_bytes`.
    #[error("input: is {size} bytes of JSON; the limit is {limit} (limits.max_input_bytes)")]
    InputTooLarge {
        /// Size of the input's JSON text.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The function asks for something its backend cannot do (a network on
    /// wasm, an image on wasm, too little memory for docker, …).
    #[error("{field}: {message}")]
    UnsupportedByBackend {
        /// The backend that refuses.
        backend: BackendKind,
        /// Dotted path of the field, e.g. `network`.
        field: String,
        /// Why, and what to use instead.
        message: String,
    },
    /// A Sky Island call has the right shape but Go's parser does not read it
    /// as exactly one call of an exported function.
    #[error("{field}: {message}")]
    InvalidCall {
        /// `source.call`, or `call` on the Sky Island endpoint.
        field: String,
        /// What Go's parser said.
        message: String,
    },
    /// The body is larger than `server.max_body_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// No function of that name.
    #[error("function `{0}` does not exist")]
    FunctionNotFound(String),
    /// No execution with that id.
    #[error("execution `{0}` does not exist")]
    ExecutionNotFound(String),
    /// A function of that name exists already.
    #[error("function `{0}` already exists")]
    FunctionExists(String),
    /// The function has no ready deployment.
    #[error("function `{0}` has no ready deployment; deploy it first")]
    NotDeployed(String),
    /// The build failed; the deployment is stored with its log.
    #[error("deployment {id} failed: {message}")]
    DeploymentFailed {
        /// The failed deployment's id.
        id: uuid::Uuid,
        /// What the build reported.
        message: String,
    },
    /// The backend is part of the API but not built into this server.
    #[error("backend `{}` is not available in this version of Skybridge", .0.as_str())]
    UnsupportedBackend(BackendKind),
    /// The backend exists but cannot run anything right now.
    #[error("backend `{}` is unavailable: {reason}", backend.as_str())]
    BackendUnavailable {
        /// Which backend.
        backend: BackendKind,
        /// Why.
        reason: String,
    },
    /// The backend's IP pool has no address left for a function with a network.
    #[error("{0}")]
    IpPoolExhausted(String),
    /// An admin route without a token.
    #[error("this admin route needs the admin token, in the {0} header or as `Authorization: Bearer <token>`")]
    AdminTokenMissing(String),
    /// An admin route with a token that is not the admin token.
    #[error("the admin token is not valid")]
    AdminTokenInvalid,
    /// An admin route on a server with no admin token configured.
    #[error("the admin API is disabled: set admin.api_token in the config file (or SKYBRIDGE_ADMIN_API_TOKEN) to enable it")]
    AdminDisabled,
    /// The admin API's IP routes on a server without an IPv4 pool.
    #[error("no IPv4 pool is configured: set [jail.ip4] bridge (the jail backend's pool) to use these routes")]
    IpPoolNotConfigured,
    /// An address an execution holds cannot be made available.
    #[error("{0}")]
    IpInUse(String),
    /// No running sandbox has this id.
    #[error("no running sandbox {0}")]
    SandboxNotFound(String),
    /// No route matches.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else: logged in full, reported as `internal`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use AppError::*;
        match self {
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            InvalidParameter(_) => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ExecutionFailed { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "execution_failed"),
            ExecutionTimedOut { .. } => (StatusCode::GATEWAY_TIMEOUT, "execution_timed_out"),
            Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            InputTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UnsupportedByBackend { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_by_backend")
            }
            InvalidCall { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_call"),
            PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            FunctionNotFound(_) => (StatusCode::NOT_FOUND, "function_not_found"),
            ExecutionNotFound(_) => (StatusCode::NOT_FOUND, "execution_not_found"),
            FunctionExists(_) => (StatusCode::CONFLICT, "function_exists"),
            NotDeployed(_) => (StatusCode::CONFLICT, "function_not_deployed"),
            DeploymentFailed { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "deployment_failed"),
            UnsupportedBackend(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_backend"),
            BackendUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable"),
            IpPoolExhausted(_) => (StatusCode::SERVICE_UNAVAILABLE, "ip_pool_exhausted"),
            AdminTokenMissing(_) => (StatusCode::UNAUTHORIZED, "admin_token_required"),
            AdminTokenInvalid => (StatusCode::FORBIDDEN, "admin_token_invalid"),
            AdminDisabled => (StatusCode::FORBIDDEN, "admin_disabled"),
            SandboxNotFound(_) => (StatusCode::NOT_FOUND, "sandbox_not_found"),
            IpPoolNotConfigured => (StatusCode::CONFLICT, "ip_pool_not_configured"),
            IpInUse(_) => (StatusCode::CONFLICT, "ip_in_use"),
            RouteNotFound(_) => (StatusCode::NOT_FOUND, "route_not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Store(StoreError::Conflict(_)) => (StatusCode::CONFLICT, "conflict"),
            Store(_) | Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The request field at fault, for errors about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Validation { field, .. }
            | AppError::UnsupportedByBackend { field, .. }
            | AppError::InvalidCall { field, .. } => Some(field),
            AppError::InputTooLarge { .. } => Some("input"),
            AppError::IpInUse(_) => Some("ip"),
            _ => None,
        }
    }

    /// Shorthand for a validation error on one field.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<BackendError> for AppError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Unavailable { backend, reason } => {
                AppError::BackendUnavailable { backend, reason }
            }
            BackendError::NotBuilt(kind) => AppError::UnsupportedBackend(kind),
            BackendError::AddressesExhausted(m) => AppError::IpPoolExhausted(m),
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail_is_safe = matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        );
        let message = if status.is_server_error() && !detail_is_safe {
            // The detail may hold paths or SQL: log it, send a generic line.
            tracing::error!(error = ?self, "request failed");
            "internal server error; the server log has the detail".to_string()
        } else {
            self.to_string()
        };
        let field = self.field().map(str::to_string);
        let (deployment_id, execution_id) = match &self {
            AppError::DeploymentFailed { id, .. } => (Some(*id), None),
            AppError::ExecutionFailed { id, .. } | AppError::ExecutionTimedOut { id, .. } => {
                (None, Some(*id))
            }
            _ => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
                field,
                deployment_id,
                execution_id,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

impl AppError {
    /// Maps a JSON extractor rejection; `limit` is the configured body limit.
    pub fn from_json_rejection(r: JsonRejection, limit: usize) -> Self {
        match r {
            JsonRejection::JsonSyntaxError(e) => AppError::InvalidJson(e.body_text()),
            JsonRejection::JsonDataError(e) => AppError::InvalidBody(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
                "expected a request with `Content-Type: application/json`".into(),
            ),
            JsonRejection::BytesRejection(e) => {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge { limit }
                } else {
                    AppError::InvalidJson(e.body_text())
                }
            }
            other => AppError::InvalidJson(other.body_text()),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::InvalidParameter(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::InvalidParameter(r.body_text())
    }
}

/// Result alias for handlers.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_is_not_sent() {
        let resp = AppError::Internal(anyhow::anyhow!("open /secret/path: denied")).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            AppError::FunctionNotFound("x".into()).status_and_code(),
            (StatusCode::NOT_FOUND, "function_not_found")
        );
        assert_eq!(
            AppError::NotDeployed("x".into()).status_and_code(),
            (StatusCode::CONFLICT, "function_not_deployed")
        );
        assert_eq!(
            AppError::BackendUnavailable {
                backend: BackendKind::Docker,
                reason: "down".into()
            }
            .status_and_code(),
            (StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable")
        );
    }
}
