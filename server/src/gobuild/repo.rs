//! Git repositories: URL rules, a bare mirror per repository, commit resolution and
//! a clean export of one commit per build.
//!
//! Each build gets its own exported tree (`git archive`), so concurrent builds of
//! one repository never write into a shared checkout (Sky Island's shared `main.go`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;

use crate::contract;

/// A repository reference as users write it, and what git needs to fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    /// URL handed to git.
    pub fetch_url: String,
    /// Go import path used when the repository has no `go.mod`.
    pub module_path: String,
}

/// A URL without its `user:password@` part, for logs and messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, None), |(a, p)| (a, Some(p)));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            match path {
                Some(p) => format!("{scheme}://{host}/{p}"),
                None => format!("{scheme}://{host}"),
            }
        }
        None => url.to_string(),
    }
}

/// Parses `github.com/owner/name` (fetched over https, as Sky Island does),
/// `https://…` and `file:///…`, exactly as [`contract::GO_REPO`] admits them.
/// Anything else (plain http, ssh, `ext::`, options, `..` segments, surrounding
/// whitespace) is refused.
pub fn parse_repo(repo: &str) -> Result<RepoUrl, String> {
    if !contract::fits(&contract::GO_REPO, contract::MAX_REPO_CHARS, repo) {
        return Err(if repo.starts_with("file://") {
            "file:// repositories need an absolute path without `..` segments".into()
        } else {
            format!(
                "`{}` is not a repository: use github.com/owner/name, https://host/path, or file:///path",
                redact(repo)
            )
        });
    }
    let strip_git = |s: &str| s.trim_end_matches('/').trim_end_matches(".git").to_string();
    if let Some(path) = repo.strip_prefix("file://") {
        let name = strip_git(path)
            .rsplit('/')
            .next()
            .unwrap_or("repo")
            .to_string();
        return Ok(RepoUrl {
            fetch_url: repo.to_string(),
            module_path: format!("local/{name}"),
        });
    }
    if let Some(rest) = repo.strip_prefix("https://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host.split(':').next().unwrap_or(host);
        return Ok(RepoUrl {
            fetch_url: repo.to_string(),
            module_path: strip_git(&format!("{host}/{path}")),
        });
    }
    Ok(RepoUrl {
        fetch_url: format!("https://{repo}"),
        module_path: strip_git(repo),
    })
}

/// Failures of git itself.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// git failed; the message is git's.
    #[error("{0}")]
    Git(String),
    /// git ran past the fetch timeout.
    #[error("git {0} timed out after {1} ms")]
    Timeout(String, u64),
    /// Local I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Bare mirrors under `<data>/repos`, one per URL, fetched under a per-URL lock.
pub struct RepoCache {
    root: PathBuf,
    timeout: Duration,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RepoCache {
    /// A cache rooted at `root`.
    pub fn new(root: PathBuf, timeout: Duration) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        // Clones a previous run did not finish.
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tmp-"))
            {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        Ok(Self {
            root,
            timeout,
            locks: Mutex::default(),
        })
    }

    fn mirror_dir(&self, url: &RepoUrl) -> PathBuf {
        let h = crate::artifacts::digest(url.fetch_url.as_bytes());
        self.root
            .join(format!("{}.git", &h["sha256:".len().."sha256:".len() + 24]))
    }

    /// Fetches (`refresh` or first use) and resolves `git_ref` (default: the remote
    /// HEAD) to a commit id. Returns the commit and what git said.
    pub async fn resolve(
        &self,
        url: &RepoUrl,
        git_ref: Option<&str>,
        refresh: bool,
    ) -> Result<(String, String), RepoError> {
        if let Some(r) = git_ref {
            if !contract::fits(&contract::GIT_REF, contract::MAX_REF_CHARS, r) {
                return Err(RepoError::Git(format!(
                    "`{r}` is not a branch, tag or commit"
                )));
            }
        }
        let lock = {
            let mut locks = self.locks.lock().expect("repo locks");
            locks.entry(url.fetch_url.clone()).or_default().clone()
        };
        let _held = lock.lock().await;
        let mirror = self.mirror_dir(url);
        let mut log = String::new();
        if !mirror.exists() {
            let tmp = self.root.join(format!("tmp-{}", uuid::Uuid::now_v7()));
            let out = self
                .git(
                    None,
                    &[
                        "clone",
                        "--mirror",
                        "--quiet",
                        "--",
                        &url.fetch_url,
                        tmp.to_str().unwrap(),
                    ],
                    "clone",
                )
                .await;
            match out {
                Ok(o) => log.push_str(&o),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(e);
                }
            }
            std::fs::rename(&tmp, &mirror)?;
            log.push_str(&format!("cloned {}\n", redact(&url.fetch_url)));
        } else if refresh {
            log.push_str(
                &self
                    .git(
                        Some(&mirror),
                        &["fetch", "--prune", "--quiet", "origin"],
                        "fetch",
                    )
                    .await?,
            );
            log.push_str(&format!("fetched {}\n", redact(&url.fetch_url)));
        }
        let spec = format!("{}^{{commit}}", git_ref.unwrap_or("HEAD"));
        let commit = self
            .git(
                Some(&mirror),
                &["rev-parse", "--verify", "--quiet", &spec],
                "rev-parse",
            )
            .await
            .map_err(|_| {
                RepoError::Git(format!(
                    "ref `{}` not found in {}",
                    git_ref.unwrap_or("HEAD"),
                    redact(&url.fetch_url)
                ))
            })?
            .trim()
            .to_string();
        Ok((commit, log))
    }

    /// Writes the tree of `commit` into `dest` (which must exist and be empty).
    pub async fn export(&self, url: &RepoUrl, commit: &str, dest: &Path) -> Result<(), RepoError> {
        let mirror = self.mirror_dir(url);
        let mut archive = Command::new("git")
            .arg("--git-dir")
            .arg(&mirror)
            .args(["archive", "--format=tar", commit])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let tar_in: Stdio = archive
            .stdout
            .take()
            .expect("piped")
            .try_into()
            .map_err(|e: std::io::Error| e)?;
        let tar = Command::new("tar")
            .args(["-x", "-C"])
            .arg(dest)
            .stdin(tar_in)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let (tar_out, archive_out) = tokio::time::timeout(self.timeout, async {
            let t = tar.await;
            let a = archive.wait_with_output().await;
            (t, a)
        })
        .await
        .map_err(|_| RepoError::Timeout("archive".into(), self.timeout.as_millis() as u64))?;
        let (tar_out, archive_out) = (tar_out?, archive_out?);
        if !archive_out.status.success() {
            return Err(RepoError::Git(
                String::from_utf8_lossy(&archive_out.stderr)
                    .trim()
                    .to_string(),
            ));
        }
        if !tar_out.status.success() {
            return Err(RepoError::Git(format!(
                "tar: {}",
                String::from_utf8_lossy(&tar_out.stderr).trim()
            )));
        }
        // A symlink in the tree could point generated files or the compiler at
        // host paths: such repositories are not built.
        if let Some(link) = find_symlink(dest)? {
            let rel = link
                .strip_prefix(dest)
                .unwrap_or(&link)
                .display()
                .to_string();
            return Err(RepoError::Git(format!(
                "the repository contains a symbolic link ({rel}); Skybridge does not build repositories with symlinks"
            )));
        }
        Ok(())
    }

    async fn git(
        &self,
        git_dir: Option<&Path>,
        args: &[&str],
        what: &str,
    ) -> Result<String, RepoError> {
        let mut cmd = Command::new("git");
        if let Some(d) = git_dir {
            cmd.arg("--git-dir").arg(d);
        }
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", "file:https")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        // git's helpers (remote-https, index-pack) die with it, on every path.
        let _group = super::GroupKill(child.id());
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| RepoError::Timeout(what.into(), self.timeout.as_millis() as u64))??;
        if !out.status.success() {
            return Err(RepoError::Git(format!(
                "git {what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The first symbolic link under `dir`, if any.
fn find_symlink(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            return Ok(Some(entry.path()));
        }
        if kind.is_dir() {
            if let Some(found) = find_symlink(&entry.path())? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_logs() {
        assert_eq!(
            redact("https://user:tok@git.example.com/a/b"),
            "https://git.example.com/a/b"
        );
        assert_eq!(redact("file:///x/y"), "file:///x/y");
        let u = parse_repo("https://user:tok@git.example.com:8443/team/lib.git").unwrap();
        assert_eq!(u.module_path, "git.example.com/team/lib");
    }

    #[test]
    fn repo_forms() {
        let g = parse_repo("github.com/mmcloughlin/geohash").unwrap();
        assert_eq!(g.fetch_url, "https://github.com/mmcloughlin/geohash");
        assert_eq!(g.module_path, "github.com/mmcloughlin/geohash");
        let h = parse_repo("https://git.example.com/team/lib.git").unwrap();
        assert_eq!(h.module_path, "git.example.com/team/lib");
        let f = parse_repo("file:///tmp/repos/geo").unwrap();
        assert_eq!(f.module_path, "local/geo");
    }

    #[test]
    fn dangerous_or_odd_repos_are_refused() {
        for bad in [
            "ext::sh -c touch% /tmp/pwned",
            "--upload-pack=evil",
            "ssh://host/x",
            "http://example.com/a/b",
            "git@github.com:a/b",
            "file://relative/path",
            "file:///tmp/../etc",
            "github.com",
            "https://",
            "notarepo",
        ] {
            assert!(parse_repo(bad).is_err(), "{bad} accepted");
        }
    }
}
