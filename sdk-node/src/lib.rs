//! The Node-API addon of the Skybridge Node SDK: `skybridge-client` behind one
//! generic call (an `operationId` and its parameters as JSON) plus the two
//! helpers that poll. `index.js` and the generated `generated.js` turn it into
//! the SDK: one method per operation, camelCase models, typed errors.
//!
//! - Every promise resolves with an [`Outcome`]: failures are data, and the JS
//!   layer throws its own error classes (async Node-API functions cannot
//!   reject with custom errors).
//! - Methods are synchronous and return an `AsyncBlock` whose future owns
//!   clones of what it needs, so a worker that exits mid-call cannot leave a
//!   future holding a freed object.
//! - Cancellation: a [`CancelHandle`] passed with the call; `AbortSignal`s are
//!   wired to it in JS.
//! - One tokio runtime per process, napi-rs's own, shared by the main thread
//!   and every worker.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;
use skybridge_client::{Client, RequestOptions};
use tokio_util::sync::CancellationToken;

/// Options of `new NativeClient(…)`.
#[napi(object)]
pub struct NativeOptions {
    /// The server's base URL.
    pub url: String,
    /// A bearer token.
    pub token: Option<String>,
    /// Timeout of each attempt, ms.
    pub timeout_ms: Option<u32>,
    /// Retries where a retry is safe.
    pub max_retries: Option<u32>,
}

/// How a call ended: `ok` with the status, request id and body text, or not
/// `ok` with `error`.
#[napi(object)]
pub struct Outcome {
    /// Whether the call succeeded.
    pub ok: bool,
    /// HTTP status.
    pub status: Option<u32>,
    /// The response's `x-request-id`.
    pub request_id: Option<String>,
    /// The body (JSON or text) as received.
    pub body: Option<String>,
    /// Why it failed.
    pub error: Option<Failure>,
}

/// A failure, as `errors.js` reads it.
#[napi(object)]
pub struct Failure {
    /// HTTP status, when the server answered.
    pub status: Option<u32>,
    /// The API's code, or the client's own (`connect_failed`, `timeout`, `aborted`, …).
    pub code: String,
    /// For people.
    pub message: String,
    /// The request field at fault.
    pub field: Option<String>,
    /// The response's `x-request-id`.
    pub request_id: Option<String>,
    /// For `deployment_failed`.
    pub deployment_id: Option<String>,
    /// For `execution_failed` and `execution_timed_out`.
    pub execution_id: Option<String>,
    /// The failed deployment (`deployAndWait`) or the last execution seen
    /// (`waitFor`), as JSON.
    pub detail: Option<String>,
}

/// Cancels one call (`abort()` of its `AbortSignal`).
#[napi]
pub struct CancelHandle {
    token: CancellationToken,
}

#[napi]
impl CancelHandle {
    /// A handle for one call.
    #[napi(constructor)]
    pub fn new() -> Self {
        Self {
            token: CancellationToken::new(),
        }
    }

    /// Cancels the call; it resolves with code `aborted`. Cancelling before
    /// the call starts works too.
    #[napi]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

impl Default for CancelHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// A client of one Skybridge server.
#[napi]
pub struct NativeClient {
    client: Client,
}

#[napi]
impl NativeClient {
    /// A client for `options.url`.
    #[napi(constructor)]
    pub fn new(options: NativeOptions) -> Result<Self> {
        let mut b = Client::builder(&options.url)
            .user_agent(concat!("skybridge-node/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = options.token {
            b = b.token(t);
        }
        if let Some(ms) = options.timeout_ms {
            b = b.timeout(Duration::from_millis(ms.into()));
        }
        if let Some(r) = options.max_retries {
            b = b.max_retries(r);
        }
        let client = b
            .build()
            .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
        Ok(Self { client })
    }

    /// Calls an operation: `params` is `{"path": {…}, "query": {…}, "body": …}`
    /// as JSON text, in the API's own (snake_case) names.
    #[napi]
    pub fn call(
        &self,
        env: &Env,
        operation_id: String,
        params: String,
        timeout_ms: Option<u32>,
        max_retries: Option<u32>,
        cancel: Option<&CancelHandle>,
    ) -> Result<AsyncBlock<Outcome>> {
        let client = self.per_call(timeout_ms, max_retries);
        settle(env, cancel, async move {
            let params: Value = serde_json::from_str(&params).map_err(|e| {
                skybridge_client::Error::Invalid(format!("params are not JSON: {e}"))
            })?;
            let r = client.call_operation(&operation_id, &params).await?;
            Ok((
                r.status,
                r.request_id.clone(),
                String::from_utf8_lossy(&r.body).into_owned(),
            ))
        })
    }

    /// Deploys and resolves with the ready deployment's JSON; a failed build
    /// is `deployment_failed` with the deployment (and its log) in `detail`.
    #[napi]
    pub fn deploy_and_wait(
        &self,
        env: &Env,
        name: String,
        cache_bust: bool,
        timeout_ms: Option<u32>,
        cancel: Option<&CancelHandle>,
    ) -> Result<AsyncBlock<Outcome>> {
        let client = self.per_call(timeout_ms, None);
        settle(env, cancel, async move {
            let d = client.deploy_and_wait(&name, cache_bust).await?;
            Ok((201, None, to_json(&d)))
        })
    }

    /// Polls an execution until it has finished or `deadline_ms` passed
    /// (`wait_timeout`, with the last state in `detail`).
    #[napi]
    pub fn wait_for(
        &self,
        env: &Env,
        id: String,
        deadline_ms: u32,
        cancel: Option<&CancelHandle>,
    ) -> Result<AsyncBlock<Outcome>> {
        let client = self.client.clone();
        settle(env, cancel, async move {
            let id = id.parse::<skybridge_client::uuid::Uuid>().map_err(|e| {
                skybridge_client::Error::Invalid(format!("execution id `{id}`: {e}"))
            })?;
            let e = client
                .wait_for(id, Duration::from_millis(deadline_ms.into()))
                .await?;
            Ok((200, None, to_json(&e)))
        })
    }
}

impl NativeClient {
    fn per_call(&self, timeout_ms: Option<u32>, max_retries: Option<u32>) -> Client {
        if timeout_ms.is_none() && max_retries.is_none() {
            return self.client.clone();
        }
        self.client.with_options(RequestOptions {
            timeout: timeout_ms.map(|ms| Duration::from_millis(ms.into())),
            max_retries,
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("models serialize")
}

/// Runs `work` on the runtime, stopping it when `cancel` fires, and resolves
/// with its outcome.
fn settle<F>(env: &Env, cancel: Option<&CancelHandle>, work: F) -> Result<AsyncBlock<Outcome>>
where
    F: std::future::Future<Output = skybridge_client::Result<(u16, Option<String>, String)>>
        + Send
        + 'static,
{
    let token = cancel.map(|c| c.token.clone()).unwrap_or_default();
    AsyncBlockBuilder::new(async move {
        let result = tokio::select! {
            biased;
            _ = token.cancelled() => None,
            r = work => Some(r),
        };
        Ok(match result {
            Some(Ok((status, request_id, body))) => Outcome {
                ok: true,
                status: Some(status.into()),
                request_id,
                body: Some(body),
                error: None,
            },
            Some(Err(e)) => failure(&e),
            None => Outcome {
                ok: false,
                status: None,
                request_id: None,
                body: None,
                error: Some(Failure {
                    status: None,
                    code: "aborted".into(),
                    message: "the call was aborted".into(),
                    field: None,
                    request_id: None,
                    deployment_id: None,
                    execution_id: None,
                    detail: None,
                }),
            },
        })
    })
    .build(env)
}

fn failure(e: &skybridge_client::Error) -> Outcome {
    let mut f = Failure {
        status: e.status().map(u32::from),
        code: e.code().to_string(),
        message: e.to_string(),
        field: e.field().map(str::to_string),
        request_id: e.request_id().map(str::to_string),
        deployment_id: None,
        execution_id: None,
        detail: None,
    };
    match e {
        skybridge_client::Error::Api(api) => {
            f.message = api.message.clone();
            f.deployment_id = api.deployment_id.map(|d| d.to_string());
            f.execution_id = api.execution_id.map(|d| d.to_string());
        }
        skybridge_client::Error::DeploymentFailed { deployment, .. } => {
            f.deployment_id = Some(deployment.id.to_string());
            f.detail = Some(to_json(deployment));
        }
        skybridge_client::Error::WaitTimeout { last, .. } => {
            f.execution_id = Some(last.id.to_string());
            f.detail = Some(to_json(last));
        }
        _ => {}
    }
    Outcome {
        ok: false,
        status: f.status,
        request_id: f.request_id.clone(),
        body: None,
        error: Some(f),
    }
}
