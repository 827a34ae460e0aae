//! `skyinspect`, the small Go program (server/go/skyinspect) that answers questions
//! with Go's own parser: a function's signature, and whether a call string is
//! exactly one call expression. Embedded in this binary, built once per toolchain
//! version into `<data>/go/tools`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::process::Command;

use super::toolchain::GoToolchain;

const SOURCE: &str = include_str!("../../go/skyinspect/main.go");
/// Parsing one package takes milliseconds; anything near this is stuck.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Building skyinspect compiles part of std on a cold cache.
const BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// A function's signature as the shim sees it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Signature {
    /// Package name.
    #[serde(default)]
    pub package: String,
    /// Parameter types, as written.
    #[serde(default)]
    pub params: Vec<String>,
    /// Whether the last parameter is `...T`.
    #[serde(default)]
    pub variadic: bool,
    /// Result types, as written.
    #[serde(default)]
    pub results: Vec<String>,
}

#[derive(Deserialize)]
struct Answer<T> {
    ok: bool,
    #[serde(default)]
    error: String,
    #[serde(flatten)]
    value: T,
}

#[derive(Deserialize)]
struct CallAnswer {
    #[serde(default)]
    func: String,
}

/// A built `skyinspect`.
pub struct Inspector {
    binary: PathBuf,
}

impl Inspector {
    /// Builds `skyinspect` with `go` unless this version is already built.
    pub async fn ensure(
        go: &GoToolchain,
        tools_dir: &Path,
        gocache: &Path,
    ) -> Result<Self, String> {
        let tag = crate::artifacts::digest(format!("{}\n{SOURCE}", go.version).as_bytes());
        let binary = tools_dir.join(format!("skyinspect-{}", &tag[7..23]));
        if binary.exists() {
            return Ok(Self { binary });
        }
        let work = tools_dir.join(format!("build-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let result = async {
            std::fs::write(work.join("main.go"), SOURCE).map_err(|e| e.to_string())?;
            let out = Command::new(&go.path)
                .args(["build", "-o", "skyinspect", "main.go"])
                .current_dir(&work)
                .env("GOTOOLCHAIN", "local")
                .env("GO111MODULE", "off")
                .env("CGO_ENABLED", "0")
                .env("GOCACHE", gocache)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(BUILD_TIMEOUT, out)
                .await
                .map_err(|_| "building skyinspect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "building skyinspect: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::rename(work.join("skyinspect"), &binary).map_err(|e| e.to_string())
        }
        .await;
        let _ = std::fs::remove_dir_all(&work);
        result.map(|()| Self { binary })
    }

    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> Result<T, String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(ASK_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                format!(
                    "skyinspect did not answer within {} s",
                    ASK_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("running skyinspect: {e}"))?;
        let answer: Answer<T> = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "skyinspect said something unexpected ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if answer.ok {
            Ok(answer.value)
        } else {
            Err(answer.error)
        }
    }

    /// The signature of `function` in the package at `dir`, for `goos/goarch`
    /// build constraints; `Err` says why the shim cannot call it.
    pub async fn signature(
        &self,
        dir: &Path,
        function: &str,
        goos: &str,
        goarch: &str,
    ) -> Result<Signature, String> {
        let dir = dir.to_str().ok_or("package path is not UTF-8")?;
        self.ask(&["sig", dir, function, goos, goarch], &[]).await
    }

    /// Checks that `call` is exactly one call of an exported name; returns the name.
    pub async fn check_call(&self, call: &str) -> Result<String, String> {
        let a: CallAnswer = self.ask(&["call", call], &[]).await?;
        Ok(a.func)
    }
}
