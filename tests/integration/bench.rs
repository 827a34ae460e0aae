//! `skybridge bench` itself, with tiny counts: the command that checks the
//! speed targets must keep running from a fresh clone. Its figures are not
//! judged here (timed tests on a shared machine say nothing); that every
//! table and verdict comes out is.

use std::process::Command;

use crate::common::{go_binary, hello_module, repo_root};
use crate::gofunctions::GitRepo;

#[test]
fn the_bench_command_prints_every_table_and_verdict() {
    let scratch = tempfile::tempdir().unwrap();
    let module = scratch.path().join("hello.wasm");
    std::fs::write(&module, hello_module()).unwrap();
    let repo = GitRepo::from_dir(&repo_root().join("examples/go-functions"));
    let out = Command::new(env!("CARGO_BIN_EXE_skybridge"))
        .arg("bench")
        .arg("--module")
        .arg(&module)
        .args(["--requests", "20", "--concurrency", "1,4"])
        .args(["--go-repo", &repo.url()])
        .args(["--jail-requests", "10", "--rss-calls", "200"])
        .env("SKYBRIDGE_GO", go_binary())
        .env("SKYBRIDGE_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The jail rows too: these tests run as root, as CI does (see jail.rs).
    for line in [
        "| floor: in-process instantiate + run | 1 |",
        "target HTTP p50 at concurrency 1",
        "target cold deploy",
        "target Sky Island call p50",
        "| wasm snapshot |",
        "target RSS flat over 200 calls",
        "| bare fork+exec of the binary |",
        "| backend warm invoke (HTTP, pooled) |",
        "| pre-started binary given its input at the warm pace |",
        "| the same handler on wasm at the warm pace (HTTP) |",
        "target jail cold invoke",
        "(the warm row: 12 of 12 calls found a warm jail)",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}\n{stderr}");
    }
}
