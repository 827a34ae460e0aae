//! The part of the FreeBSD driver that makes system calls: the jail through
//! `jail_set(2)` (the `jail` crate) and the function's process attached to it.
//! Compiled and linted for `x86_64-unknown-freebsd` only; not run here.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use jail::param::Value;
use jail::process::Jailed;
use jail::{RunningJail, StoppedJail};

use super::{FreeBsdError, JailSpec, Prepared};

/// `jailsys` value for "disable".
const JAIL_SYS_DISABLE: i32 = 0;

fn int(v: &str) -> Result<Value, FreeBsdError> {
    v.parse::<i32>()
        .map(Value::Int)
        .map_err(|_| FreeBsdError::Jail(format!("`{v}` is not an integer parameter")))
}

/// Creates the jail of `spec` (persistent until [`Prepared::teardown`]
/// removes it) and records it in `prepared`.
pub fn create(prepared: &mut Prepared<'_>, spec: &JailSpec) -> Result<RunningJail, FreeBsdError> {
    let mut j = StoppedJail::new(spec.root.clone())
        .name(&spec.name)
        .hostname(&spec.name);
    for (key, value) in super::jail_params(spec) {
        j = match key.as_str() {
            // Set by the builder above, or by `ip` below.
            "name" | "path" | "host.hostname" | "ip4.addr" => j,
            "ip4" | "ip6" if value == "disable" => j.param(&key, Value::Int(JAIL_SYS_DISABLE)),
            "ip4" => j,
            _ => j.param(&key, int(&value)?),
        };
    }
    if let Some(addr) = spec.ip4 {
        j = j.ip(std::net::IpAddr::V4(addr));
    }
    let running = j.start().map_err(|e| FreeBsdError::Jail(e.to_string()))?;
    prepared.jailed();
    Ok(running)
}

/// Starts `program` (a path inside the jail) attached to `jail`, as
/// `uid`/`gid`, with piped stdio and only `env`.
pub fn spawn(
    jail: &RunningJail,
    program: &str,
    env: &[(String, String)],
    uid: u32,
    gid: u32,
) -> std::io::Result<Child> {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // jail_attach first (the crate's pre_exec), then drop privileges: std's
    // own uid/gid would run before it and make the attach fail.
    cmd.jail(jail);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let groups = [gid];
            if libc::setgroups(1, groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}
