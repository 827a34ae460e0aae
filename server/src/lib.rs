//! Skybridge: a polyglot Function-as-a-Service runtime.
//!
//! See `ARCHITECTURE.md` for the map: [`api`] (HTTP) → [`functions`] / [`executions`]
//! (services) → [`backend`] (one trait, one module per backend) and [`store`]
//! (persistence), with [`artifacts`] the on-disk cache, [`config`] the settings and
//! [`error`] the one place errors become HTTP.
#![deny(missing_docs)]

pub mod api;
pub mod artifacts;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod contract;
pub mod detach;
pub mod error;
pub mod executions;
pub mod functions;
pub mod gobuild;
pub mod metrics;
pub mod model;
pub mod sandboxes;
pub mod server;
pub mod store;
