//! Deploys the Go functions in `examples/go-functions` from a local git
//! repository, invokes one synchronously and one asynchronously, and handles a
//! function that does not exist. Run a server first (`bash scripts/serve.sh`),
//! then `cargo run -p rust-client` (`SKYBRIDGE_URL` picks another server).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use skybridge_client::models::{BackendKind, FunctionSpec, SourceSpec};
use skybridge_client::{Client, Error};

/// A git repository holding `examples/go-functions` (or `SKYBRIDGE_EXAMPLE_REPO`'s).
fn local_repo() -> String {
    if let Ok(url) = std::env::var("SKYBRIDGE_EXAMPLE_REPO") {
        return url;
    }
    let dir = std::env::temp_dir().join(format!("go-functions-{}", std::process::id()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../go-functions");
    std::fs::create_dir_all(&dir).expect("a temp dir");
    for entry in std::fs::read_dir(src).expect("examples/go-functions") {
        let entry = entry.expect("a file");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copying");
    }
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=example",
            "-c",
            "user.email=example@example.com",
            "commit",
            "-qm",
            "functions",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .status()
            .expect("git");
        assert!(ok.success(), "git {args:?}");
    }
    format!("file://{}", dir.display())
}

fn go(name: &str, repo: &str, handler: &str) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        backend: BackendKind::Wasm,
        source: SourceSpec::Go {
            repo: repo.into(),
            r#ref: None,
            package: None,
            handler: Some(handler.into()),
            call: None,
        },
        env: None,
        limits: None,
        network: None,
        warm_pool_size: None,
    }
}

async fn run(client: &Client, geo: &str, hello: &str) -> skybridge_client::Result<()> {
    let repo = local_repo();
    client.create_function(&go(geo, &repo, "Encode")).await?;
    client.create_function(&go(hello, &repo, "Hello")).await?;
    for name in [geo, hello] {
        if let Err(Error::DeploymentFailed { deployment, .. }) =
            client.deploy_and_wait(name, false).await
        {
            eprintln!("{}", deployment.build_log);
            std::process::exit(1);
        }
    }

    // Sync: the finished execution.
    let run = client.invoke(geo, (57.64911, 10.40744)).await?;
    println!(
        "geohash {} ({} ms)",
        run.output
            .and_then(|o| o.as_str().map(str::to_string))
            .unwrap_or_default(),
        run.duration_ms.unwrap_or_default()
    );

    // Async: queued at once, then waited for.
    let queued = client.invoke_async(hello, "Ada").await?;
    let done = client.wait_for(queued.id, Duration::from_secs(30)).await?;
    println!(
        "async {}",
        done.output
            .and_then(|o| o.as_str().map(str::to_string))
            .unwrap_or_default()
    );

    // Errors carry the API's code.
    match client.get_function("no-such-function").await {
        Err(e) if e.is("function_not_found") => println!(
            "not found: {} (request {})",
            e.code(),
            e.request_id().unwrap_or("-")
        ),
        other => panic!("expected function_not_found, got {other:?}"),
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let client = Client::from_env().expect("SKYBRIDGE_URL is a URL");
    let suffix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let (geo, hello) = (format!("rust-geo-{suffix}"), format!("rust-hello-{suffix}"));
    let result = run(&client, &geo, &hello).await;
    for name in [&geo, &hello] {
        let _ = client.delete_function(name).await;
    }
    if let Err(e) = result {
        eprintln!("error[{}]: {e}", e.code());
        std::process::exit(1);
    }
}
