//! The Linux driver against the real kernel: these tests need root (CI runs
//! as root) and a static busybox (`busybox-static`), which plays the function
//! so each test states its program as a shell script.

#![cfg(target_os = "linux")]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skybridge_jail::ip_pool::{Ip4Config, IpPool, IpState};
use skybridge_jail::linux::cgroup::Layout;
use skybridge_jail::linux::net::Netlink;
use skybridge_jail::linux::{Driver, DriverConfig, End, Finished, JailError, Spec};
use skybridge_jail::proto::{Exit, Stage};

const BUSYBOX: &str = "/bin/busybox";

struct Fixture {
    driver: Driver,
    instance: String,
    /// A test simulated a crash: its driver counts a sandbox forever.
    crashed: bool,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    /// Every test leaves no cgroup behind: once its sandboxes are torn down
    /// (on the runtime's other worker), the instance's parent goes too.
    fn drop(&mut self) {
        if self.crashed {
            return;
        }
        for _ in 0..200 {
            if self.driver.remove_cgroups() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "sandboxes of {} were still alive 5 s after the test",
            self.instance
        );
    }
}

fn fixture() -> Fixture {
    fixture_with_spares(2)
}

fn fixture_with_spares(spare_inits: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // Unique per fixture: a driver sweeps its instance's cgroups at start, so
    // two tests sharing a name would remove each other's sandboxes.
    static FIXTURES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = FIXTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let instance = format!("test{:x}n{n}r{}", std::process::id(), rand_small());
    let driver = Driver::new(DriverConfig {
        init: PathBuf::from(env!("CARGO_BIN_EXE_skybridge-jail-init")),
        state_dir: dir.path().to_path_buf(),
        instance: instance.clone(),
        uid: 65534,
        gid: 65534,
        setup_timeout: Duration::from_secs(10),
        spare_inits,
    })
    .expect("the jail driver needs root and cgroups");
    Fixture {
        driver,
        instance,
        crashed: false,
        _dir: dir,
    }
}

fn rand_small() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % 1000
}

fn sh(script: &str) -> Spec {
    Spec {
        program: BUSYBOX.into(),
        argv0: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("GREETING".into(), "hello there".into())],
        hostname: "fn-test".into(),
        memory_bytes: 64 << 20,
        cpus: 1.0,
        pids: 32,
        tmp_bytes: 1 << 20,
        tmp_inodes: 64,
        nofile: 64,
        fsize: 4 << 20,
        network: None,
        nameservers: Vec::new(),
        exit_marker: None,
    }
}

fn deadline(ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(ms)
}

async fn run(f: &Fixture, spec: Spec, input: &str, ms: u64) -> Finished {
    let jail = f.driver.spawn(spec).await.expect("spawn");
    jail.run(
        input.as_bytes(),
        deadline(ms),
        1 << 20,
        std::future::pending(),
    )
    .await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hierarchies() -> Vec<PathBuf> {
    match Layout::detect().unwrap() {
        Layout::V1 { memory, cpu, pids } => vec![memory, cpu, pids],
        Layout::V2 { root } => vec![root],
    }
}

/// The instance's sandbox cgroups still present, per hierarchy.
fn leftover_cgroups(instance: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .flat_map(|r| {
            std::fs::read_dir(r.join(format!("skybridge-{instance}")))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect()
}

/// Every sandbox is torn down, and closing the driver (its spares go)
/// leaves nothing of the instance in any hierarchy.
async fn assert_clean(f: &Fixture) {
    assert!(
        f.driver.wait_idle(Duration::from_secs(10)).await,
        "{} sandboxes still alive",
        f.driver.live()
    );
    assert!(
        f.driver.remove_cgroups(),
        "{:?}",
        leftover_cgroups(&f.instance)
    );
    let parents: Vec<PathBuf> = hierarchies()
        .iter()
        .map(|h| h.join(format!("skybridge-{}", f.instance)))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(parents, Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_output_and_exit_code_travel_through_the_pipes() {
    let f = fixture();
    let r = run(
        &f,
        sh(r#"read line; echo "got $line and $GREETING"; echo oops >&2; exit 3"#),
        "hello\n",
        5000,
    )
    .await;
    assert_eq!(r.end, End::Exited(Exit::Code(3)), "{r:?}");
    assert_eq!(text(&r.stdout), "got hello and hello there\n");
    assert_eq!(text(&r.stderr), "oops\n");
    assert!(!r.oom_killed);
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_sees_its_own_small_world() {
    let f = fixture();
    let r = run(
        &f,
        sh(
            "echo pid=$$; hostname; ls /; id -u; id -g; ls /proc | grep -c '^[0-9]'; \
            grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; \
            cat /proc/self/cgroup | head -1; ls /dev; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
        ),
        "",
        5000,
    )
    .await;
    let out = text(&r.stdout);
    assert_eq!(
        r.end,
        End::Exited(Exit::Code(0)),
        "{out} {}",
        text(&r.stderr)
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "pid=2", "init is pid 1, the function pid 2");
    assert_eq!(lines[1], "fn-test");
    let root: Vec<&str> = lines[2..7].to_vec();
    assert_eq!(root, ["dev", "etc", "function", "proc", "tmp"], "{out}");
    assert_eq!(&lines[7..9], ["65534", "65534"]);
    // Only its own processes (the shell, ls and grep; init is hidden).
    let procs: usize = lines[9].parse().unwrap();
    assert!((1..=3).contains(&procs), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("0::/\n") || out.contains(":/\n"),
        "its own cgroup namespace: {out}"
    );
    for dev in ["null", "random", "urandom", "zero"] {
        assert!(lines.contains(&dev), "{dev} in /dev: {out}");
    }
    assert_eq!(lines.last(), Some(&"lo"), "loopback only: {out}");
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_is_read_only_and_tmp_is_capped() {
    let f = fixture();
    let r = run(
        &f,
        sh("touch /x 2>/dev/null && echo wrote-root; \
            echo hi > /function 2>/dev/null && echo wrote-binary; \
            echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo wrote-sysctl; \
            echo data > /tmp/f && cat /tmp/f; \
            dd if=/dev/zero of=/tmp/big bs=1k count=4096 2>/dev/null || echo tmp-full; \
            cat /etc/shadow 2>/dev/null || echo no-shadow; \
            ls /root 2>/dev/null || echo no-root"),
        "",
        5000,
    )
    .await;
    assert_eq!(
        text(&r.stdout),
        "data\ntmp-full\nno-shadow\nno-root\n",
        "{}",
        text(&r.stderr)
    );
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_kills_the_whole_tree() {
    let f = fixture();
    let started = std::time::Instant::now();
    let r = run(
        &f,
        sh("echo begun; sleep 100 & sleep 100; echo never"),
        "",
        300,
    )
    .await;
    assert_eq!(r.end, End::TimedOut);
    assert_eq!(text(&r.stdout), "begun\n", "partial output is kept");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_does_not_outlive_its_execution() {
    let f = fixture();
    let started = std::time::Instant::now();
    let r = run(
        &f,
        sh("(sleep 1000 &) ; (sleep 1000 > /dev/null 2>&1 &); echo started"),
        "",
        10_000,
    )
    .await;
    assert_eq!(r.end, End::Exited(Exit::Code(0)));
    assert_eq!(text(&r.stdout), "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_process_limits_hold() {
    let f = fixture();
    // A child killed by the OOM killer: the function sees it and goes on.
    let mut spec = sh("dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null || echo dd-died-$?");
    spec.memory_bytes = 16 << 20;
    let r = run(&f, spec, "", 10_000).await;
    assert!(r.oom_killed, "{r:?}");
    assert_eq!(text(&r.stdout), "dd-died-137\n");
    // The function itself.
    let mut spec = sh("exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    spec.memory_bytes = 16 << 20;
    let r = run(&f, spec, "", 10_000).await;
    assert_eq!(r.end, End::Exited(Exit::Signal(libc::SIGKILL)));
    assert!(r.oom_killed, "{r:?}");

    let mut spec = sh("for i in $(seq 40); do sleep 5 & done; echo looped; kill $(jobs -p); wait");
    spec.pids = 8;
    let r = run(&f, spec, "", 10_000).await;
    assert!(text(&r.stderr).contains("can't fork"), "{r:?}");
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sandbox_ends_as_killed() {
    let f = fixture();
    let jail = f.driver.spawn(sh("sleep 100")).await.unwrap();
    let r = jail
        .run(
            b"",
            deadline(10_000),
            1024,
            tokio::time::sleep(Duration::from_millis(200)),
        )
        .await;
    assert_eq!(r.end, End::Killed);
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_marker_ends_the_run_without_waiting_for_the_exit() {
    let f = fixture();
    let marker = skybridge_jail::marker::new_marker();
    let mut spec = sh(r#"echo result; echo "${M}4"; echo warn >&2; echo "${M}4" >&2; sleep 30"#);
    spec.env.push(("M".into(), marker.clone()));
    spec.exit_marker = Some(marker);
    let started = std::time::Instant::now();
    let r = run(&f, spec, "", 20_000).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run waited for the process: {:?}",
        started.elapsed()
    );
    assert_eq!(r.end, End::Exited(Exit::Code(4)), "{r:?}");
    assert_eq!(
        (text(&r.stdout), text(&r.stderr)),
        ("result\n".into(), "warn\n".into()),
        "the marker lines are not output"
    );
    // The sleeping process went with the sandbox.
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_inits_serve_one_sandbox_each() {
    let f = fixture();
    // Sandboxes in a row take spares as the driver refills them; each sees
    // only itself.
    for i in 0..6 {
        let r = run(&f, sh("echo $$; cat /proc/1/cmdline"), "", 5000).await;
        assert_eq!(
            r.end,
            End::Exited(Exit::Code(1)),
            "{i}: init is hidden: {r:?}"
        );
        assert_eq!(text(&r.stdout), "2\n", "{i}: a pid namespace of its own");
    }
    assert_clean(&f).await;
    // Without spares, each set-up waits for its own, made the same way.
    let f = fixture_with_spares(0);
    for i in 0..2 {
        let r = run(&f, sh("echo $$"), "", 5000).await;
        assert_eq!(text(&r.stdout), "2\n", "{i}: {r:?}");
    }
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_sandbox_waits_for_its_input() {
    let f = fixture();
    let jail = f
        .driver
        .spawn(sh("read x; echo \"warm $x\""))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!jail.has_exited());
    let r = jail
        .run(b"start\n", deadline(5000), 1024, std::future::pending())
        .await;
    assert_eq!(text(&r.stdout), "warm start\n");
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_failures_name_their_step() {
    let f = fixture();
    let mut spec = sh("true");
    spec.program = "/nonexistent/binary".into();
    match f.driver.spawn(spec).await {
        Err(JailError::Setup {
            stage,
            errno,
            detail,
        }) => {
            assert_eq!(stage, Stage::Mounts, "{detail}");
            assert_eq!(errno, libc::ENOENT, "{detail}");
        }
        other => panic!("expected a set-up failure, got {other:?}"),
    }
    let mut spec = sh("true");
    spec.program = "/etc/hostname".into();
    match f.driver.spawn(spec).await {
        Err(JailError::Setup { stage, .. }) => assert_eq!(stage, Stage::Exec),
        other => panic!("expected an exec failure, got {other:?}"),
    }
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_removes_what_a_dead_process_left() {
    let mut f = fixture();
    f.crashed = true;
    let jail = f.driver.spawn(sh("sleep 1000")).await.unwrap();
    let pid = jail.pid();
    let name = jail.name().to_string();
    // A crash: nothing of the jail's teardown runs.
    std::mem::forget(jail);
    let crashed = |left: Vec<PathBuf>| {
        left.into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == name.as_str()))
            .count()
    };
    assert_eq!(
        crashed(leftover_cgroups(&f.instance)),
        hierarchies().len(),
        "the sandbox's cgroup, in each hierarchy"
    );
    let dir = tempfile::tempdir().unwrap();
    let again = Driver::new(DriverConfig {
        init: PathBuf::from(env!("CARGO_BIN_EXE_skybridge-jail-init")),
        state_dir: dir.path().to_path_buf(),
        instance: f.instance.clone(),
        uid: 65534,
        gid: 65534,
        setup_timeout: Duration::from_secs(10),
        spare_inits: 2,
    })
    .unwrap();
    assert_eq!(crashed(leftover_cgroups(&f.instance)), 0, "swept at start");
    // The sandbox's processes are gone (init is a zombie until reaped: it
    // was our child).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(state.is_empty() || state.contains(") Z"), "{state}");
    // The crashed process is gone for good (with the spares it was making),
    // and the new one leaves nothing at the end.
    drop(std::mem::replace(&mut f.driver, again));
    f.crashed = false;
    assert_clean(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_from_the_pool_reaches_the_gateway_and_comes_back() {
    let f = fixture();
    let nl = Netlink::connect().unwrap();
    let bridge = format!(
        "sbt{:x}",
        rand_small() + 1000 * (std::process::id() as u64 % 1000)
    );
    let subnet = 200 + (std::process::id() % 50) as u8;
    let gateway = Ipv4Addr::new(10, 213, subnet, 1);
    assert!(nl.ensure_bridge(&bridge, gateway, 24).await.unwrap());
    let result = async {
        let pool = Arc::new(
            IpPool::new(Ip4Config {
                bridge: bridge.clone(),
                first: Ipv4Addr::new(10, 213, subnet, 10),
                count: 2,
                prefix_len: 24,
                gateway,
            })
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind((gateway, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, peer) = listener.accept().await.unwrap();
            use tokio::io::AsyncWriteExt;
            s.write_all(b"welcome\n").await.unwrap();
            peer
        });
        let mut spec = sh(&format!(
            "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'; nc {gateway} {port} </dev/null"
        ));
        spec.network = Some(pool.lease("test").unwrap());
        assert_eq!(pool.available(), 1);
        let r = run(&f, spec, "", 10_000).await;
        let out = text(&r.stdout);
        assert!(out.contains("inet 10.213."), "{out} {}", text(&r.stderr));
        assert!(out.contains("welcome"), "{out} {}", text(&r.stderr));
        let peer = server.await.unwrap();
        assert_eq!(
            peer.ip(),
            std::net::IpAddr::V4(Ipv4Addr::new(10, 213, subnet, 10))
        );

        let r = run(
            &f,
            sh(&format!(
                "nc -w 2 {gateway} {port} </dev/null && echo connected"
            )),
            "",
            10_000,
        )
        .await;
        assert!(
            !text(&r.stdout).contains("connected"),
            "no network without a lease"
        );
        assert_clean(&f).await;
        assert_eq!(
            pool.list(Some(IpState::Available)).len(),
            2,
            "the pool is whole again"
        );
        assert!(
            nl.links_with_prefix("sbj").await.unwrap().is_empty(),
            "every veth is gone"
        );
    };
    result.await;
    nl.delete(&bridge).await.unwrap();
}
