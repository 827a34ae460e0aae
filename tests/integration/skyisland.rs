//! `POST /api/v1/function` as Sky Island's own clients call it: the bytes and
//! headers they put on the wire (no `Content-Type`, curl's form type), its
//! `ip4` and `version` fields, and fields it does not know.

use serde_json::json;

use crate::common::*;
use crate::gofunctions::GitRepo;

/// A request exactly as `requests.post(endpoint, json.dumps(call))` sends it
/// (Sky Island's Python client, requests 2.x): no `Content-Type`.
fn python_client(base: &str, body: &str) -> Vec<u8> {
    let host = base.strip_prefix("http://").unwrap();
    format!(
        "POST /api/v1/function HTTP/1.1\r\nHost: {host}\r\nUser-Agent: python-requests/2.31.0\r\n\
         Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A request exactly as Sky Island's Go client sends it: `http.NewRequest`
/// with a raw string body and no headers of its own.
fn go_client(base: &str, body: &str) -> Vec<u8> {
    let host = base.strip_prefix("http://").unwrap();
    format!(
        "POST /api/v1/function HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Content-Length: {}\r\nAccept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sky Island's README: `curl --silent -XPOST … -d '{…}'`, which labels the
/// body as a form.
fn curl_readme(base: &str, body: &str) -> Vec<u8> {
    let host = base.strip_prefix("http://").unwrap();
    format!(
        "POST /api/v1/function HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\
         Content-Length: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A raw request with a given `Content-Type`.
fn with_type(base: &str, content_type: &str, body: &str) -> Vec<u8> {
    let host = base.strip_prefix("http://").unwrap();
    format!(
        "POST /api/v1/function HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn the_bytes_sky_islands_clients_send_are_answered() {
    let repo = GitRepo::from_fixture("gofuncs");
    let s = TestServer::start(&[]).await;
    let url = repo.url();

    // Python: json.dumps of the Call object, ", " and ": " separators.
    let body = format!(r#"{{"url": "{url}", "call": "Greet(\"Ada\")"}}"#);
    let (st, b) = raw_http(&s.base, python_client(&s.base, &body)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["data"], "Hello, Ada!<nil>");
    assert!(b["timestamp"].as_i64().unwrap() > 1_700_000_000);

    // Go: fmt.Sprintf(`{"url": "%s", "call": "%s"}`, url, call).
    let body = format!(r#"{{"url": "{url}", "call": "Add(2, 40)"}}"#);
    let (st, b) = raw_http(&s.base, go_client(&s.base, &body)).await;
    assert_eq!((st, &b["data"]), (200, &json!("42")), "{b}");

    // curl from Sky Island's README, with its cache_bust example.
    let body = format!(r#"{{"url": "{url}", "call": "Add(1, 2)", "cache_bust": true}}"#);
    let (st, b) = raw_http(&s.base, curl_readme(&s.base, &body)).await;
    assert_eq!((st, &b["data"]), (200, &json!("3")), "{b}");

    // fetch(url, {method: "POST", body: JSON.stringify(…)}): text/plain.
    let body = format!(r#"{{"url":"{url}","call":"Add(3, 4)"}}"#);
    let (st, b) = raw_http(
        &s.base,
        with_type(&s.base, "text/plain;charset=UTF-8", &body),
    )
    .await;
    assert_eq!((st, &b["data"]), (200, &json!("7")), "{b}");

    // Sky Island's full request: ip4 false, version, and fields it never had
    // (ignored here, as its Go server ignored them).
    let body = format!(
        r#"{{"url": "{url}", "call": "Add(5, 5)", "ip4": false, "cache_bust": false, "version": "main", "timeout": 3, "tags": ["x"]}}"#
    );
    let (st, b) = raw_http(&s.base, python_client(&s.base, &body)).await;
    assert_eq!((st, &b["data"]), (200, &json!("10")), "{b}");
    // null is "not set", as Go's encoding/json reads it.
    let body =
        format!(r#"{{"url": "{url}", "call": "Add(6, 6)", "ip4": null, "cache_bust": null}}"#);
    let (st, b) = raw_http(&s.base, go_client(&s.base, &body)).await;
    assert_eq!((st, &b["data"]), (200, &json!("12")), "{b}");

    // ip4 on the wasm backend is refused, saying why and what to do.
    let body = format!(r#"{{"url": "{url}", "call": "Add(1, 1)", "ip4": true}}"#);
    let (st, b) = raw_http(&s.base, python_client(&s.base, &body)).await;
    assert_eq!((st, error_code(&b)), (422, "unsupported_by_backend"), "{b}");
    assert_eq!(b["error"]["field"], "ip4");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wasm") && message.contains("no network") && message.contains("docker"),
        "{message}"
    );

    // Wrong types and clearly non-JSON bodies still get clear errors.
    for (content_type, body, status, code) in [
        (
            "application/json",
            format!(r#"{{"url": "{url}", "call": "Add(1, 1)", "ip4": ""}}"#),
            400,
            "bad_request",
        ),
        (
            "application/json",
            format!(r#"{{"url": "{url}", "call": "Add(1, 1)", "ip4": "true"}}"#),
            400,
            "bad_request",
        ),
        (
            "text/plain",
            "url=x&call=y".to_string(),
            400,
            "invalid_json",
        ),
        (
            "application/xml",
            "<call/>".to_string(),
            415,
            "unsupported_media_type",
        ),
        (
            "multipart/form-data; boundary=x",
            "--x--".to_string(),
            415,
            "unsupported_media_type",
        ),
    ] {
        let (st, b) = raw_http(&s.base, with_type(&s.base, content_type, &body)).await;
        assert_eq!(
            (st, error_code(&b)),
            (status, code),
            "{content_type} {body}: {b}"
        );
    }
}

#[tokio::test]
async fn version_picks_the_git_ref_to_build() {
    let repo = GitRepo::from_fixture("gofuncs");
    repo.tag("v1");
    repo.write_and_commit(
        "funcs.go",
        &std::fs::read_to_string(repo_root().join("tests/fixtures/gofuncs/funcs.go"))
            .unwrap()
            .replace("return a + b", "return a + b + 1000"),
    );
    let s = TestServer::start(&[]).await;
    let run = |version: Option<&str>| {
        let mut body = json!({"url": repo.url(), "call": "Add(1, 2)"});
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        body
    };
    let (st, b) = s.post("/api/v1/function", &run(Some("v1"))).await;
    assert_eq!((st, &b["data"]), (200, &json!("3")), "{b}");
    let (st, b) = s.post("/api/v1/function", &run(None)).await;
    assert_eq!((st, &b["data"]), (200, &json!("1003")), "HEAD: {b}");
    let (st, b) = s.post("/api/v1/function", &run(Some("v1"))).await;
    assert_eq!((st, &b["data"]), (200, &json!("3")), "v1 stays v1: {b}");
    let (st, b) = s.post("/api/v1/function", &run(Some("v9"))).await;
    assert_eq!((st, error_code(&b)), (422, "deployment_failed"), "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("v9"),
        "{b}"
    );
}

#[tokio::test]
async fn ip4_gives_a_docker_execution_a_network_address() {
    let repo = GitRepo::from_fixture("gonet");
    let s = TestServer::start(&[("FAAS_DEFAULT_RUNTIME", "docker")]).await;
    let call = |ip4: bool| json!({"url": repo.url(), "call": "Addresses()", "ip4": ip4});

    let (st, b) = s.post("/api/v1/function", &call(false)).await;
    assert_eq!(
        (st, &b["data"]),
        (200, &json!("none")),
        "no network by default: {b}"
    );

    let (st, b) = s.post("/api/v1/function", &call(true)).await;
    assert_eq!(st, 200, "{b}");
    let addr: std::net::Ipv4Addr = b["data"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("one IPv4 address from the engine's pool: {b}"));
    assert!(!addr.is_loopback() && addr.is_private(), "{addr}");

    // The ip4 function is its own function, with a network; the other has none.
    let (_, list) = s.get("/api/v1/functions").await;
    let networks: Vec<bool> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["network"].as_bool().unwrap())
        .collect();
    assert_eq!(networks.len(), 2, "{list}");
    assert!(
        networks.contains(&true) && networks.contains(&false),
        "{list}"
    );
}
