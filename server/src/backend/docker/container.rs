//! One container from creation to removal: the security settings every
//! function container gets, the attach that carries stdin/stdout/stderr, the
//! limits, and a guard that removes the container on every path (success,
//! failure, timeout, a dropped future).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, InspectContainerOptions, StartContainerOptions,
};
use bollard::Docker;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::engine::{Engine, ExitSlot, ExitStatus};
use super::image::Manifest;
use crate::backend::output::CappedOutput;
use crate::backend::{exit_message, BackendError, RunOutcome};
use crate::gobuild::shim::EXIT_MARKER_ENV;
use crate::model::{ExecutionStatus, Limits};
use skybridge_jail::marker;

/// Largest input also passed in `SKYBRIDGE_INPUT`: the kernel refuses a single
/// environment string over 128 KiB, so bigger inputs arrive on stdin only.
pub const MAX_ENV_INPUT: usize = 64 * 1024;

/// How every container of one deployment is made.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Function name (labels, container names).
    pub function: String,
    /// Image and command.
    pub manifest: Manifest,
    /// Memory, CPU and time.
    pub limits: Limits,
    /// Whether the container gets a network.
    pub network: bool,
    /// Processes and threads per container.
    pub pids_limit: i64,
    /// Size of the tmpfs at `/tmp`, MiB.
    pub tmpfs_mb: u32,
}

impl Settings {
    fn body(
        &self,
        env: &[(String, String)],
        labels: std::collections::HashMap<String, String>,
    ) -> ContainerCreateBody {
        let memory = i64::from(self.limits.memory_mb) << 20;
        let m = &self.manifest;
        ContainerCreateBody {
            image: Some(m.tag.clone()),
            cmd: m.command.clone(),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            user: Some(m.user.clone()),
            labels: Some(labels),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                memory: Some(memory),
                // Equal to memory: no swap on top of the limit.
                memory_swap: Some(memory),
                nano_cpus: Some((self.limits.cpus * 1e9) as i64),
                pids_limit: Some(self.pids_limit),
                network_mode: Some(if self.network { "bridge" } else { "none" }.into()),
                readonly_rootfs: Some(true),
                tmpfs: Some(
                    [(
                        "/tmp".to_string(),
                        format!("rw,nosuid,nodev,size={}m,mode=1777", self.tmpfs_mb),
                    )]
                    .into(),
                ),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                // Output goes over the attach; a log file would only copy it to disk.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Removes its container when dropped, in the background; this covers every
/// way a run can end, including a cancelled future. Armed with the container's
/// name before the create request, so a create whose answer is lost (a timeout,
/// a cancellation) does not leave a container behind either.
struct Removal {
    engine: Arc<Engine>,
    docker: Docker,
    /// The name until the engine answers with the id.
    id: String,
}

impl Drop for Removal {
    fn drop(&mut self) {
        self.engine.forget_exit(&self.id);
        let (engine, docker, id) = (
            self.engine.clone(),
            self.docker.clone(),
            std::mem::take(&mut self.id),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { engine.remove(&docker, &id).await });
        }
    }
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, DockerError>> + Send>>;

/// A started container whose process may be blocked reading stdin.
pub struct Started {
    /// Container id.
    pub id: String,
    /// The exit marker its program ends its output with, if it does.
    marker: Option<String>,
    docker: Docker,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
    exit: oneshot::Receiver<ExitStatus>,
    _removal: Removal,
}

/// Creates, attaches and starts a container for `settings` with `env`;
/// `execution` labels it (`warm` for a pooled one).
pub async fn start(
    engine: &Arc<Engine>,
    docker: &Docker,
    settings: &Settings,
    env: &[(String, String)],
    execution: &str,
) -> Result<Started, BackendError> {
    let labels = engine.labels(&settings.function, execution);
    let marker = settings.manifest.exit_marker.then(marker::new_marker);
    let mut env = env.to_vec();
    if let Some(m) = &marker {
        env.push((EXIT_MARKER_ENV.into(), m.clone()));
    }
    engine.check_open()?;
    let name = format!(
        "skybridge-{}-{}",
        settings.function,
        uuid::Uuid::now_v7().simple()
    );
    let mut removal = Removal {
        engine: engine.clone(),
        docker: docker.clone(),
        id: name.clone(),
    };
    let opts = CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let id = docker
        .create_container(Some(opts), settings.body(&env, labels))
        .await
        .map_err(|e| engine.error("creating the container", e))?
        .id;
    removal.id = id.clone();
    let (slot, exit) = ExitSlot::new();
    engine.watch_exit(&id, slot.clone());
    let attach = AttachContainerOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        stream: true,
        logs: false,
        ..Default::default()
    };
    let io = docker
        .attach_container(&id, Some(attach))
        .await
        .map_err(|e| engine.error("attaching to the container", e))?;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .map_err(|e| engine.error("starting the container", e))?;
    let (d, cid) = (docker.clone(), id.clone());
    tokio::spawn(async move {
        let status = match d.wait_container(&cid, None).next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("the engine ended the wait without a status".into()),
        };
        slot.deliver(status);
    });
    Ok(Started {
        id,
        marker,
        docker: docker.clone(),
        input: io.input,
        output: io.output,
        exit,
        _removal: removal,
    })
}

impl Started {
    /// Whether the process has already exited (a pooled container that did not
    /// wait for its input is useless).
    pub fn has_exited(&mut self) -> bool {
        !matches!(
            self.exit.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        )
    }

    /// Writes `stdin`, closes it, collects output up to `max_output` bytes per
    /// stream, and waits for the exit until `deadline` (then the container is
    /// killed and the outcome is `timed_out`). The container is removed after.
    pub async fn finish(
        mut self,
        engine: &Engine,
        stdin: &[u8],
        started: Instant,
        limits: &Limits,
        max_output: usize,
    ) -> Result<RunOutcome, BackendError> {
        let deadline = started + Duration::from_millis(limits.timeout_ms);
        // Room for the exit marker beyond the cap, so it neither counts as the
        // program's output nor gets cut; the cap is applied again once it is
        // stripped.
        let slack = self.marker.as_deref().map_or(0, marker::slack);
        let stdout = CappedOutput::new(max_output + slack);
        let stderr = CappedOutput::new(max_output + slack);
        let (input, output, exit) = (&mut self.input, &mut self.output, &mut self.exit);
        let marker = self.marker.as_deref();
        let write = async {
            // A program that exits without reading its input closes the pipe:
            // not an error of the run.
            let _ = input.write_all(stdin).await;
            let _ = input.shutdown().await;
        };
        let mut tails = [marker::Tail::default(), marker::Tail::default()];
        let read = async {
            let mut marked = [None, None];
            while let Some(item) = output.next().await {
                let (i, sink, message) = match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        (0, &stdout, message)
                    }
                    Ok(LogOutput::StdErr { message }) => (1, &stderr, message),
                    Ok(LogOutput::StdIn { .. }) => continue,
                    Err(e) => return Err(e),
                };
                sink.append(&message);
                if let Some(m) = marker {
                    marked[i] = tails[i].push(&message, m);
                    if let [Some(code), Some(_)] = marked {
                        // Both streams are complete and the code is known: the
                        // container's teardown need not be waited for.
                        return Ok(Some(code));
                    }
                }
            }
            Ok(None)
        };
        let run = async {
            let ((), read) = tokio::join!(write, read);
            let marked = read.map_err(|e| engine.error("reading the container's output", e))?;
            if let Some(code) = marked {
                return Ok(code);
            }
            let eof = started.elapsed();
            let code = exit.await;
            tracing::debug!(container = %self.id, output_closed_ms = eof.as_secs_f64() * 1e3, exited_ms = started.elapsed().as_secs_f64() * 1e3, "container finished");
            code.map_err(|_| BackendError::Engine("the container wait was lost".into()))?
                .map_err(|m| BackendError::Engine(format!("waiting for the container: {m}")))
        };
        let code = match tokio::time::timeout_at(deadline.into(), run).await {
            Ok(code) => code?,
            Err(_) => {
                // Dropping `self` kills and removes the container.
                let mut o = RunOutcome::timed_out(limits.timeout_ms, started.elapsed(), "");
                (o.stdout, o.stdout_truncated) = stdout.take();
                (o.stderr, o.stderr_truncated) = stderr.take();
                return Ok(o);
            }
        };
        let duration = started.elapsed();
        let (mut out, mut out_cut) = stdout.take();
        let (mut err, mut err_cut) = stderr.take();
        if let Some(m) = marker {
            for (bytes, cut) in [(&mut out, &mut out_cut), (&mut err, &mut err_cut)] {
                marker::strip_and_cap(bytes, cut, m, max_output);
            }
        }
        let code = i32::try_from(code).unwrap_or(-1);
        let (status, reason, message) = if code == 0 {
            (ExecutionStatus::Succeeded, None, None)
        } else if tokio::time::timeout(
            Duration::from_millis(1500),
            oom_killed(&self.docker, &self.id, code),
        )
        .await
        .unwrap_or(false)
        {
            (
                ExecutionStatus::Failed,
                Some("memory_limit"),
                Some(format!(
                    "killed: out of memory (limit {} MiB)",
                    limits.memory_mb
                )),
            )
        } else if code == 137 {
            // containerd can miss an OOM kill that happens within milliseconds
            // of the start on a busy engine; say what is known.
            (
                ExecutionStatus::Failed,
                Some("nonzero_exit"),
                Some(format!(
                    "{} (SIGKILL; the engine reported no out-of-memory kill, though the {} MiB limit is the usual cause)",
                    exit_message(code, &err),
                    limits.memory_mb
                )),
            )
        } else {
            (
                ExecutionStatus::Failed,
                Some("nonzero_exit"),
                Some(exit_message(code, &err)),
            )
        };
        Ok(RunOutcome {
            status,
            exit_code: Some(code),
            stdout: out,
            stderr: err,
            stdout_truncated: out_cut,
            stderr_truncated: err_cut,
            reason,
            message,
            duration,
        })
    }
}

/// Whether the kernel's OOM killer ended the container's process. The engine
/// learns of an OOM kill from a separate event that can trail the exit by a
/// moment (more on a busy engine), so a SIGKILL exit is asked about for up to
/// a second.
async fn oom_killed(docker: &Docker, id: &str, code: i32) -> bool {
    let attempts = if code == 137 { 20 } else { 1 };
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let inspected = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await;
        if let Err(e) = &inspected {
            tracing::warn!(container = id, error = %e, "inspecting an exited container failed");
        }
        let oom = inspected
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.oom_killed)
            .unwrap_or(false);
        if oom {
            return true;
        }
    }
    false
}
