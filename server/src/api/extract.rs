//! Extractors whose rejections use the API's error shape instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::AppError;

/// `Json<T>` with `invalid_json` / `invalid_body` / `payload_too_large` errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(AppError::from_json_rejection(
                r,
                state.config.server.max_body_bytes,
            )),
        }
    }
}

/// `Path<T>` with `invalid_parameter` errors.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(AppError::from)
    }
}

/// `Query<T>` with `invalid_parameter` errors.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(AppError::from)
    }
}

/// A JSON body read whatever the `Content-Type` claims, for clients that send
/// JSON without saying so: Sky Island's Python client (no header), its Go
/// client (none), `curl -d` (`application/x-www-form-urlencoded`), `fetch` with
/// a string body (`text/plain`). A type that is clearly something else
/// (`multipart/form-data`, `application/xml`, …) is still refused with 415.
pub struct LenientJson<T>(pub T);

/// Media types [`LenientJson`] reads as JSON (besides none at all).
const LENIENT_TYPES: [&str; 4] = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
];

impl<T: DeserializeOwned> FromRequest<AppState> for LenientJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let text = value.to_str().unwrap_or("");
            let essence = text
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let ok = essence.is_empty()
                || LENIENT_TYPES.contains(&essence.as_str())
                || essence.ends_with("+json");
            if !ok {
                return Err(AppError::UnsupportedMediaType(format!(
                    "expected a JSON body (Content-Type application/json, text/plain, or none), got `{text}`"
                )));
            }
        }
        let limit = state.config.server.max_body_bytes;
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge { limit }
                } else {
                    AppError::InvalidJson(e.body_text())
                }
            })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => AppError::InvalidBody(if path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                }),
                _ => AppError::InvalidJson(inner.to_string()),
            }
        })?;
        de.end().map_err(|e| AppError::InvalidJson(e.to_string()))?;
        Ok(LenientJson(value))
    }
}
