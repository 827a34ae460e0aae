//! The one error type of the client.

use crate::generated::{Deployment, Execution};

/// An error the server answered with: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The API's stable machine code, e.g. `function_not_found`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, for validation errors.
    pub field: Option<String>,
    /// The response's `x-request-id`, which is in the server's log.
    pub request_id: Option<String>,
    /// For `deployment_failed`: the failed deployment's id.
    pub deployment_id: Option<uuid::Uuid>,
    /// For `execution_failed` and `execution_timed_out`: the execution's id.
    pub execution_id: Option<uuid::Uuid>,
}

/// Everything a call can fail with.
///
/// An answer from the server is [`Error::Api`], with the API's stable `code`;
/// everything else is about getting there ([`Error::Connect`],
/// [`Error::Timeout`], [`Error::Transport`]) or about what came back
/// ([`Error::Decode`]). The helpers add [`Error::DeploymentFailed`] and
/// [`Error::WaitTimeout`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error.
    #[error("{} {}: {}", .0.status, .0.code, .0.message)]
    Api(Box<ApiError>),
    /// No connection could be made (the server is down, the address is wrong);
    /// the request was not sent.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The server's base URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The call took longer than its timeout.
    #[error("timed out after {timeout_ms} ms")]
    Timeout {
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The connection failed after the request was sent (reset, closed), so
    /// the server may have acted on it.
    #[error("the connection failed mid-request: {message}")]
    Transport {
        /// Why.
        message: String,
    },
    /// The server answered something this client cannot read.
    #[error("unexpected response (status {status}): {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What did not fit.
        message: String,
        /// The response's `x-request-id`.
        request_id: Option<String>,
    },
    /// The request cannot be made as given (a bad base URL, an unknown
    /// operation, parameters of the wrong kind).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// [`Client::deploy_and_wait`](crate::Client::deploy_and_wait): the build
    /// failed; the deployment holds the whole build log.
    #[error("deployment {} of `{}` failed: {message}", .deployment.id, .deployment.function)]
    DeploymentFailed {
        /// The failed deployment, with `build_log` and `error`.
        deployment: Box<Deployment>,
        /// The error's message (the first lines of the compiler's output).
        message: String,
        /// The deploy response's `x-request-id`.
        request_id: Option<String>,
    },
    /// [`Client::wait_for`](crate::Client::wait_for): the execution did not
    /// finish before the deadline.
    #[error("execution {} still {} after {waited_ms} ms", .last.id, .last.status)]
    WaitTimeout {
        /// The execution as last read.
        last: Box<Execution>,
        /// How long the wait took.
        waited_ms: u64,
    },
}

impl Error {
    /// The HTTP status, for errors the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } => Some(*status),
            Error::DeploymentFailed { .. } => Some(422),
            _ => None,
        }
    }

    /// The API's stable error code (`function_not_found`, …), or this client's
    /// own for failures that never reached an answer: `connect_failed`,
    /// `timeout`, `transport_failed`, `invalid_response`, `invalid_request`,
    /// `deployment_failed`, `wait_timeout`.
    pub fn code(&self) -> &str {
        match self {
            Error::Api(e) => &e.code,
            Error::Connect { .. } => "connect_failed",
            Error::Timeout { .. } => "timeout",
            Error::Transport { .. } => "transport_failed",
            Error::Decode { .. } => "invalid_response",
            Error::Invalid(_) => "invalid_request",
            Error::DeploymentFailed { .. } => "deployment_failed",
            Error::WaitTimeout { .. } => "wait_timeout",
        }
    }

    /// The request field at fault, for validation errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.field.as_deref(),
            _ => None,
        }
    }

    /// The response's `x-request-id`, when there was a response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            Error::Decode { request_id, .. } | Error::DeploymentFailed { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// The server's error, when it answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is the API's error `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code() == code
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
