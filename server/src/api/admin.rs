//! Sky Island's admin API, behind the admin token: request statistics, the
//! running sandboxes of every backend (list, inspect, kill), and the jail
//! backend's IPv4 pool.
//!
//! The token is `admin.api_token` (env `SKYBRIDGE_ADMIN_API_TOKEN`), sent in
//! `admin.token_header` (default `X-Sky-Island-Token`) or as
//! `Authorization: Bearer`. No token: 401; a wrong one: 403; no token
//! configured: 403 saying how to enable the API. Comparison is constant-time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::AppState;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::sandboxes::SandboxInfo;
use skybridge_jail::ip_pool::{IpInfo, IpState, PoolError};

/// Name of the admin security scheme in the spec.
pub const SECURITY_SCHEME: &str = "adminToken";

/// Proof that a request carried the admin token: an admin handler takes one.
pub struct Admin;

/// Whether `given` is `expected`, in time independent of where they differ
/// (both are hashed first, so not even their lengths leak).
fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, AppError> {
        let cfg = &s.config.admin;
        if cfg.api_token.is_empty() {
            return Err(AppError::AdminDisabled);
        }
        let header = parts
            .headers
            .get(cfg.token_header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        match header.or(bearer) {
            None | Some("") => Err(AppError::AdminTokenMissing(cfg.token_header.clone())),
            Some(token) if token_matches(token, &cfg.api_token) => Ok(Admin),
            Some(_) => Err(AppError::AdminTokenInvalid),
        }
    }
}

/// Request counts and times of one route.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RouteStats {
    /// HTTP method.
    pub method: String,
    /// The route as declared (`/api/v1/functions/{name}`), or `unmatched`.
    pub route: String,
    /// Requests answered.
    #[schema(minimum = 0)]
    pub count: u64,
    /// Of them, answered with a 4xx status.
    #[schema(minimum = 0)]
    pub client_errors: u64,
    /// Of them, answered with a 5xx status.
    #[schema(minimum = 0)]
    pub server_errors: u64,
    /// Mean time to the response, ms.
    #[schema(minimum = 0)]
    pub mean_ms: f64,
    /// Longest time to the response, ms.
    #[schema(minimum = 0)]
    pub max_ms: f64,
    /// Sum of the times, ms.
    #[schema(minimum = 0)]
    pub total_ms: f64,
}

/// Request statistics since the server started.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiStatsReport {
    /// When counting began (the server's start).
    pub since: DateTime<Utc>,
    /// Requests answered, all routes.
    #[schema(minimum = 0)]
    pub total_requests: u64,
    /// Per route, most requested first.
    pub routes: Vec<RouteStats>,
}

#[derive(Default, Clone, Copy)]
struct Counter {
    count: u64,
    client_errors: u64,
    server_errors: u64,
    total: Duration,
    max: Duration,
}

/// Per-route counters, fed by the request middleware.
pub struct ApiStats {
    since: DateTime<Utc>,
    routes: Mutex<BTreeMap<(String, String), Counter>>,
}

impl Default for ApiStats {
    fn default() -> Self {
        Self {
            since: crate::model::now(),
            routes: Mutex::default(),
        }
    }
}

impl ApiStats {
    /// Counts one answered request.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock().expect("stats lock");
        let c = routes
            .entry((method.to_string(), route.to_string()))
            .or_default();
        c.count += 1;
        c.client_errors += u64::from((400..500).contains(&status));
        c.server_errors += u64::from(status >= 500);
        c.total += elapsed;
        c.max = c.max.max(elapsed);
    }

    /// The statistics now.
    pub fn report(&self) -> ApiStatsReport {
        let routes = self.routes.lock().expect("stats lock").clone();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut out: Vec<RouteStats> = routes
            .into_iter()
            .map(|((method, route), c)| RouteStats {
                method,
                route,
                count: c.count,
                client_errors: c.client_errors,
                server_errors: c.server_errors,
                mean_ms: ms(c.total) / c.count.max(1) as f64,
                max_ms: ms(c.max),
                total_ms: ms(c.total),
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.route.cmp(&b.route)));
        ApiStatsReport {
            since: self.since,
            total_requests: out.iter().map(|r| r.count).sum(),
            routes: out,
        }
    }
}

/// Request counts and times per route since the server started.
#[utoipa::path(get, path = "/api/v1/admin/api-stats", operation_id = "getApiStats", tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Statistics", body = ApiStatsReport),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled` (no `admin.api_token` configured)", body = ErrorBody),
    ))]
pub async fn api_stats(_: Admin, State(s): State<AppState>) -> Json<ApiStatsReport> {
    Json(s.api_stats.report())
}

/// Running sandboxes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SandboxList {
    /// Every sandbox running an execution, oldest first.
    pub items: Vec<SandboxInfo>,
}

/// Every sandbox running an execution, on every backend (jails, containers,
/// wasm instances).
#[utoipa::path(get, path = "/api/v1/admin/jails", operation_id = "listSandboxes", tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Running sandboxes", body = SandboxList),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
    ))]
pub async fn list_sandboxes(_: Admin, State(s): State<AppState>) -> Json<SandboxList> {
    Json(SandboxList {
        items: s.sandboxes.list(),
    })
}

/// One running sandbox; its id is its execution's.
#[utoipa::path(get, path = "/api/v1/admin/jail/{id}", operation_id = "getSandbox", tag = "admin",
    security(("adminToken" = [])),
    params(("id" = Uuid, Path, description = "The sandbox's id: its execution's id")),
    responses(
        (status = 200, description = "The sandbox", body = SandboxInfo),
        (status = 400, description = "`invalid_parameter`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
        (status = 404, description = "`sandbox_not_found`: no running sandbox has this id (it may have ended)", body = ErrorBody),
    ))]
pub async fn get_sandbox(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<SandboxInfo>> {
    s.sandboxes
        .get(id)
        .map(Json)
        .ok_or_else(|| AppError::SandboxNotFound(id.to_string()))
}

/// Kills one sandbox: its execution ends `failed` with reason `killed`.
#[utoipa::path(delete, path = "/api/v1/admin/jail/{id}", operation_id = "killSandbox", tag = "admin",
    security(("adminToken" = [])),
    params(("id" = Uuid, Path, description = "The sandbox's id: its execution's id")),
    responses(
        (status = 200, description = "The sandbox, now being killed", body = SandboxInfo),
        (status = 400, description = "`invalid_parameter`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
        (status = 404, description = "`sandbox_not_found`", body = ErrorBody),
    ))]
pub async fn kill_sandbox(
    _: Admin,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<SandboxInfo>> {
    let info = s
        .sandboxes
        .kill(id)
        .ok_or_else(|| AppError::SandboxNotFound(id.to_string()))?;
    tracing::warn!(sandbox = %id, function = %info.function, "sandbox killed through the admin API");
    Ok(Json(info))
}

/// Kills every running sandbox.
#[utoipa::path(delete, path = "/api/v1/admin/jails", operation_id = "killAllSandboxes", tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The sandboxes now being killed", body = SandboxList),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
    ))]
pub async fn kill_all_sandboxes(_: Admin, State(s): State<AppState>) -> Json<SandboxList> {
    let items = s.sandboxes.kill_all();
    if !items.is_empty() {
        tracing::warn!(
            count = items.len(),
            "every sandbox killed through the admin API"
        );
    }
    Json(SandboxList { items })
}

/// Whether an address can be leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AddressState {
    /// Free to lease.
    Available,
    /// Leased to an execution or a warm sandbox, or taken out by an administrator.
    Unavailable,
}

impl From<AddressState> for IpState {
    fn from(s: AddressState) -> Self {
        match s {
            AddressState::Available => IpState::Available,
            AddressState::Unavailable => IpState::Unavailable,
        }
    }
}

/// One address of the pool.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Address {
    /// The address.
    #[schema(format = Ipv4)]
    pub ip: String,
    /// Available or not.
    pub state: AddressState,
    /// Who holds it while leased: an execution id, or `warm` for a warm sandbox.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Taken out of the pool by an administrator (`PUT` with `unavailable`).
    pub reserved: bool,
}

impl From<IpInfo> for Address {
    fn from(i: IpInfo) -> Self {
        Self {
            ip: i.ip.to_string(),
            state: match i.state {
                IpState::Available => AddressState::Available,
                IpState::Unavailable => AddressState::Unavailable,
            },
            holder: i.holder,
            reserved: i.reserved,
        }
    }
}

/// Addresses of the pool.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressList {
    /// The bridge the pool's addresses live on.
    pub bridge: String,
    /// The addresses, in order.
    pub items: Vec<Address>,
}

/// `?state=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AddressQuery {
    /// Only addresses in this state.
    pub state: Option<AddressState>,
}

/// `PUT` body: take an address out of the pool, or put it back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAddress {
    /// An address of the pool.
    #[schema(format = Ipv4)]
    pub ip: String,
    /// `unavailable` takes it out (an execution holding it keeps it until it
    /// ends); `available` puts it back (refused while an execution holds it).
    pub state: AddressState,
}

fn pool(s: &AppState) -> AppResult<&std::sync::Arc<skybridge_jail::ip_pool::IpPool>> {
    s.ip_pool.as_ref().ok_or(AppError::IpPoolNotConfigured)
}

/// The addresses of the jail backend's IPv4 pool (Sky Island's README path).
#[utoipa::path(get, path = "/api/v1/admin/ips", operation_id = "listAddresses", tag = "admin",
    security(("adminToken" = [])),
    params(AddressQuery),
    responses(
        (status = 200, description = "The addresses", body = AddressList),
        (status = 400, description = "`invalid_parameter`: `state` is neither `available` nor `unavailable`", body = ErrorBody),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
        (status = 409, description = "`ip_pool_not_configured`: `[jail.ip4]` sets no bridge, or the jail backend is unavailable", body = ErrorBody),
    ))]
pub async fn list_addresses(
    _: Admin,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AddressQuery>,
) -> AppResult<Json<AddressList>> {
    let pool = pool(&s)?;
    Ok(Json(AddressList {
        bridge: pool.config().bridge.clone(),
        items: pool
            .list(q.state.map(IpState::from))
            .into_iter()
            .map(Address::from)
            .collect(),
    }))
}

/// Takes an address out of the pool or puts it back (Sky Island's README path).
#[utoipa::path(put, path = "/api/v1/admin/ips", operation_id = "setAddressState", tag = "admin",
    security(("adminToken" = [])),
    request_body = SetAddress,
    responses(
        (status = 200, description = "The address now", body = Address),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
        (status = 409, description = "`ip_in_use`: an execution holds it; `ip_pool_not_configured`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`; `validation_failed` (`field`: `ip`): not an IPv4 address, or not in the pool", body = ErrorBody),
    ))]
pub async fn set_address(
    _: Admin,
    State(s): State<AppState>,
    ApiJson(req): ApiJson<SetAddress>,
) -> AppResult<Json<Address>> {
    let pool = pool(&s)?;
    let ip: std::net::Ipv4Addr = req
        .ip
        .parse()
        .map_err(|_| AppError::validation("ip", format!("`{}` is not an IPv4 address", req.ip)))?;
    match pool.set_state(ip, req.state.into()) {
        Ok(info) => {
            tracing::info!(%ip, state = ?req.state, "IPv4 pool address changed through the admin API");
            Ok(Json(info.into()))
        }
        Err(e @ PoolError::NotInPool(_)) => Err(AppError::validation("ip", e.to_string())),
        Err(e @ PoolError::InUse(..)) => Err(AppError::IpInUse(e.to_string())),
        Err(e) => Err(AppError::Internal(e.into())),
    }
}

/// The same as `GET /api/v1/admin/ips`, at the path Sky Island's code served.
#[utoipa::path(get, path = "/api/v1/admin/network/ips", operation_id = "listNetworkAddresses", tag = "admin",
    security(("adminToken" = [])),
    params(AddressQuery),
    responses(
        (status = 200, description = "The addresses", body = AddressList),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
        (status = 409, description = "`ip_pool_not_configured`", body = ErrorBody),
    ))]
pub async fn list_network_addresses(
    admin: Admin,
    state: State<AppState>,
    query: ApiQuery<AddressQuery>,
) -> AppResult<Json<AddressList>> {
    list_addresses(admin, state, query).await
}

/// The same as `PUT /api/v1/admin/ips`, at the path Sky Island's code served.
#[utoipa::path(put, path = "/api/v1/admin/network/ip", operation_id = "setNetworkAddressState", tag = "admin",
    security(("adminToken" = [])),
    request_body = SetAddress,
    responses(
        (status = 200, description = "The address now", body = Address),
        (status = 400, description = "`invalid_json`", body = ErrorBody),
        (status = 401, description = "`admin_token_required`", body = ErrorBody),
        (status = 403, description = "`admin_token_invalid`; `admin_disabled`", body = ErrorBody),
        (status = 409, description = "`ip_in_use`; `ip_pool_not_configured`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`; `validation_failed` (`field`: `ip`)", body = ErrorBody),
    ))]
pub async fn set_network_address(
    admin: Admin,
    state: State<AppState>,
    body: ApiJson<SetAddress>,
) -> AppResult<Json<Address>> {
    set_address(admin, state, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("s3cret ", "s3cret"));
        assert!(!token_matches("", "s3cret"));
    }

    #[test]
    fn stats_count_per_route_and_status_class() {
        let s = ApiStats::default();
        s.record("GET", "/a", 200, Duration::from_millis(2));
        s.record("GET", "/a", 404, Duration::from_millis(4));
        s.record("POST", "/b", 503, Duration::from_millis(1));
        let r = s.report();
        assert_eq!(r.total_requests, 3);
        let a = &r.routes[0];
        assert_eq!(
            (a.method.as_str(), a.route.as_str(), a.count),
            ("GET", "/a", 2)
        );
        assert_eq!((a.client_errors, a.server_errors), (1, 0));
        assert!((a.mean_ms - 3.0).abs() < 0.01 && (a.max_ms - 4.0).abs() < 0.01);
        assert_eq!(r.routes[1].server_errors, 1);
    }
}
