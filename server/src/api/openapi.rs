//! The OpenAPI document: what utoipa derives from the handler annotations, plus
//! the request contract ([`crate::contract`]: patterns and bounds, some of them
//! from the configuration) and what every response shares (`x-request-id`, the
//! `internal` error), applied here in one place.
//!
//! Two versions exist. The canonical document ([`canonical_json`]) carries the
//! default configuration's bounds and no machine-dependent CPU ceiling; it is
//! `openapi/openapi.json`, the source of the SDKs. A running server serves
//! [`document`] for its own configuration at `/api/openapi.json`, so a client or
//! a fuzzer reading it sees exactly the bounds that server enforces.

use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use super::{admin, executions, functions, skyisland, system};
use crate::backend::{constraints, Constraints};
use crate::contract::{self, Bounds};
use crate::model::BackendKind;

/// The annotated operations and schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Skybridge",
        description = "A polyglot Function-as-a-Service runtime. Create a function, deploy it, invoke it.\n\n\
            Every error is `{\"error\": {\"code\", \"message\", \"field\"?}}` with a stable `code`; \
            every response carries an `x-request-id` header.",
        license(name = "Apache-2.0")
    ),
    paths(
        system::healthcheck, system::health, system::metrics,
        functions::create, functions::list, functions::get, functions::update, functions::delete,
        functions::deploy, functions::deployments,
        executions::invoke, executions::get, executions::logs, executions::list,
        skyisland::run,
        admin::api_stats, admin::list_sandboxes, admin::get_sandbox, admin::kill_sandbox,
        admin::kill_all_sandboxes, admin::list_addresses, admin::set_address,
        admin::list_network_addresses, admin::set_network_address,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    tags(
        (name = "functions", description = "Create, deploy and manage functions"),
        (name = "executions", description = "Invoke functions and read executions"),
        (name = "skyisland", description = "Sky Island compatible: run a Go call from a repository"),
        (name = "system", description = "Health and metrics"),
        (name = "admin", description = "Sky Island's admin API (needs the admin token): request statistics, running sandboxes, the IPv4 pool"),
    ),
    modifiers(&AdminSecurity)
)]
pub struct ApiDoc;

/// Declares the admin token scheme the admin operations require.
struct AdminSecurity;

impl utoipa::Modify for AdminSecurity {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            admin::SECURITY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Sky-Island-Token",
                "The admin token (`admin.api_token`), in the `admin.token_header` header \
                 (default `X-Sky-Island-Token`) or as `Authorization: Bearer <token>`",
            ))),
        );
    }
}

/// The document a server enforcing `bounds` serves. It stays JSON: the
/// contract uses JSON Schema 2020-12 keywords (`propertyNames`, `prefixItems`)
/// that utoipa's typed model does not carry.
pub fn document(bounds: &Bounds) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    apply_contract(&mut doc, bounds);
    apply_common_responses(&mut doc);
    doc
}

/// `openapi/openapi.json`: the canonical document, pretty-printed.
pub fn canonical_json() -> String {
    let mut s = serde_json::to_string_pretty(&document(&Bounds::canonical()))
        .expect("the OpenAPI document serializes");
    s.push('\n');
    s
}

/// `obj[k1][k2]…`, which must exist: a contract naming a schema or property
/// the code no longer has is a bug, caught by every test that builds the spec.
fn at<'a>(v: &'a mut Value, keys: &[&str]) -> &'a mut Value {
    keys.iter().fold(v, |v, k| {
        v.get_mut(*k)
            .unwrap_or_else(|| panic!("the OpenAPI document has no `{k}` in {keys:?}"))
    })
}

/// Merges `extra` into the object `v`.
fn merge(v: &mut Value, extra: Value) {
    let obj = v.as_object_mut().expect("an object schema");
    for (k, x) in extra.as_object().expect("an object").clone() {
        obj.insert(k, x);
    }
}

fn pattern(p: &contract::Pattern, max_chars: usize) -> Value {
    json!({"pattern": p.source(), "minLength": 1, "maxLength": max_chars})
}

/// The string property `prop` of a schema object.
fn prop<'a>(schema: &'a mut Value, prop: &str) -> &'a mut Value {
    at(schema, &["properties", prop])
}

/// The variant of the tagged `SourceSpec` union whose `type` is `tag`.
fn source_variant<'a>(schemas: &'a mut Value, tag: &str) -> &'a mut Value {
    at(schemas, &["SourceSpec", "oneOf"])
        .as_array_mut()
        .expect("SourceSpec is a oneOf")
        .iter_mut()
        .find(|v| v["properties"]["type"]["enum"][0] == tag)
        .unwrap_or_else(|| panic!("SourceSpec has no `{tag}` variant"))
}

fn apply_contract(doc: &mut Value, b: &Bounds) {
    let schemas = at(doc, &["components", "schemas"]);

    merge(
        prop(at(schemas, &["FunctionSpec"]), "name"),
        pattern(&contract::FUNCTION_NAME, 63),
    );
    for spec in ["FunctionSpec", "FunctionUpdate"] {
        let s = at(schemas, &[spec]);
        merge(s, json!({"allOf": backend_rules(b)}));
        if let Some(built) = &b.built_backends {
            let names: Vec<&str> = built.iter().map(|k| k.as_str()).collect();
            merge(prop(s, "backend"), json!({"enum": names}));
        }
        merge(
            prop(s, "env"),
            json!({
                "maxProperties": b.max_env_vars,
                "propertyNames": {"pattern": contract::ENV_NAME.source()},
                "additionalProperties": {"type": "string", "pattern": contract::NO_NUL.source()},
            }),
        );
        merge(
            prop(s, "warm_pool_size"),
            json!({"minimum": 0, "maximum": b.max_warm_pool_size}),
        );
    }
    let limits = at(schemas, &["LimitsSpec"]);
    merge(
        prop(limits, "memory_mb"),
        json!({"minimum": 1, "maximum": b.max_memory_mb}),
    );
    merge(
        prop(limits, "timeout_ms"),
        json!({"minimum": 1, "maximum": b.max_timeout_ms}),
    );
    let cpus = prop(limits, "cpus");
    merge(cpus, json!({"minimum": 0.01}));
    match b.max_cpus {
        Some(max) => merge(cpus, json!({"maximum": max})),
        None => merge(
            cpus,
            json!({"description": "CPU share in cores, at most the server's `limits.max_cpus` (default: the host's CPU count; the spec a server serves at `/api/openapi.json` states it)."}),
        ),
    }

    // serde refuses unknown fields in every source (`deny_unknown_fields`);
    // utoipa does not say so for the variants of a tagged enum.
    for tag in ["wasm", "go", "image"] {
        merge(
            source_variant(schemas, tag),
            json!({"additionalProperties": false}),
        );
    }
    let wasm = source_variant(schemas, "wasm");
    merge(
        prop(wasm, "module"),
        json!({"pattern": contract::WASM_MODULE.source(), "contentEncoding": "base64"}),
    );
    let go = source_variant(schemas, "go");
    go_properties(go, "repo", "ref");
    merge(
        prop(go, "package"),
        pattern(&contract::GO_PACKAGE, contract::MAX_PACKAGE_CHARS),
    );
    merge(
        prop(go, "handler"),
        pattern(&contract::GO_HANDLER, contract::MAX_HANDLER_CHARS),
    );
    merge(
        prop(go, "call"),
        pattern(&contract::GO_CALL, contract::MAX_CALL_CHARS),
    );
    // Exactly one of `handler` and `call` is a string; the other is absent or null.
    merge(
        go,
        json!({"oneOf": [
            {"required": ["handler"], "properties": {"handler": {"type": "string"}, "call": {"type": "null"}}},
            {"required": ["call"], "properties": {"call": {"type": "string"}, "handler": {"type": "null"}}},
        ]}),
    );
    let image = source_variant(schemas, "image");
    merge(
        prop(image, "image"),
        pattern(&contract::IMAGE_REF, contract::MAX_IMAGE_CHARS),
    );
    merge(
        prop(image, "user"),
        pattern(&contract::IMAGE_USER, contract::MAX_USER_CHARS),
    );
    let arg = json!({"type": "string", "pattern": contract::NO_NUL.source()});
    let mut program = arg.clone();
    merge(&mut program, json!({"minLength": 1}));
    merge(
        prop(image, "command"),
        json!({"minItems": 1, "prefixItems": [program], "items": arg}),
    );

    merge(
        prop(at(schemas, &["InvokeRequest"]), "callback_url"),
        json!({"pattern": contract::CALLBACK_URL.source(), "maxLength": contract::MAX_URL_CHARS}),
    );

    let si = at(schemas, &["SkyIslandRequest"]);
    go_properties(si, "url", "version");
    merge(
        prop(si, "call"),
        pattern(&contract::GO_CALL, contract::MAX_CALL_CHARS),
    );
    if let Some(k) = b.skyisland_backend.filter(|k| !b.gives_network(*k)) {
        merge(
            prop(si, "ip4"),
            json!({
                "enum": [false, null],
                "description": format!("The execution needs a network address. This server runs Sky Island calls on `{}`, which gives functions no network: only `false` (or absent).", k.as_str()),
            }),
        );
    }

    // Parameters: the name pattern on every `{name}`, page bounds, cursors.
    let paths = at(doc, &["paths"]);
    for (path, item) in paths.as_object_mut().expect("paths").iter_mut() {
        for (method, op) in item.as_object_mut().expect("a path item").iter_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params {
                let name = p["name"].as_str().unwrap_or_default().to_string();
                let schema = at(p, &["schema"]);
                match name.as_str() {
                    "name" => merge(schema, pattern(&contract::FUNCTION_NAME, 63)),
                    "limit" => {
                        let max = if path.ends_with("/executions") {
                            super::dto::MAX_EXECUTION_PAGE
                        } else {
                            super::dto::MAX_PAGE
                        };
                        merge(schema, json!({"minimum": 1, "maximum": max}));
                    }
                    "cursor" if path.ends_with("/executions") || path.ends_with("/deployments") => {
                        merge(schema, json!({"format": "uuid"}))
                    }
                    "cursor" | "id" | "status" | "cache_bust" | "state" => {}
                    other => panic!("no contract for parameter `{other}` of {method} {path}"),
                }
            }
        }
    }
}

/// One `if backend is K then …` rule per backend, from its [`Constraints`]:
/// the sources it builds, and what it cannot give (a network, a warm pool,
/// less than its minimum memory). The server refuses the same with
/// `unsupported_by_backend`.
fn backend_rules(b: &Bounds) -> Vec<Value> {
    BackendKind::ALL
        .into_iter()
        .map(|kind| {
            let c: Constraints = constraints(kind);
            let tags: Vec<&str> = c.sources.iter().map(|s| s.tag()).collect();
            let mut then = json!({"source": {"properties": {"type": {"enum": tags}}}});
            if !b.gives_network(kind) {
                merge(&mut then, json!({"network": {"const": false}}));
            }
            if !c.warm_pool {
                merge(&mut then, json!({"warm_pool_size": {"maximum": 0}}));
            }
            if c.min_memory_mb > 1 {
                merge(
                    &mut then,
                    json!({"limits": {"properties": {"memory_mb": {"minimum": c.min_memory_mb}}}}),
                );
            }
            json!({
                "if": {"properties": {"backend": {"const": kind.as_str()}}},
                "then": {"properties": then},
            })
        })
        .collect()
}

/// A repository URL and a git ref, as in Go sources and Sky Island requests.
fn go_properties(schema: &mut Value, repo: &str, git_ref: &str) {
    merge(
        prop(schema, repo),
        pattern(&contract::GO_REPO, contract::MAX_REPO_CHARS),
    );
    merge(
        prop(schema, git_ref),
        pattern(&contract::GIT_REF, contract::MAX_REF_CHARS),
    );
}

/// utoipa 5 writes a link's fields in snake case (`operation_id`); OpenAPI
/// names them in camel case (`operationId`), and tools ignore the others.
fn fix_link_keys(response: &mut Value) {
    let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) else {
        return;
    };
    for link in links.values_mut() {
        let link = link.as_object_mut().expect("a link");
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(snake) {
                link.insert(camel.into(), v);
            }
        }
    }
}

/// Every response carries `x-request-id`; every operation can fail with
/// `internal` (500) when the server has a bug or its store fails.
fn apply_common_responses(doc: &mut Value) {
    let header = json!({
        "description": "The request's id (the client's own `x-request-id`, or a new UUID); it is in the server log of this request.",
        "schema": {"type": "string"}
    });
    let internal = json!({
        "description": "`internal`: a bug or a failing store; the detail is in the server log, not the response",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    for item in at(doc, &["paths"])
        .as_object_mut()
        .expect("paths")
        .values_mut()
    {
        for op in item.as_object_mut().expect("a path item").values_mut() {
            let responses = at(op, &["responses"]).as_object_mut().expect("responses");
            responses.entry("500").or_insert_with(|| internal.clone());
            for response in responses.values_mut() {
                fix_link_keys(response);
                let headers = response
                    .as_object_mut()
                    .expect("a response")
                    .entry("headers")
                    .or_insert_with(|| Value::Object(Map::new()));
                headers
                    .as_object_mut()
                    .expect("headers")
                    .insert("x-request-id".into(), header.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        serde_json::from_str(&canonical_json()).unwrap()
    }

    #[test]
    fn operation_ids_are_unique_and_descriptive() {
        let doc = spec();
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_string());
            }
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "duplicate operationIds: {ids:?}");
        for id in &ids {
            assert!(
                id.len() > 6 && id.chars().next().unwrap().is_ascii_lowercase(),
                "`{id}` is not a descriptive camelCase verb-noun id"
            );
        }
        for id in [
            "listFunctions",
            "getExecution",
            "invokeFunction",
            "runSkyIsland",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} missing");
        }
    }

    #[test]
    fn every_ref_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r.clone());
                    }
                    o.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let doc = spec();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("a schema ref");
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
    }

    #[test]
    fn the_served_document_states_the_configured_bounds() {
        let mut config = crate::config::Config::default();
        config.limits.max_memory_mb = 4096;
        config.limits.max_cpus = 3.0;
        let doc = document(&Bounds::of(&config));
        let limits = &doc["components"]["schemas"]["LimitsSpec"]["properties"];
        assert_eq!(limits["memory_mb"]["maximum"], 4096);
        assert_eq!(limits["cpus"]["maximum"], 3.0);
        let canonical = spec();
        let limits = &canonical["components"]["schemas"]["LimitsSpec"]["properties"];
        assert_eq!(limits["memory_mb"]["maximum"], 1024);
        assert!(limits["cpus"].get("maximum").is_none(), "machine-dependent");
    }

    #[test]
    fn links_name_operations_that_exist() {
        let doc = spec();
        let mut ids = Vec::new();
        let mut targets = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].clone());
                for r in op["responses"].as_object().unwrap().values() {
                    if let Some(links) = r["links"].as_object() {
                        targets.extend(links.values().map(|l| l["operationId"].clone()));
                    }
                }
            }
        }
        assert!(targets.len() >= 10, "{targets:?}");
        for t in targets {
            assert!(ids.contains(&t), "link to {t}, which is no operation");
        }
    }

    #[test]
    fn every_response_has_the_request_id_and_every_operation_a_500() {
        let doc = spec();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("500"), "{}", op["operationId"]);
                for r in responses.values() {
                    assert!(r["headers"]["x-request-id"].is_object());
                }
            }
        }
    }
}
