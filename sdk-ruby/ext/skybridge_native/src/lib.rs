//! `Skybridge::Native::Client`: the Rust client (`skybridge-client`) for Ruby.
//!
//! It is one generic call, by `operationId` with the parameters as JSON, plus
//! the two helpers that poll; `lib/skybridge` turns that into one method per
//! operation, models and exceptions. Three things make it a good citizen:
//!
//! - **The GVL is released** while a request is in flight, so other Ruby
//!   threads run; only owned Rust data crosses into that section, and a
//!   `Thread#raise`/`Timeout` cancels the request (the unblock function wakes
//!   the future).
//! - **Fork-safe**: the tokio runtime and the HTTP client belong to a process
//!   id; a forked child (Puma, Resque) builds its own and leaks, never drops,
//!   the parent's (whose threads did not survive the fork).
//! - **Errors are data**: a failure comes back as `[false, …, error_json]` and
//!   Ruby raises its own exception classes from it.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use magnus::rb_sys::{protect, AsRawValue};
use magnus::{function, method, prelude::*, Error, Ruby};
use serde_json::{json, Value};
use skybridge_client::{Client, RequestOptions};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

/// `[ok, status, request_id, body]`: the body's text on success, the error as
/// JSON on failure.
type Outcome = (bool, Option<u16>, Option<String>, String);

/// The runtime of the current process; a child after `fork` makes its own.
fn runtime() -> &'static Runtime {
    static RT: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = RT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, rt)) = *slot {
        if p == pid {
            return rt;
        }
    }
    // The parent's runtime (if any) is leaked: its threads are gone in this
    // process, and dropping it would wait for them.
    let rt: &'static Runtime = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("skybridge-ruby")
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    ));
    *slot = Some((pid, rt));
    rt
}

/// How to (re)build the HTTP client.
#[derive(Clone)]
struct Settings {
    url: String,
    token: Option<String>,
    timeout: Option<Duration>,
    max_retries: Option<u32>,
}

impl Settings {
    fn build(&self) -> Result<Client, skybridge_client::Error> {
        let mut b = Client::builder(&self.url)
            .user_agent(concat!("skybridge-ruby/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = &self.token {
            b = b.token(t.clone());
        }
        if let Some(t) = self.timeout {
            b = b.timeout(t);
        }
        if let Some(r) = self.max_retries {
            b = b.max_retries(r);
        }
        b.build()
    }
}

/// The client of one process: after a fork the inherited one (whose pooled
/// sockets the parent shares) is leaked and a new one built.
struct PerProcess {
    pid: u32,
    client: ManuallyDrop<Client>,
}

impl Drop for PerProcess {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            // SAFETY: dropped once, here, in the process that built it.
            unsafe { ManuallyDrop::drop(&mut self.client) }
        }
    }
}

#[magnus::wrap(class = "Skybridge::Native::Client", free_immediately, size)]
struct NativeClient {
    settings: Settings,
    state: Mutex<PerProcess>,
}

impl NativeClient {
    fn new(
        ruby: &Ruby,
        url: String,
        token: Option<String>,
        timeout_ms: Option<u64>,
        max_retries: Option<u32>,
    ) -> Result<Self, Error> {
        let settings = Settings {
            url,
            token,
            timeout: timeout_ms.map(Duration::from_millis),
            max_retries,
        };
        // The client's connection pool registers with the runtime it first
        // runs on; build both together.
        let _guard = runtime().enter();
        let client = settings
            .build()
            .map_err(|e| Error::new(ruby.exception_arg_error(), e.to_string()))?;
        Ok(Self {
            settings,
            state: Mutex::new(PerProcess {
                pid: std::process::id(),
                client: ManuallyDrop::new(client),
            }),
        })
    }

    /// This process's client, with per-call options.
    fn client(&self, timeout_ms: Option<u64>) -> Result<Client, skybridge_client::Error> {
        let pid = std::process::id();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pid != pid {
            let _guard = runtime().enter();
            let fresh = self.settings.build()?;
            // The inherited client is overwritten without being dropped.
            st.client = ManuallyDrop::new(fresh);
            st.pid = pid;
        }
        let client: &Client = &st.client;
        Ok(match timeout_ms {
            Some(ms) => client.with_options(RequestOptions::timeout(Duration::from_millis(ms))),
            None => client.clone(),
        })
    }

    fn url(&self) -> String {
        self.settings.url.clone()
    }

    /// `call(operation_id, params_json, timeout_ms)`.
    fn call(
        ruby: &Ruby,
        rb_self: &Self,
        operation: String,
        params: String,
        timeout_ms: Option<u64>,
    ) -> Result<Outcome, Error> {
        let params: Value = serde_json::from_str(&params)
            .map_err(|e| Error::new(ruby.exception_arg_error(), format!("params: {e}")))?;
        run(ruby, rb_self, timeout_ms, move |client| async move {
            let r = client.call_operation(&operation, &params).await?;
            Ok((
                r.status,
                r.request_id.clone(),
                String::from_utf8_lossy(&r.body).into_owned(),
            ))
        })
    }

    /// `deploy_and_wait(name, cache_bust, timeout_ms)`.
    fn deploy_and_wait(
        ruby: &Ruby,
        rb_self: &Self,
        name: String,
        cache_bust: bool,
        timeout_ms: Option<u64>,
    ) -> Result<Outcome, Error> {
        run(ruby, rb_self, timeout_ms, move |client| async move {
            let d = client.deploy_and_wait(&name, cache_bust).await?;
            Ok((201, None, to_json_text(&d)))
        })
    }

    /// `wait_for(execution_id, deadline_ms)`.
    fn wait_for(
        ruby: &Ruby,
        rb_self: &Self,
        id: String,
        deadline_ms: u64,
    ) -> Result<Outcome, Error> {
        let id = id.parse::<skybridge_client::uuid::Uuid>().map_err(|e| {
            Error::new(
                ruby.exception_arg_error(),
                format!("execution id `{id}`: {e}"),
            )
        })?;
        run(ruby, rb_self, None, move |client| async move {
            let e = client
                .wait_for(id, Duration::from_millis(deadline_ms))
                .await?;
            Ok((200, None, to_json_text(&e)))
        })
    }
}

fn to_json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("models serialize")
}

/// Runs `work` on this process's runtime with the GVL released, and turns its
/// result into an [`Outcome`] once the GVL is back.
fn run<F, Fut>(
    ruby: &Ruby,
    rb_self: &NativeClient,
    timeout_ms: Option<u64>,
    work: F,
) -> Result<Outcome, Error>
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = skybridge_client::Result<(u16, Option<String>, String)>>
        + Send,
{
    let client = match rb_self.client(timeout_ms) {
        Ok(c) => c,
        Err(e) => return Ok(failure(&e)),
    };
    let rt = runtime();
    let cancel = Arc::new(Notify::new());
    let woken = cancel.clone();
    let out = without_gvl(ruby, &cancel, move || {
        rt.block_on(async move {
            tokio::select! {
                r = work(client) => Some(r),
                _ = woken.notified() => None,
            }
        })
    })?;
    Ok(match out {
        Some(Ok((status, request_id, body))) => (true, Some(status), request_id, body),
        Some(Err(e)) => failure(&e),
        // Cancelled by the unblock function, and Ruby raised nothing itself.
        None => (
            false,
            None,
            None,
            json!({"code": "interrupted", "message": "the call was interrupted"}).to_string(),
        ),
    })
}

/// A client error as the JSON `Skybridge::Error.from_payload` reads.
fn failure(e: &skybridge_client::Error) -> Outcome {
    let mut payload = json!({
        "status": e.status(),
        "code": e.code(),
        "message": e.to_string(),
        "field": e.field(),
        "request_id": e.request_id(),
    });
    match e {
        skybridge_client::Error::Api(api) => {
            payload["message"] = json!(api.message);
            payload["deployment_id"] = json!(api.deployment_id);
            payload["execution_id"] = json!(api.execution_id);
        }
        skybridge_client::Error::DeploymentFailed { deployment, .. } => {
            payload["deployment"] = serde_json::to_value(deployment).unwrap_or(Value::Null);
            payload["deployment_id"] = json!(deployment.id);
        }
        skybridge_client::Error::WaitTimeout { last, .. } => {
            payload["execution"] = serde_json::to_value(last).unwrap_or(Value::Null);
            payload["execution_id"] = json!(last.id);
        }
        _ => {}
    }
    (
        false,
        e.status(),
        e.request_id().map(str::to_string),
        payload.to_string(),
    )
}

struct Call<F, R> {
    func: Option<F>,
    out: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Call` that `without_gvl` keeps alive across the call.
    let call = unsafe { &mut *(arg as *mut Call<F, R>) };
    if let Some(f) = call.func.take() {
        call.out = Some(panic::catch_unwind(AssertUnwindSafe(f)));
    }
    null_mut()
}

/// Ruby's unblock function (Thread#raise, Timeout, signals): wakes the future
/// so the call returns. Runs without the GVL; touches only the `Notify`, and a
/// permit is stored if the future is not waiting yet.
unsafe extern "C" fn unblock(arg: *mut c_void) {
    // SAFETY: `arg` is the `Notify` that `without_gvl` keeps alive.
    unsafe { (*(arg as *const Notify)).notify_one() };
}

/// Runs `f` without the GVL. `Send` keeps every Ruby value out of it; a panic
/// is caught there and raised as a RuntimeError here; an interrupt Ruby raises
/// around the call comes back as `Err` (through `protect`) instead of a
/// longjmp across Rust frames.
fn without_gvl<F, R>(ruby: &Ruby, cancel: &Arc<Notify>, f: F) -> Result<R, Error>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let mut call = Call {
        func: Some(f),
        out: None,
    };
    let nil = ruby.qnil().as_raw();
    protect(|| unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(trampoline::<F, R>),
            &mut call as *mut Call<F, R> as *mut c_void,
            Some(unblock),
            Arc::as_ptr(cancel) as *mut c_void,
        );
        nil
    })?;
    match call.out {
        Some(Ok(r)) => Ok(r),
        Some(Err(p)) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(Error::new(
                ruby.exception_runtime_error(),
                format!("skybridge native code panicked: {msg}"),
            ))
        }
        None => Err(Error::new(
            ruby.exception_runtime_error(),
            "the call was interrupted before it ran",
        )),
    }
}

#[magnus::init(name = "skybridge_native")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let top = ruby.define_module("Skybridge")?;
    let native = top.define_module("Native")?;
    let class = native.define_class("Client", ruby.class_object())?;
    class.define_singleton_method("new", function!(NativeClient::new, 4))?;
    class.define_method("url", method!(NativeClient::url, 0))?;
    class.define_method("call", method!(NativeClient::call, 3))?;
    class.define_method("deploy_and_wait", method!(NativeClient::deploy_and_wait, 3))?;
    class.define_method("wait_for", method!(NativeClient::wait_for, 2))?;
    Ok(())
}
