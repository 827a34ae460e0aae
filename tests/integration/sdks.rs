//! The Node and Ruby SDKs' own test suites (`node --test`, minitest), run
//! against the real `skybridge` binary of this build; and the examples under
//! `examples/`, each run against a live server as a user would run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The addon built by `cargo build --workspace` (scripts/test.sh runs it),
/// copied where the SDK loads it from. Fails loudly when it was not built.
fn install_addon(lib: &str, dest: &Path) {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_skybridge"))
        .parent()
        .unwrap()
        .to_path_buf();
    let built = profile_dir.join(lib);
    assert!(
        built.exists(),
        "{} is not built: run `cargo build --workspace --all-targets` first (scripts/test.sh does)",
        built.display()
    );
    let fresh = std::fs::metadata(dest)
        .and_then(|d| Ok(d.modified()? >= std::fs::metadata(&built)?.modified()?))
        .unwrap_or(false);
    if !fresh {
        // Copy then rename: a process loading the old file keeps its mapping.
        let tmp = dest.with_extension("tmp");
        std::fs::copy(&built, &tmp).unwrap();
        std::fs::rename(&tmp, dest).unwrap();
    }
}

pub fn node_addon() {
    let platform = format!(
        "linux-{}",
        if cfg!(target_arch = "x86_64") {
            "x64"
        } else {
            "arm64"
        }
    );
    install_addon(
        "libskybridge_node.so",
        &repo_root().join(format!("sdk-node/skybridge.{platform}.node")),
    );
}

pub fn ruby_extension() {
    install_addon(
        "libskybridge_native.so",
        &repo_root().join("sdk-ruby/lib/skybridge/skybridge_native.so"),
    );
}

/// The environment the SDK test helpers need to start servers of their own.
fn sdk_test_env(cmd: &mut Command) -> &mut Command {
    guest_module();
    cmd.env("SKYBRIDGE_BIN", env!("CARGO_BIN_EXE_skybridge"))
        .env("SKYBRIDGE_GO", go_binary())
        .env(
            "SKYBRIDGE_TEST_GUEST",
            repo_root().join("target/test-modules/guest.wasm"),
        )
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn node_sdk_suite() {
    node_addon();
    let root = repo_root();
    tokio::task::spawn_blocking(move || {
        run(
            sdk_test_env(
                Command::new("node")
                    .args(["--test", "--test-concurrency=2", "test/"])
                    .current_dir(root.join("sdk-node")),
            ),
            "node --test (sdk-node/test)",
        )
    })
    .await
    .unwrap();
}

/// `index.d.ts` type-checks a program that uses the SDK, and refuses misuse.
#[test]
fn node_types_check_with_tsc_strict() {
    let tsc = std::env::var("TEST_TSC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".tools/typescript/node_modules/.bin/tsc"));
    assert!(
        tsc.exists(),
        "TypeScript is not installed: scripts/test.sh puts it in .tools/typescript (or set TEST_TSC_BIN)"
    );
    run(
        Command::new(tsc)
            .args(["-p", "test/tsconfig.json"])
            .current_dir(repo_root().join("sdk-node")),
        "tsc --strict on sdk-node/test/types.ts",
    );
}

#[tokio::test]
async fn ruby_sdk_suite_with_rbs_checking_every_call() {
    ruby_extension();
    let root = repo_root();
    tokio::task::spawn_blocking(move || {
        run(
            sdk_test_env(
                Command::new("ruby")
                    .args(["-r", "rbs/test/setup", "-Itest", "-e"])
                    .arg(r#"Dir["test/test_*.rb"].sort.each { |f| require_relative f }"#)
                    .current_dir(root.join("sdk-ruby"))
                    // Every call into Skybridge:: is checked against sig/.
                    .env("RBS_TEST_TARGET", "Skybridge::*")
                    .env("RBS_TEST_OPT", "-I sig")
                    .env("RBS_TEST_LOGLEVEL", "error"),
            ),
            "the Ruby SDK's minitest suite",
        )
    })
    .await
    .unwrap();
}

/// An example: deploys a Go function from a local repository, invokes it sync
/// and async, handles a not-found error, and prints what it did.
async fn run_example(cmd: &mut Command, what: &str) -> String {
    let s = TestServer::start(&[]).await;
    let repo = crate::gofunctions::GitRepo::from_dir(&repo_root().join("examples/go-functions"));
    cmd.env("SKYBRIDGE_URL", &s.base)
        .env("SKYBRIDGE_EXAMPLE_REPO", repo.url());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "geohash u4pruydqqvj8",
        "async Hello, Ada!",
        "not found: function_not_found",
    ] {
        assert!(
            stdout.contains(line),
            "{what} did not print `{line}`:\n{stdout}"
        );
    }
    stdout
}

#[tokio::test]
async fn node_example_runs() {
    node_addon();
    let dir = repo_root().join("examples/node-app");
    // Links the SDK from sdk-node (a file: dependency): no network.
    run(
        Command::new("npm")
            .args([
                "install",
                "--offline",
                "--no-audit",
                "--no-fund",
                "--silent",
            ])
            .current_dir(&dir),
        "npm install in examples/node-app",
    );
    run_example(
        Command::new("node").arg("index.js").current_dir(dir),
        "examples/node-app",
    )
    .await;
}

#[tokio::test]
async fn ruby_example_runs() {
    ruby_extension();
    let dir = repo_root().join("examples/ruby-app");
    run_example(
        Command::new("ruby")
            .arg(format!("-I{}", repo_root().join("sdk-ruby/lib").display()))
            .arg("app.rb")
            .current_dir(dir),
        "examples/ruby-app",
    )
    .await;
}

#[tokio::test]
async fn rust_example_runs() {
    let bin: PathBuf = Path::new(env!("CARGO_BIN_EXE_skybridge"))
        .parent()
        .unwrap()
        .join("rust-client");
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace --all-targets` first (scripts/test.sh does)",
        bin.display()
    );
    run_example(&mut Command::new(bin), "examples/rust-client").await;
}
