//! A client for [Skybridge](https://github.com/skybridge), a Function-as-a-Service
//! runtime: create a function, deploy it, invoke it.
//!
//! The models and the one method per API operation are generated from the
//! server's OpenAPI document (`openapi/openapi.json`, by `cargo xtask
//! codegen`); this crate adds the client around them (timeouts, retries,
//! errors), pagination as streams and a few helpers. The Node and Ruby SDKs
//! are built on it.
//!
//! ```no_run
//! use skybridge_client::{Client, models::*};
//!
//! # async fn run() -> skybridge_client::Result<()> {
//! // SKYBRIDGE_URL (default http://127.0.0.1:3280), SKYBRIDGE_TOKEN.
//! let client = Client::from_env()?;
//! client
//!     .create_function(&FunctionSpec {
//!         name: "geo".into(),
//!         backend: BackendKind::Wasm,
//!         source: SourceSpec::Go {
//!             repo: "github.com/mmcloughlin/geohash".into(),
//!             r#ref: None,
//!             package: None,
//!             handler: Some("Encode".into()),
//!             call: None,
//!         },
//!         env: None,
//!         limits: None,
//!         network: None,
//!         warm_pool_size: None,
//!     })
//!     .await?;
//! client.deploy_and_wait("geo", false).await?;
//! let run = client.invoke("geo", (57.64911, 10.40744)).await?;
//! println!("{:?}", run.output);
//! # Ok(()) }
//! ```
//!
//! Errors: [`Error::Api`] ([`ApiError`]) carries the API's `status`, stable `code`,
//! `message`, `field` and the response's `x-request-id`; transport failures
//! have their own variants. Calls are retried with exponential backoff and
//! jitter when nothing was sent (connection refused), and for idempotent
//! operations (GET, PUT, DELETE) also after 429, 503 or a connection lost
//! mid-request; `invoke`, `create` and `deploy` are never repeated once sent.
#![deny(missing_docs)]

mod client;
mod error;
mod generated;
mod helpers;
pub mod operation;
pub mod pagination;

pub use client::{Client, ClientBuilder, RequestOptions, DEFAULT_URL};
pub use error::{ApiError, Error, Result};
pub use generated::operations;
pub use helpers::{is_final, is_ready};
/// The `chrono` and `uuid` crates, whose types the models use.
pub use {chrono, uuid};

/// The API's models, generated from the OpenAPI document.
pub mod models {
    pub use crate::generated::*;
}
