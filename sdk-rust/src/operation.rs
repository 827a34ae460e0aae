//! Operations as data, responses, and the retry policy.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    pub(crate) fn http(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// What a successful response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// A JSON body.
    Json,
    /// A text body.
    Text,
    /// No body.
    Empty,
}

/// One operation of the API, as the OpenAPI document describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationSpec {
    /// `operationId`, e.g. `listFunctions`.
    pub id: &'static str,
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/api/v1/functions/{name}`.
    pub path: &'static str,
    /// Path parameters, in path order.
    pub path_params: &'static [&'static str],
    /// Query parameters.
    pub query_params: &'static [&'static str],
    /// Whether it takes a JSON body.
    pub body: bool,
    /// What success returns.
    pub response: ResponseKind,
    /// Whether repeating it cannot change the outcome (GET, PUT, DELETE): such
    /// calls are retried on 429, 503 and failures after sending.
    pub idempotent: bool,
}

impl OperationSpec {
    /// The operation with this `operationId`.
    pub fn find(id: &str) -> Option<&'static OperationSpec> {
        crate::generated::operations::ALL
            .iter()
            .copied()
            .find(|o| o.id == id)
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status (2xx).
    pub status: u16,
    /// The response's `x-request-id`.
    pub request_id: Option<String>,
    /// The body as received.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            status: self.status,
            message: e.to_string(),
            request_id: self.request_id.clone(),
        })
    }

    /// The body as text.
    pub fn text(&self) -> Result<String> {
        String::from_utf8(self.body.to_vec()).map_err(|e| Error::Decode {
            status: self.status,
            message: e.to_string(),
            request_id: self.request_id.clone(),
        })
    }
}

/// A body as JSON bytes.
pub(crate) fn to_json<T: serde::Serialize>(body: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(body)
        .map_err(|e| Error::Invalid(format!("the body does not serialize: {e}")))
}

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// No connection was made; nothing was sent.
    NotConnected,
    /// Sent, then the connection failed or the attempt timed out: the server
    /// may have acted on it.
    LostAfterSend,
    /// The server answered with this status (and maybe `Retry-After`).
    Answered(u16),
}

/// Whether to try again after `attempt`. A request that never left is always
/// safe to repeat; one that may have reached the server only when repeating it
/// cannot change the outcome; 429 and 503 say "later", other statuses are final.
pub(crate) fn should_retry(idempotent: bool, attempt: Attempt) -> bool {
    match attempt {
        Attempt::NotConnected => true,
        Attempt::LostAfterSend => idempotent,
        Attempt::Answered(429 | 503) => idempotent,
        Attempt::Answered(_) => false,
    }
}

/// The longest a `Retry-After` is honoured for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The wait before retry number `retry` (1 for the first): exponential from
/// `base`, capped at `max`, with full jitter (uniform in `[0, d]`) so that
/// clients that failed together do not come back together. A server's
/// `Retry-After` wins when it asks for longer (up to 30 s).
pub(crate) fn backoff(
    retry: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
    let capped = exp.min(max);
    let jittered = capped.mul_f64(fastrand::f64());
    match retry_after {
        Some(ra) => ra.min(MAX_RETRY_AFTER).max(jittered),
        None => jittered,
    }
}

/// `Retry-After` as seconds (the HTTP-date form is read as "now").
pub(crate) fn retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let v = value?.to_str().ok()?.trim();
    match v.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => Some(Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_repeats_are_retried() {
        for idempotent in [true, false] {
            assert!(should_retry(idempotent, Attempt::NotConnected));
            assert_eq!(should_retry(idempotent, Attempt::LostAfterSend), idempotent);
            assert_eq!(should_retry(idempotent, Attempt::Answered(503)), idempotent);
            assert_eq!(should_retry(idempotent, Attempt::Answered(429)), idempotent);
            for final_status in [200, 400, 404, 409, 422, 500, 504] {
                assert!(!should_retry(idempotent, Attempt::Answered(final_status)));
            }
        }
    }

    #[test]
    fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for retry in 1..20 {
            for _ in 0..50 {
                let d = backoff(retry, base, max, None);
                let ceiling = (base * 2u32.pow((retry - 1).min(16))).min(max);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            }
        }
        let spread: std::collections::BTreeSet<u128> = (0..50)
            .map(|_| backoff(3, base, max, None).as_micros())
            .collect();
        assert!(spread.len() > 10, "jitter spreads the waits");
        assert_eq!(
            backoff(1, base, max, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            backoff(1, base, max, Some(Duration::from_secs(3600))),
            MAX_RETRY_AFTER
        );
        let hv = reqwest::header::HeaderValue::from_static("7");
        assert_eq!(retry_after(Some(&hv)), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(None), None);
    }
}
