//! The client: connection settings, per-call options, and the one place a
//! request is sent, retried and its errors read.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::operation::{backoff, retry_after, should_retry, Attempt, OperationSpec, Response};
use crate::{Error, Result};

/// `SKYBRIDGE_URL`'s default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3280";

/// Settings of one call, over the client's defaults: [`Client::with_options`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestOptions {
    /// Timeout of each attempt.
    pub timeout: Option<Duration>,
    /// Retries after the first attempt (only where a retry is safe: see
    /// [`OperationSpec::idempotent`]).
    pub max_retries: Option<u32>,
}

impl RequestOptions {
    /// Options with this timeout.
    pub fn timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..Self::default()
        }
    }

    /// Options with this many retries.
    pub fn retries(max_retries: u32) -> Self {
        Self {
            max_retries: Some(max_retries),
            ..Self::default()
        }
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    user_agent: String,
}

impl ClientBuilder {
    fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            token: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            user_agent: concat!("skybridge-client-rust/", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    /// A bearer token, sent as `Authorization: Bearer <token>`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Timeout of each attempt (default 60 s; a sync invoke waits for the
    /// function, so it should exceed the function's own time limit).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of making a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 2), where a retry is safe.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first retry's wait bound and the cap of later ones (defaults 200 ms
    /// and 5 s; each wait is random below its bound).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        let base = self.base_url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| Error::Invalid(format!("base URL `{base}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!(
                "base URL `{base}`: use http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Invalid(format!("the HTTP client does not build: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: self.token,
                backoff_base: self.backoff_base,
                backoff_max: self.backoff_max,
            }),
            timeout: self.timeout,
            max_retries: self.max_retries,
        })
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    backoff_base: Duration,
    backoff_max: Duration,
}

/// A client of one Skybridge server. Cheap to clone: clones share the
/// connection pool.
///
/// ```no_run
/// # async fn run() -> skybridge_client::Result<()> {
/// let client = skybridge_client::Client::from_env()?;
/// let health = client.get_health().await?;
/// println!("{}", health.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    timeout: Duration,
    max_retries: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base)
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:3280`),
    /// with the default settings.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::builder(base_url).build()
    }

    /// A client configured from the environment: `SKYBRIDGE_URL` (default
    /// `http://127.0.0.1:3280`) and `SKYBRIDGE_TOKEN` (a bearer token, when set).
    pub fn from_env() -> Result<Self> {
        let url = std::env::var("SKYBRIDGE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let mut b = Self::builder(&url);
        if let Some(token) = std::env::var("SKYBRIDGE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
        {
            b = b.token(token);
        }
        b.build()
    }

    /// A builder for the server at `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder::new(base_url)
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// This client with `options` for the calls made through the copy; the
    /// original keeps its settings and both share connections.
    ///
    /// ```no_run
    /// # async fn run(client: skybridge_client::Client) -> skybridge_client::Result<()> {
    /// use std::time::Duration;
    /// use skybridge_client::RequestOptions;
    /// let quick = client.with_options(RequestOptions::timeout(Duration::from_secs(2)));
    /// quick.get_function("hello").await?;
    /// # Ok(()) }
    /// ```
    pub fn with_options(&self, options: RequestOptions) -> Self {
        let mut c = self.clone();
        if let Some(t) = options.timeout {
            c.timeout = t;
        }
        if let Some(r) = options.max_retries {
            c.max_retries = r;
        }
        c
    }

    /// Calls an operation by its `operationId`, with parameters as JSON:
    /// `{"path": {"name": "hello"}, "query": {"limit": 10}, "body": {…}}`. This is
    /// what the Node and Ruby bindings use; Rust code has a typed method per
    /// operation instead.
    pub async fn call_operation(&self, operation_id: &str, params: &Value) -> Result<Response> {
        let op = OperationSpec::find(operation_id)
            .ok_or_else(|| Error::Invalid(format!("no operation `{operation_id}`")))?;
        let part = |key: &str| params.get(key).filter(|v| !v.is_null());
        let scalar = |v: &Value, what: &str| -> Result<String> {
            match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(Error::Invalid(format!(
                    "{operation_id}: {what} must be a string, number or boolean, not {other}"
                ))),
            }
        };
        let mut path_values = Vec::new();
        for name in op.path_params {
            let v = part("path")
                .and_then(|p| p.get(*name))
                .filter(|v| !v.is_null())
                .ok_or_else(|| Error::Invalid(format!("{operation_id}: `{name}` is required")))?;
            path_values.push(scalar(v, name)?);
        }
        let mut query = Vec::new();
        if let Some(q) = part("query") {
            let q = q.as_object().ok_or_else(|| {
                Error::Invalid(format!("{operation_id}: query must be an object"))
            })?;
            for (k, v) in q {
                let known = op
                    .query_params
                    .iter()
                    .find(|p| **p == k.as_str())
                    .ok_or_else(|| {
                        Error::Invalid(format!("{operation_id}: no query parameter `{k}`"))
                    })?;
                if !v.is_null() {
                    query.push((*known, scalar(v, k)?));
                }
            }
        }
        let body = match (op.body, part("body")) {
            (true, Some(b)) => Some(crate::operation::to_json(b)?),
            (true, None) => Some(b"{}".to_vec()),
            (false, Some(_)) => {
                return Err(Error::Invalid(format!("{operation_id} takes no body")))
            }
            (false, None) => None,
        };
        self.send(op, &path_values, query, body).await
    }

    /// Sends one operation: the one place requests are built, retried and
    /// their errors read.
    pub(crate) async fn send(
        &self,
        op: &OperationSpec,
        path_values: &[String],
        query: Vec<(&'static str, String)>,
        body: Option<Vec<u8>>,
    ) -> Result<Response> {
        let mut path = op.path.to_string();
        for (name, value) in op.path_params.iter().zip(path_values) {
            path = path.replace(&format!("{{{name}}}"), &encode_segment(value));
        }
        let url = format!("{}{path}", self.inner.base);
        let mut retry = 0;
        loop {
            let mut req = self
                .inner
                .http
                .request(op.method.http(), &url)
                .timeout(self.timeout)
                .header(reqwest::header::ACCEPT, "application/json");
            if !query.is_empty() {
                req = req.query(&query);
            }
            if let Some(token) = &self.inner.token {
                req = req.bearer_auth(token);
            }
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let (attempt, error, wait_hint) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let request_id = resp
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let hint = retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
                    match resp.bytes().await {
                        Ok(bytes) if (200..300).contains(&status) => {
                            return Ok(Response {
                                status,
                                request_id,
                                body: bytes,
                            })
                        }
                        Ok(bytes) => (
                            Attempt::Answered(status),
                            api_error(status, request_id, &bytes),
                            hint,
                        ),
                        Err(e) => (Attempt::LostAfterSend, self.transport_error(e), None),
                    }
                }
                Err(e) if e.is_connect() => (
                    Attempt::NotConnected,
                    Error::Connect {
                        url: self.inner.base.clone(),
                        message: source_chain(&e),
                    },
                    None,
                ),
                Err(e) => (Attempt::LostAfterSend, self.transport_error(e), None),
            };
            retry += 1;
            if retry > self.max_retries || !should_retry(op.idempotent, attempt) {
                return Err(error);
            }
            let wait = backoff(
                retry,
                self.inner.backoff_base,
                self.inner.backoff_max,
                wait_hint,
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                timeout_ms: self.timeout.as_millis() as u64,
            }
        } else {
            Error::Transport {
                message: source_chain(&e),
            }
        }
    }
}

/// The error an error response carries, or [`Error::Decode`] for a body that is
/// not the API's error shape.
fn api_error(status: u16, request_id: Option<String>, body: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        code: String,
        message: String,
        field: Option<String>,
        deployment_id: Option<uuid::Uuid>,
        execution_id: Option<uuid::Uuid>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body { error: d }) => Error::Api(Box::new(crate::ApiError {
            status,
            code: d.code,
            message: d.message,
            field: d.field,
            request_id,
            deployment_id: d.deployment_id,
            execution_id: d.execution_id,
        })),
        Err(_) => Error::Decode {
            status,
            message: format!(
                "not an API error body: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
            request_id,
        },
    }
}

/// An error and its causes, `a: b: c`.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Percent-encodes a path segment (everything but RFC 3986's unreserved).
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("hello-1_a.b~"), "hello-1_a.b~");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn error_bodies_become_api_errors() {
        let e = api_error(
            404,
            Some("r1".into()),
            br#"{"error":{"code":"function_not_found","message":"no","field":null}}"#,
        );
        assert_eq!(
            (e.status(), e.code(), e.request_id()),
            (Some(404), "function_not_found", Some("r1"))
        );
        let e = api_error(502, None, b"<html>bad gateway</html>");
        assert_eq!((e.status(), e.code()), (Some(502), "invalid_response"));
    }

    #[test]
    fn bad_base_urls_and_operations_are_refused() {
        assert!(matches!(Client::new("ftp://x"), Err(Error::Invalid(_))));
        assert!(matches!(Client::new("not a url"), Err(Error::Invalid(_))));
        let c = Client::new("http://127.0.0.1:1/").unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
        let debug = format!(
            "{:?}",
            Client::builder("http://x").token("secret").build().unwrap()
        );
        assert!(!debug.contains("secret"), "{debug}");
    }
}
