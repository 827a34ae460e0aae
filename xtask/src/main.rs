//! `cargo xtask codegen [--check]`: writes every generated file of the three
//! SDKs from `openapi/openapi.json`, the one source. `--check` writes nothing
//! and fails with a diff when a committed file is stale.

mod node;
mod ruby;
mod rust;
mod spec;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The repository root (this crate lives in `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the repository")
        .to_path_buf()
}

/// Every generated file: path relative to the root, and its contents.
pub fn generate_all(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let text = std::fs::read_to_string(root.join("openapi/openapi.json"))
        .map_err(|e| format!("reading openapi/openapi.json: {e}"))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("openapi/openapi.json: {e}"))?;
    let spec = spec::parse(&doc)?;
    let mut files = vec![(
        PathBuf::from("sdk-rust/src/generated.rs"),
        rust::generate(&spec),
    )];
    files.extend(node::generate(&spec));
    files.extend(ruby::generate(&spec));
    Ok(files)
}

/// A short line diff: the first lines that differ, with a few around them.
fn diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let mut out = String::new();
    let from = first.saturating_sub(3);
    for (i, line) in a.iter().enumerate().skip(from).take(12) {
        out.push_str(&format!("-{:5} {line}\n", i + 1));
    }
    for (i, line) in b.iter().enumerate().skip(from).take(12) {
        out.push_str(&format!("+{:5} {line}\n", i + 1));
    }
    out
}

fn codegen(check: bool) -> Result<bool, String> {
    let root = root();
    let mut stale = false;
    for (rel, contents) in generate_all(&root)? {
        let path = root.join(&rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == contents {
            continue;
        }
        if check {
            stale = true;
            eprintln!(
                "{} is stale (run `cargo xtask codegen`):\n{}",
                rel.display(),
                diff(&current, &contents)
            );
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", rel.display()))?;
            eprintln!("wrote {}", rel.display());
        }
    }
    Ok(!stale)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        _ => Err("usage: cargo xtask codegen [--check]".into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the spec reaches every SDK: its method is in each
    /// one's generated files, under that language's name for it.
    #[test]
    fn every_operation_is_in_every_sdk() {
        let root = root();
        let doc: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("openapi/openapi.json")).unwrap(),
        )
        .unwrap();
        let spec = spec::parse(&doc).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
        let rust = read("sdk-rust/src/generated.rs");
        let js = read("sdk-node/generated.js");
        let dts = read("sdk-node/index.d.ts");
        let rb = read("sdk-ruby/lib/skybridge/generated.rb");
        let rbs = read("sdk-ruby/sig/skybridge.rbs");
        assert!(!spec.operations.is_empty());
        for op in &spec.operations {
            let snake = spec::snake(&op.id);
            assert!(
                rust.contains(&format!("pub async fn {snake}(")),
                "Rust SDK lacks {}",
                op.id
            );
            assert!(
                js.contains(&format!("  async {}(", op.id)),
                "Node SDK lacks {}",
                op.id
            );
            assert!(
                dts.contains(&format!("  {}(", op.id)),
                "index.d.ts lacks {}",
                op.id
            );
            assert!(
                rb.contains(&format!("def {snake}(")),
                "Ruby SDK lacks {}",
                op.id
            );
            assert!(
                rbs.contains(&format!("def {snake}:")),
                "RBS lacks {}",
                op.id
            );
        }
    }

    /// The committed files are what the generator writes now.
    #[test]
    fn generated_files_are_current() {
        let root = root();
        for (rel, contents) in generate_all(&root).unwrap() {
            let current = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
            assert!(
                current == contents,
                "{} is stale: run `cargo xtask codegen`\n{}",
                rel.display(),
                diff(&current, &contents)
            );
            assert!(
                current
                    .lines()
                    .next()
                    .unwrap_or("")
                    .contains("generated by `cargo xtask codegen`"),
                "{} does not say it is generated in its first line",
                rel.display()
            );
        }
    }
}
