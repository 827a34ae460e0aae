//! What people otherwise write by hand on top of the operations: deploy and get
//! the build log of a failure, invoke with any serializable input, wait for an
//! async execution.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::generated::{
    Deployment, DeploymentStatus, Execution, InvokeRequest, ListDeploymentsQuery,
};
use crate::{Client, Error, Result};

impl Client {
    /// Deploys `name` (the server builds before it answers) and returns the
    /// ready deployment. When the build fails the error is
    /// [`Error::DeploymentFailed`], holding the failed deployment with its
    /// whole `build_log`.
    pub async fn deploy_and_wait(&self, name: &str, cache_bust: bool) -> Result<Deployment> {
        let query = crate::generated::DeployFunctionQuery {
            cache_bust: cache_bust.then_some(true),
        };
        match self.deploy_function(name, &query).await {
            Ok(d) => Ok(d),
            Err(Error::Api(e)) if e.code == "deployment_failed" && e.deployment_id.is_some() => {
                let id = e.deployment_id.expect("checked");
                let (message, request_id) = (e.message, e.request_id);
                let deployments =
                    self.list_deployments_stream(name, ListDeploymentsQuery::default());
                futures::pin_mut!(deployments);
                while let Some(d) = deployments.next().await {
                    let d = d?;
                    if d.id == id {
                        return Err(Error::DeploymentFailed {
                            deployment: Box::new(d),
                            message,
                            request_id,
                        });
                    }
                }
                Err(Error::Decode {
                    status: 422,
                    message: format!("deployment {id} failed ({message}) and is not listed"),
                    request_id,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Invokes `name` and waits for the finished execution (whatever its
    /// status: check [`Execution::status`]). The input is any serializable
    /// value; the function reads its JSON text on stdin.
    pub async fn invoke(&self, name: &str, input: impl Serialize) -> Result<Execution> {
        self.invoke_function(name, &invoke_request(input, false)?)
            .await
    }

    /// Queues an invocation of `name` and returns the `queued` execution at
    /// once; [`Client::wait_for`] waits for it to finish.
    pub async fn invoke_async(&self, name: &str, input: impl Serialize) -> Result<Execution> {
        self.invoke_function(name, &invoke_request(input, true)?)
            .await
    }

    /// Polls execution `id` until it has finished (`succeeded`, `failed` or
    /// `timed_out`) or `deadline` has passed ([`Error::WaitTimeout`] with the
    /// execution as last seen). Polls start at 50 ms apart and slow to 1 s.
    pub async fn wait_for(&self, id: uuid::Uuid, deadline: Duration) -> Result<Execution> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let e = self.get_execution(id).await?;
            if is_final(&e) {
                return Ok(e);
            }
            let left = deadline.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Error::WaitTimeout {
                    last: Box::new(e),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

/// Whether an execution has ended.
pub fn is_final(e: &Execution) -> bool {
    use crate::generated::ExecutionStatus::*;
    matches!(e.status, Succeeded | Failed | TimedOut)
}

/// Whether a deployment is ready.
pub fn is_ready(d: &Deployment) -> bool {
    d.status == DeploymentStatus::Ready
}

fn invoke_request(input: impl Serialize, run_async: bool) -> Result<InvokeRequest> {
    let input = serde_json::to_value(input)
        .map_err(|e| Error::Invalid(format!("the input does not serialize: {e}")))?;
    Ok(InvokeRequest {
        input: Some(input),
        r#async: Some(run_async),
        callback_url: None,
    })
}
