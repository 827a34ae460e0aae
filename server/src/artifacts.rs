//! The content-addressed file cache under the data dir: uploaded sources and built artifacts.
//!
//! Files are named by the SHA-256 of their content and written atomically
//! (temp file + rename), so a crash mid-write never leaves a half file under a
//! real name, and two writers of the same content cannot corrupt each other.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest, checked so it is safe in a file name.
fn hex_part(digest: &str) -> std::io::Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a sha256 digest: {digest}"),
            )
        })
}

/// The cache rooted at `<data_dir>`: `sources/<hex>` and `artifacts/<hex>.<ext>`.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    root: PathBuf,
}

impl ArtifactCache {
    /// Creates the folders under `data_dir`.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        for sub in ["sources", "artifacts", "tmp"] {
            std::fs::create_dir_all(data_dir.join(sub))?;
        }
        // Temp files of a previous run that died mid-write.
        for entry in std::fs::read_dir(data_dir.join("tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self {
            root: data_dir.to_owned(),
        })
    }

    /// The data dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores a source blob; returns its digest. Idempotent.
    pub fn put_source(&self, bytes: &[u8]) -> std::io::Result<String> {
        let d = digest(bytes);
        let path = self.source_path(&d)?;
        if !path.exists() {
            self.write_atomic(&path, bytes)?;
        }
        Ok(d)
    }

    /// Reads a source blob back.
    pub fn read_source(&self, digest: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.source_path(digest)?)
    }

    /// Removes a source blob (missing is fine).
    pub fn remove_source(&self, digest: &str) -> std::io::Result<()> {
        remove_if_present(&self.source_path(digest)?)
    }

    fn source_path(&self, digest: &str) -> std::io::Result<PathBuf> {
        Ok(self.root.join("sources").join(hex_part(digest)?))
    }

    /// Relative path (to the data dir) where an artifact with `key` is kept.
    pub fn artifact_rel_path(&self, key: &str, ext: &str) -> std::io::Result<String> {
        Ok(format!("artifacts/{}.{ext}", hex_part(key)?))
    }

    /// Absolute path for a relative artifact path from the store.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `bytes` to `rel` atomically.
    pub fn put_artifact(&self, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.write_atomic(&self.resolve(rel), bytes)
    }

    /// Removes an artifact file (missing is fine).
    pub fn remove_artifact(&self, rel: &str) -> std::io::Result<()> {
        remove_if_present(&self.resolve(rel))
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile_in(&self.root.join("tmp"))?;
        tmp.1.write_all(bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, path)
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!("{}.part", uuid::Uuid::new_v4()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

/// The id of the server instance owning `data_dir`: made once, kept in the dir.
pub fn instance_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if is_instance_id(s.trim()) => return Ok(s.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "instance-id is malformed; making a new one")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tmp = data_dir.join("instance-id.part");
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

fn is_instance_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path()).unwrap();
        let a = cache.put_source(b"hello").unwrap();
        assert_eq!(a, cache.put_source(b"hello").unwrap());
        assert_eq!(cache.read_source(&a).unwrap(), b"hello");
        assert!(a.starts_with("sha256:2cf24dba"));
        cache.remove_source(&a).unwrap();
        assert!(cache.read_source(&a).is_err());
    }

    #[test]
    fn digests_cannot_escape_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path()).unwrap();
        assert!(cache.read_source("sha256:../../etc/passwd").is_err());
        assert!(cache.artifact_rel_path("md5:abc", "cwasm").is_err());
    }

    #[test]
    fn instance_id_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = instance_id(dir.path()).unwrap();
        assert!(is_instance_id(&a));
        assert_eq!(instance_id(dir.path()).unwrap(), a);
        std::fs::write(dir.path().join("instance-id"), "garbage").unwrap();
        assert_ne!(instance_id(dir.path()).unwrap(), a);
    }
}
