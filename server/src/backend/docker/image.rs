//! Images for docker functions: pulling a named image, packing a Go binary into
//! a `FROM scratch` image, and the manifest the artifact cache keeps for each.
//!
//! Every deployed image is tagged `skybridge-<instance>/fn:<artifact hex>`, so a
//! deployment keeps its exact image even when the user's tag moves or is
//! removed, and garbage collection only ever untags what this instance tagged.

use std::collections::{BTreeMap, HashMap};

use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    BuildImageOptions, CreateImageOptions, RemoveImageOptions, TagImageOptions,
};
use bollard::Docker;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::engine::{Engine, LABEL_INSTANCE, LABEL_MANAGED_BY};
use crate::backend::BackendError;
use crate::config::RegistryAuth;

/// What the artifact cache keeps for a docker artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Our tag of the image: `skybridge-<instance>/fn:<hex>`.
    pub tag: String,
    /// The image id the tag pointed at when built.
    pub image_id: String,
    /// The command to run; `None`: the image's own entrypoint and command.
    pub command: Option<Vec<String>>,
    /// The user to run as.
    pub user: String,
    /// Whether the program reads its input from stdin (warm-poolable).
    pub reads_stdin: bool,
    /// Whether the program ends its output with the exit marker (Skybridge's
    /// Go shims do), so a run completes without waiting for the teardown.
    #[serde(default)]
    pub exit_marker: bool,
}

/// The user functions run as when the image names none.
pub const NOBODY: &str = "65534:65534";

/// Our tag for artifact `key` (`sha256:<hex>`).
pub fn tag_for(instance: &str, key: &str) -> String {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    format!("skybridge-{instance}/fn:{hex}")
}

fn build_error(message: String) -> BackendError {
    BackendError::Build {
        log: format!("{message}\n"),
        message,
    }
}

/// The registry host of an image reference (`docker.io` for Docker Hub names).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Splits `name[:tag][@digest]` into what the pull API takes; an untagged name
/// means `latest`, as `docker pull` does.
fn pull_target(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => (
            image[..image.len() - tag.len() - 1].to_string(),
            tag.to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Makes sure `image` is on the engine, pulling it (with the configured
/// credentials for its registry) when it is not, or always with `force`.
/// Returns the image id, its configured user and whether it has a command.
pub async fn ensure_present(
    engine: &Engine,
    docker: &Docker,
    image: &str,
    registries: &BTreeMap<String, RegistryAuth>,
    force: bool,
    log: &mut String,
) -> Result<(String, String, bool), BackendError> {
    let present = match docker.inspect_image(image).await {
        Ok(i) => Some(i),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(e) => return Err(engine.error(&format!("inspecting image {image}"), e)),
    };
    match present {
        Some(i) if !force => {
            log.push_str(&format!("image {image} is present\n"));
            return Ok(described(i));
        }
        Some(i) => {
            // cache_bust: refresh the tag, but a registry that cannot be reached
            // does not take away the image we have.
            if let Err(e) = pull(engine, docker, image, registries, log).await {
                log.push_str(&format!("{e}; keeping the local image\n"));
                return Ok(described(i));
            }
        }
        None => pull(engine, docker, image, registries, log).await?,
    }
    let i = docker
        .inspect_image(image)
        .await
        .map_err(|e| engine.error(&format!("inspecting pulled image {image}"), e))?;
    Ok(described(i))
}

async fn pull(
    engine: &Engine,
    docker: &Docker,
    image: &str,
    registries: &BTreeMap<String, RegistryAuth>,
    log: &mut String,
) -> Result<(), BackendError> {
    let registry = registry_of(image);
    let credentials = registries.get(registry).map(|a| DockerCredentials {
        username: Some(a.username.clone()),
        password: Some(a.password.clone()),
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    });
    let (from_image, tag) = pull_target(image);
    log.push_str(&format!(
        "pulling {image} from {registry}{}\n",
        if credentials.is_some() {
            " with configured credentials"
        } else {
            ""
        }
    ));
    let opts = CreateImageOptions {
        from_image: Some(from_image),
        tag: Some(tag),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(opts), None, credentials);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(build_error(format!("pulling {image} failed: {e}")));
                }
            }
            Err(DockerError::DockerResponseServerError { message, .. }) => {
                return Err(build_error(format!("pulling {image} failed: {message}")))
            }
            Err(e) => return Err(engine.unavailable(&e)),
        }
    }
    log.push_str(&format!("pulled {image}\n"));
    Ok(())
}

fn described(i: bollard::models::ImageInspect) -> (String, String, bool) {
    let config = i.config.unwrap_or_default();
    let has_command = config.cmd.is_some_and(|c| !c.is_empty())
        || config.entrypoint.is_some_and(|e| !e.is_empty());
    (
        i.id.unwrap_or_default(),
        config.user.unwrap_or_default(),
        has_command,
    )
}

/// Tags `image_id` as `tag` (our hold on it).
pub async fn tag(
    engine: &Engine,
    docker: &Docker,
    image_id: &str,
    tag: &str,
) -> Result<(), BackendError> {
    let (repo, t) = tag.rsplit_once(':').expect("our tags have a tag part");
    let opts = TagImageOptions {
        repo: Some(repo.to_string()),
        tag: Some(t.to_string()),
    };
    docker
        .tag_image(image_id, Some(opts))
        .await
        .map_err(|e| engine.error(&format!("tagging {image_id} as {tag}"), e))
}

/// Builds `FROM scratch` + `binary` as `/fn`, run as nobody, tagged `tag`, from
/// an in-memory build context. Returns the image id.
pub async fn build_scratch(
    engine: &Engine,
    docker: &Docker,
    binary: &[u8],
    tag: &str,
    log: &mut String,
) -> Result<String, BackendError> {
    let dockerfile = format!("FROM scratch\nCOPY fn /fn\nUSER {NOBODY}\nENTRYPOINT [\"/fn\"]\n");
    let context = build_context(&dockerfile, binary)?;
    let labels = HashMap::from([
        (LABEL_MANAGED_BY.to_string(), "skybridge".to_string()),
        (LABEL_INSTANCE.to_string(), engine.instance().to_string()),
    ]);
    let opts = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        labels: Some(labels),
        ..Default::default()
    };
    log.push_str(&format!(
        "building image {tag} (FROM scratch, {} byte binary)\n",
        binary.len()
    ));
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    log.push_str(&s);
                }
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(BackendError::Build {
                        message: format!("building the image failed: {e}"),
                        log: log.clone(),
                    });
                }
                if let Some(id) = info.aux.and_then(|a| a.id) {
                    image_id = Some(id);
                }
            }
            Err(DockerError::DockerResponseServerError { message, .. }) => {
                return Err(BackendError::Build {
                    message: format!("building the image failed: {message}"),
                    log: log.clone(),
                })
            }
            Err(e) => return Err(engine.unavailable(&e)),
        }
    }
    match image_id {
        Some(id) => Ok(id),
        None => docker
            .inspect_image(tag)
            .await
            .map(|i| i.id.unwrap_or_default())
            .map_err(|e| engine.error(&format!("inspecting built image {tag}"), e)),
    }
}

/// A tar holding the Dockerfile and the binary `fn` (mode 0755).
fn build_context(dockerfile: &str, binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("fn", binary, 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data)?;
    }
    tar.into_inner()
}

/// Whether `tag` is on the engine (`Ok(false)`: gone, e.g. pruned).
pub async fn exists(engine: &Engine, docker: &Docker, tag: &str) -> Result<bool, BackendError> {
    match docker.inspect_image(tag).await {
        Ok(_) => Ok(true),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(engine.error(&format!("inspecting image {tag}"), e)),
    }
}

/// Removes our tag (the image itself goes when nothing else tags or uses it).
pub async fn untag(docker: &Docker, tag: &str) {
    // Forced: warm containers of the dropped deployment may still be on their
    // way out; the image itself stays until they are gone.
    let opts = RemoveImageOptions {
        force: true,
        noprune: false,
        ..Default::default()
    };
    match docker.remove_image(tag, Some(opts), None).await {
        Ok(_)
        | Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => tracing::warn!(%tag, error = %e, "removing an image tag failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_pull_targets() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("ghcr.io/a/b:1"), "ghcr.io");
        assert_eq!(registry_of("localhost:5000/x"), "localhost:5000");
        assert_eq!(pull_target("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            pull_target("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
        assert_eq!(
            pull_target("localhost:5000/x:2"),
            ("localhost:5000/x".into(), "2".into())
        );
        assert_eq!(
            pull_target("a/b@sha256:abc"),
            ("a/b".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn the_build_context_holds_an_executable_binary() {
        let tar = build_context("FROM scratch\n", b"\x7fELF").unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![("Dockerfile".into(), 0o644), ("fn".into(), 0o755)]
        );
        assert_eq!(tag_for("abc", "sha256:0123"), "skybridge-abc/fn:0123");
    }
}
