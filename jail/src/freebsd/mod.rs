//! The FreeBSD driver: Sky Island's design, done right. Per execution:
//!
//! 1. a ZFS clone of a base snapshot (`zfs clone`), the jail's root;
//! 2. devfs mounted in it with a restrictive ruleset (null, zero, random,
//!    urandom and the fd links only);
//! 3. rctl rules for `memoryuse`, `maxproc` and `pcpu` (Sky Island's resource
//!    limits were an empty function);
//! 4. the jail itself through `jail_set(2)` (the `jail` crate, in
//!    [`native`], FreeBSD only): `path`, `host.hostname`, `ip4.addr` from the
//!    pool or `ip4=disable`, `children.max=0`, `enforce_statfs=2`,
//!    `securelevel=3`, `devfs_ruleset`;
//! 5. teardown on every path, in this order: remove the jail (`jail -r`,
//!    which kills everything in it), unmount devfs, remove the rctl rules,
//!    `zfs destroy -r -f`. Each step is recorded as it completes, and a
//!    failure part-way undoes the completed ones in reverse.
//!
//! Everything but step 4's system calls is a command line built by a pure
//! function and run through [`CommandRunner`], so it is unit-tested on any
//! host; [`native`] compiles (and passes clippy) for `x86_64-unknown-freebsd`
//! but has not run here, which has no FreeBSD machine.

#[cfg(target_os = "freebsd")]
pub mod native;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Prefix of every jail, dataset and rule this driver makes, so a start-up
/// sweep finds what a dead process left.
pub const PREFIX: &str = "sbx-";

/// One command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The program (looked up on `PATH`).
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Cmd {
    fn new(program: &'static str, args: &[&str]) -> Self {
        Self {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.program, self.args.join(" "))
    }
}

/// What a command printed, and whether it succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit status 0.
    pub success: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs command lines: the system's in production, a recording fake in tests.
pub trait CommandRunner: Send + Sync {
    /// Runs `cmd` to completion.
    fn run(&self, cmd: &Cmd) -> std::io::Result<CmdOutput>;
}

/// Runs commands with `std::process::Command`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> std::io::Result<CmdOutput> {
        let o = std::process::Command::new(cmd.program)
            .args(&cmd.args)
            .stdin(std::process::Stdio::null())
            .output()?;
        Ok(CmdOutput {
            success: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        })
    }
}

/// Driver failures.
#[derive(Debug, thiserror::Error)]
pub enum FreeBsdError {
    /// A command failed; its line and what it said.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its stderr.
        stderr: String,
    },
    /// A command could not be started.
    #[error("`{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// A jail system call failed (FreeBSD only).
    #[error("jail: {0}")]
    Jail(String),
}

/// Driver settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The base snapshot every root is cloned from, e.g. `zroot/skybridge/base@v1`.
    pub base_snapshot: String,
    /// The dataset clones go under, e.g. `zroot/skybridge/run`.
    pub parent_dataset: String,
    /// The directory their mountpoints go under, e.g. `/var/skybridge/run`.
    pub mount_root: PathBuf,
    /// The devfs ruleset number the driver installs and mounts with.
    pub devfs_ruleset: u16,
}

/// Resource limits of one jail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// `memoryuse` (resident memory), bytes.
    pub memory_bytes: u64,
    /// CPU share in cores (1.5 = `pcpu` 150, percent of one core).
    pub cpus: f64,
    /// `maxproc`.
    pub pids: u32,
}

/// One jail to make.
#[derive(Debug, Clone, PartialEq)]
pub struct JailSpec {
    /// Its name ([`jail_name`]).
    pub name: String,
    /// Its root (the clone's mountpoint).
    pub root: PathBuf,
    /// An address from the pool, or none (`ip4=disable`).
    pub ip4: Option<Ipv4Addr>,
    /// The devfs ruleset.
    pub devfs_ruleset: u16,
}

/// The jail name for execution `id`: the prefix, then only characters jail
/// names and rctl subjects take (no `.`, `:` or `/`; never all digits).
pub fn jail_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{safe}")
}

/// `jail_set(2)` parameters of `spec`, as `name=value` (what jail(8) takes
/// too; [`native`] sets the same through the `jail` crate).
pub fn jail_params(spec: &JailSpec) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("name", spec.name.clone()),
        ("path", spec.root.display().to_string()),
        ("host.hostname", spec.name.clone()),
        ("children.max", "0".into()),
        ("enforce_statfs", "2".into()),
        ("securelevel", "3".into()),
        ("devfs_ruleset", spec.devfs_ruleset.to_string()),
        ("allow.set_hostname", "0".into()),
        ("allow.reserved_ports", "0".into()),
        ("allow.raw_sockets", "0".into()),
        ("allow.mount", "0".into()),
        ("allow.chflags", "0".into()),
        ("allow.sysvipc", "0".into()),
        ("ip6", "disable".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    match spec.ip4 {
        Some(addr) => {
            p.push(("ip4".into(), "new".into()));
            p.push(("ip4.addr".into(), addr.to_string()));
        }
        None => p.push(("ip4".into(), "disable".into())),
    }
    p
}

/// `pcpu` for a share of `cpus` cores: percent of one core, at least 1.
pub fn pcpu(cpus: f64) -> u32 {
    ((cpus * 100.0).ceil() as u32).max(1)
}

/// The rctl rules of jail `name`: memory, processes, CPU; all `deny`.
pub fn rctl_rules(name: &str, l: &Limits) -> Vec<String> {
    vec![
        format!("jail:{name}:memoryuse:deny={}", l.memory_bytes),
        format!("jail:{name}:maxproc:deny={}", l.pids),
        format!("jail:{name}:pcpu:deny={}", pcpu(l.cpus)),
    ]
}

/// `rctl -a <rule>`.
pub fn rctl_add(rule: &str) -> Cmd {
    Cmd::new("rctl", &["-a", rule])
}

/// `rctl -r jail:<name>`: removes every rule of the jail (rules outlive it).
pub fn rctl_clear(name: &str) -> Cmd {
    Cmd::new("rctl", &["-r", &format!("jail:{name}")])
}

/// The clone dataset of jail `name`.
pub fn dataset(s: &Settings, name: &str) -> String {
    format!("{}/{name}", s.parent_dataset)
}

/// The root of jail `name`.
pub fn root(s: &Settings, name: &str) -> PathBuf {
    s.mount_root.join(name)
}

/// `zfs clone -o mountpoint=<root> -o setuid=off -o exec=on <base> <dataset>`.
pub fn zfs_clone(s: &Settings, name: &str) -> Cmd {
    Cmd::new(
        "zfs",
        &[
            "clone",
            "-o",
            &format!("mountpoint={}", root(s, name).display()),
            "-o",
            "setuid=off",
            &s.base_snapshot,
            &dataset(s, name),
        ],
    )
}

/// `zfs destroy -r -f <dataset>`.
pub fn zfs_destroy(s: &Settings, name: &str) -> Cmd {
    Cmd::new("zfs", &["destroy", "-r", "-f", &dataset(s, name)])
}

/// Lists the clones under the parent (for the start-up sweep).
pub fn zfs_list_children(s: &Settings) -> Cmd {
    Cmd::new(
        "zfs",
        &[
            "list",
            "-H",
            "-o",
            "name",
            "-t",
            "filesystem",
            "-r",
            "-d",
            "1",
            &s.parent_dataset,
        ],
    )
}

/// The jail names whose clones `zfs list` printed (the sweep's leftovers).
pub fn leftovers(zfs_list: &str, s: &Settings) -> Vec<String> {
    let prefix = format!("{}/{PREFIX}", s.parent_dataset);
    zfs_list
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| format!("{PREFIX}{rest}"))
        .collect()
}

/// `mount -t devfs -o ruleset=<n> devfs <root>/dev`.
pub fn devfs_mount(root: &Path, ruleset: u16) -> Cmd {
    Cmd::new(
        "mount",
        &[
            "-t",
            "devfs",
            "-o",
            &format!("ruleset={ruleset}"),
            "devfs",
            &root.join("dev").display().to_string(),
        ],
    )
}

/// `umount -f <root>/dev`.
pub fn devfs_unmount(root: &Path) -> Cmd {
    Cmd::new("umount", &["-f", &root.join("dev").display().to_string()])
}

/// The commands that install devfs ruleset `n`: everything hidden but null,
/// zero, random, urandom and the fd links.
pub fn devfs_ruleset(n: u16) -> Vec<Cmd> {
    let n = n.to_string();
    let mut cmds = vec![
        Cmd::new("devfs", &["rule", "-s", &n, "delset"]),
        Cmd::new("devfs", &["rule", "-s", &n, "add", "hide"]),
    ];
    for path in [
        "null", "zero", "random", "urandom", "fd", "fd/*", "stdin", "stdout", "stderr",
    ] {
        cmds.push(Cmd::new(
            "devfs",
            &["rule", "-s", &n, "add", "path", path, "unhide"],
        ));
    }
    cmds
}

/// `jail -r <name>`: removes the jail, killing everything in it.
pub fn jail_remove(name: &str) -> Cmd {
    Cmd::new("jail", &["-r", name])
}

/// A step of a jail's set-up that teardown undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The ZFS clone exists.
    Cloned,
    /// devfs is mounted in it.
    Devfs,
    /// Its rctl rules are in place.
    Limited,
    /// The jail exists.
    Jailed,
}

fn run(runner: &dyn CommandRunner, cmd: &Cmd) -> Result<CmdOutput, FreeBsdError> {
    let out = runner.run(cmd).map_err(|source| FreeBsdError::Spawn {
        cmd: cmd.to_string(),
        source,
    })?;
    if !out.success {
        return Err(FreeBsdError::Command {
            cmd: cmd.to_string(),
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out)
}

/// A jail's host-side resources while it is being set up or runs; dropping
/// it (or [`Prepared::teardown`]) undoes every completed step, newest first.
pub struct Prepared<'r> {
    runner: &'r dyn CommandRunner,
    settings: Settings,
    /// The jail's name.
    pub name: String,
    /// Its root.
    pub root: PathBuf,
    done: Vec<Step>,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("name", &self.name)
            .field("done", &self.done)
            .finish()
    }
}

impl<'r> Prepared<'r> {
    /// Clones the root, mounts devfs and applies the limits of the jail for
    /// execution `id`; the jail itself is [`native`]'s (or jail(8)'s) to make,
    /// after which the caller records [`Step::Jailed`].
    pub fn new(
        runner: &'r dyn CommandRunner,
        settings: &Settings,
        id: &str,
        limits: &Limits,
    ) -> Result<Self, FreeBsdError> {
        let name = jail_name(id);
        let mut p = Self {
            runner,
            settings: settings.clone(),
            root: root(settings, &name),
            name,
            done: Vec::new(),
        };
        run(runner, &zfs_clone(settings, &p.name))?;
        p.done.push(Step::Cloned);
        run(runner, &devfs_mount(&p.root, settings.devfs_ruleset))?;
        p.done.push(Step::Devfs);
        // Rules go in before the jail exists (the kernel keys them by name),
        // so nothing runs unlimited.
        p.done.push(Step::Limited);
        for rule in rctl_rules(&p.name, limits) {
            run(runner, &rctl_add(&rule))?;
        }
        Ok(p)
    }

    /// Records that the jail now exists, so teardown removes it.
    pub fn jailed(&mut self) {
        self.done.push(Step::Jailed);
    }

    /// The spec of this jail, with `ip4` when it has an address.
    pub fn spec(&self, ip4: Option<Ipv4Addr>) -> JailSpec {
        JailSpec {
            name: self.name.clone(),
            root: self.root.clone(),
            ip4,
            devfs_ruleset: self.settings.devfs_ruleset,
        }
    }

    /// Undoes every completed step, newest first; every step is tried even
    /// when an earlier one fails, and the first failure is returned.
    pub fn teardown(mut self) -> Result<(), FreeBsdError> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), FreeBsdError> {
        let mut first = None;
        while let Some(step) = self.done.pop() {
            let cmd = match step {
                Step::Jailed => jail_remove(&self.name),
                Step::Limited => rctl_clear(&self.name),
                Step::Devfs => devfs_unmount(&self.root),
                Step::Cloned => zfs_destroy(&self.settings, &self.name),
            };
            if let Err(e) = run(self.runner, &cmd) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        let _ = self.undo();
    }
}

/// Tears down every jail an earlier process left (found by its clone).
pub fn sweep(runner: &dyn CommandRunner, settings: &Settings) -> Result<usize, FreeBsdError> {
    let listed = run(runner, &zfs_list_children(settings))?;
    let names = leftovers(&listed.stdout, settings);
    for name in &names {
        // Each step may find nothing to undo: that is not a failure here.
        for cmd in [
            jail_remove(name),
            devfs_unmount(&root(settings, name)),
            rctl_clear(name),
            zfs_destroy(settings, name),
        ] {
            let _ = runner.run(&cmd);
        }
    }
    Ok(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every command; fails the ones whose line contains `fail`.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        fail: Option<&'static str>,
        stdout: String,
    }

    impl CommandRunner for Fake {
        fn run(&self, cmd: &Cmd) -> std::io::Result<CmdOutput> {
            let line = cmd.to_string();
            self.calls.lock().unwrap().push(line.clone());
            let failed = self.fail.is_some_and(|f| line.contains(f));
            Ok(CmdOutput {
                success: !failed,
                stdout: self.stdout.clone(),
                stderr: if failed { "boom".into() } else { String::new() },
            })
        }
    }

    fn settings() -> Settings {
        Settings {
            base_snapshot: "zroot/sb/base@v1".into(),
            parent_dataset: "zroot/sb/run".into(),
            mount_root: "/var/sb/run".into(),
            devfs_ruleset: 100,
        }
    }

    const LIMITS: Limits = Limits {
        memory_bytes: 512 << 20,
        cpus: 1.5,
        pids: 64,
    };

    #[test]
    fn names_are_safe_for_jails_and_rctl() {
        assert_eq!(jail_name("123"), "sbx-123");
        assert_eq!(jail_name("a.b:c/d"), "sbx-a_b_c_d");
    }

    #[test]
    fn rules_and_params_say_what_they_limit() {
        assert_eq!(
            rctl_rules("sbx-a", &LIMITS),
            [
                "jail:sbx-a:memoryuse:deny=536870912",
                "jail:sbx-a:maxproc:deny=64",
                "jail:sbx-a:pcpu:deny=150",
            ]
        );
        assert_eq!(pcpu(0.001), 1);
        let spec = JailSpec {
            name: "sbx-a".into(),
            root: "/r".into(),
            ip4: None,
            devfs_ruleset: 100,
        };
        let p = jail_params(&spec);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ip4"), Some("disable"));
        assert_eq!(get("children.max"), Some("0"));
        assert_eq!(get("enforce_statfs"), Some("2"));
        assert_eq!(get("path"), Some("/r"));
        let p = jail_params(&JailSpec {
            ip4: Some(Ipv4Addr::new(10, 0, 0, 5)),
            ..spec
        });
        assert!(p.contains(&("ip4.addr".into(), "10.0.0.5".into())));
        assert!(p.contains(&("ip4".into(), "new".into())));
    }

    #[test]
    fn command_lines_are_exact() {
        let s = settings();
        assert_eq!(
            zfs_clone(&s, "sbx-a").to_string(),
            "zfs clone -o mountpoint=/var/sb/run/sbx-a -o setuid=off zroot/sb/base@v1 zroot/sb/run/sbx-a"
        );
        assert_eq!(
            zfs_destroy(&s, "sbx-a").to_string(),
            "zfs destroy -r -f zroot/sb/run/sbx-a"
        );
        assert_eq!(
            devfs_mount(Path::new("/var/sb/run/sbx-a"), 100).to_string(),
            "mount -t devfs -o ruleset=100 devfs /var/sb/run/sbx-a/dev"
        );
        assert_eq!(rctl_clear("sbx-a").to_string(), "rctl -r jail:sbx-a");
        let rules: Vec<String> = devfs_ruleset(100).iter().map(Cmd::to_string).collect();
        assert_eq!(rules[0], "devfs rule -s 100 delset");
        assert_eq!(rules[1], "devfs rule -s 100 add hide");
        assert!(rules.contains(&"devfs rule -s 100 add path urandom unhide".to_string()));
        assert!(!rules.iter().any(|r| r.contains("zfs") || r.contains("bpf")));
    }

    #[test]
    fn set_up_and_teardown_run_in_order() {
        let fake = Fake::default();
        let mut p = Prepared::new(&fake, &settings(), "e1", &LIMITS).unwrap();
        p.jailed();
        p.teardown().unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                "zfs clone -o mountpoint=/var/sb/run/sbx-e1 -o setuid=off zroot/sb/base@v1 zroot/sb/run/sbx-e1",
                "mount -t devfs -o ruleset=100 devfs /var/sb/run/sbx-e1/dev",
                "rctl -a jail:sbx-e1:memoryuse:deny=536870912",
                "rctl -a jail:sbx-e1:maxproc:deny=64",
                "rctl -a jail:sbx-e1:pcpu:deny=150",
                "jail -r sbx-e1",
                "rctl -r jail:sbx-e1",
                "umount -f /var/sb/run/sbx-e1/dev",
                "zfs destroy -r -f zroot/sb/run/sbx-e1",
            ]
        );
    }

    #[test]
    fn a_failed_step_undoes_the_ones_before_it() {
        let fake = Fake {
            fail: Some("maxproc"),
            ..Default::default()
        };
        let err = Prepared::new(&fake, &settings(), "e2", &LIMITS).unwrap_err();
        assert!(
            err.to_string().contains("maxproc") && err.to_string().contains("boom"),
            "{err}"
        );
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(
            &calls[calls.len() - 3..],
            [
                "rctl -r jail:sbx-e2",
                "umount -f /var/sb/run/sbx-e2/dev",
                "zfs destroy -r -f zroot/sb/run/sbx-e2",
            ],
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.starts_with("jail -r")),
            "no jail was made"
        );
    }

    #[test]
    fn the_sweep_tears_down_what_a_dead_process_left() {
        let fake = Fake {
            stdout: "zroot/sb/run\nzroot/sb/run/sbx-old\nzroot/sb/run/other\n".into(),
            ..Default::default()
        };
        assert_eq!(sweep(&fake, &settings()).unwrap(), 1);
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 5, "{calls:?}");
        assert_eq!(calls[1], "jail -r sbx-old");
        assert_eq!(calls[4], "zfs destroy -r -f zroot/sb/run/sbx-old");
    }
}
