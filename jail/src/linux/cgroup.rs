//! A small cgroup writer for v1 (separate `memory`, `cpu` and `pids`
//! hierarchies, as on this machine) and v2 (one unified hierarchy), detected
//! at start-up. Every sandbox gets its own cgroup under one directory per
//! server instance, so a restarted server finds and removes what an earlier
//! process left.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the cgroup filesystems are.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Which cgroup API the machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One directory per controller.
    V1 {
        /// The `memory` hierarchy's mount point.
        memory: PathBuf,
        /// The `cpu` hierarchy's mount point.
        cpu: PathBuf,
        /// The `pids` hierarchy's mount point.
        pids: PathBuf,
    },
    /// The unified hierarchy.
    V2 {
        /// Its mount point.
        root: PathBuf,
    },
}

impl Layout {
    /// Detects the layout from `/proc/self/mountinfo`: a cgroup2 mount at
    /// [`CGROUP_ROOT`] is v2; otherwise the v1 mounts of `memory`, `cpu` and
    /// `pids`, which must all exist.
    pub fn detect() -> io::Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        Self::from_mountinfo(&mountinfo).map_err(io::Error::other)
    }

    /// [`Layout::detect`] on the text of a mountinfo file.
    pub fn from_mountinfo(mountinfo: &str) -> Result<Self, String> {
        let mut v1 = [None, None, None];
        for line in mountinfo.lines() {
            // id parent major:minor root mountpoint options - fstype source superoptions
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mountpoint = left.split(' ').nth(4).unwrap_or_default();
            let mut r = right.split(' ');
            let (fstype, superopts) = (r.next().unwrap_or_default(), r.nth(1).unwrap_or_default());
            if fstype == "cgroup2" && mountpoint == CGROUP_ROOT {
                return Ok(Layout::V2 {
                    root: PathBuf::from(mountpoint),
                });
            }
            if fstype == "cgroup" {
                for opt in superopts.split(',') {
                    let slot = match opt {
                        "memory" => 0,
                        "cpu" => 1,
                        "pids" => 2,
                        _ => continue,
                    };
                    v1[slot].get_or_insert_with(|| PathBuf::from(mountpoint));
                }
            }
        }
        match v1 {
            [Some(memory), Some(cpu), Some(pids)] => Ok(Layout::V1 { memory, cpu, pids }),
            _ => Err(format!(
                "no usable cgroups: neither a cgroup2 filesystem at {CGROUP_ROOT} nor cgroup v1 hierarchies for memory, cpu and pids"
            )),
        }
    }

    /// `v1` or `v2`.
    pub fn version(&self) -> &'static str {
        match self {
            Layout::V1 { .. } => "v1",
            Layout::V2 { .. } => "v2",
        }
    }

    fn hierarchies(&self) -> Vec<&Path> {
        match self {
            Layout::V1 { memory, cpu, pids } => vec![memory, cpu, pids],
            Layout::V2 { root } => vec![root],
        }
    }
}

/// The limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupLimits {
    /// Memory, bytes; swap is not allowed on top.
    pub memory_bytes: u64,
    /// CPU share, cores (0 = unlimited).
    pub cpus: f64,
    /// Most processes and threads.
    pub pids: u32,
}

/// The period of the CPU quota, µs.
const CPU_PERIOD_US: u64 = 100_000;

/// The files and values that set `limits`, in the order they must be
/// written (v1 requires `memsw` ≥ `limit` at all times).
pub fn limit_files(layout: &Layout, limits: &CgroupLimits) -> Vec<(usize, &'static str, String)> {
    let quota = if limits.cpus > 0.0 {
        ((limits.cpus * CPU_PERIOD_US as f64) as u64)
            .max(1000)
            .to_string()
    } else {
        "-1".into()
    };
    match layout {
        Layout::V1 { .. } => vec![
            (0, "memory.limit_in_bytes", limits.memory_bytes.to_string()),
            (
                0,
                "memory.memsw.limit_in_bytes",
                limits.memory_bytes.to_string(),
            ),
            (1, "cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
            (1, "cpu.cfs_quota_us", quota),
            (2, "pids.max", limits.pids.to_string()),
        ],
        Layout::V2 { .. } => vec![
            (0, "memory.max", limits.memory_bytes.to_string()),
            (0, "memory.swap.max", "0".into()),
            (0, "memory.oom.group", "1".into()),
            (
                0,
                "cpu.max",
                if limits.cpus > 0.0 {
                    format!("{quota} {CPU_PERIOD_US}")
                } else {
                    format!("max {CPU_PERIOD_US}")
                },
            ),
            (0, "pids.max", limits.pids.to_string()),
        ],
    }
}

/// The OOM kills counted in a v1 `memory.oom_control` or v2 `memory.events`.
pub fn oom_kills(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// The cgroups of one server instance: `<hierarchy>/<parent>/<sandbox>`.
#[derive(Debug)]
pub struct Cgroups {
    layout: Layout,
    parent: String,
}

impl Cgroups {
    /// The instance's parent cgroup `parent` in each hierarchy, created if
    /// missing (on v2 with the memory, cpu and pids controllers enabled for
    /// its children).
    pub fn new(layout: Layout, parent: &str) -> io::Result<Self> {
        let this = Self {
            layout,
            parent: parent.to_string(),
        };
        for h in this.layout.hierarchies() {
            let dir = h.join(parent);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(annotate(e, &dir)),
            }
        }
        if let Layout::V2 { root } = &this.layout {
            for dir in [root.clone(), root.join(parent)] {
                let control = dir.join("cgroup.subtree_control");
                std::fs::write(&control, "+memory +cpu +pids")
                    .map_err(|e| annotate(e, &control))?;
            }
        }
        Ok(this)
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Creates the cgroup `name`, without limits (see [`Cgroups::limit`]).
    /// Dropping the [`Cgroup`] kills whatever still runs in it and removes
    /// it.
    pub fn create(&self, name: &str) -> io::Result<Cgroup> {
        let mut cg = Cgroup {
            dirs: Vec::new(),
            v2: matches!(self.layout, Layout::V2 { .. }),
            oom_counter: None,
        };
        for h in self.layout.hierarchies() {
            let dir = h.join(&self.parent).join(name);
            std::fs::create_dir(&dir).map_err(|e| annotate(e, &dir))?;
            cg.dirs.push(dir);
        }
        // Opened now, ahead of the invocation that reads it.
        cg.oom_counter = std::fs::File::open(cg.oom_counter_path()).ok();
        Ok(cg)
    }

    /// Sets the limits of `cg`, one of this instance's cgroups (which may
    /// have others already).
    pub fn limit(&self, cg: &Cgroup, limits: &CgroupLimits) -> io::Result<()> {
        let files = limit_files(&self.layout, limits);
        let write = |(i, file, value): &(usize, &str, String)| {
            let path = cg.dirs[*i].join(file);
            match std::fs::write(&path, value) {
                Ok(()) => Ok(()),
                // Kernels without swap accounting have no memsw/swap files:
                // there is no swap to limit.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && (file.contains("memsw") || file.contains("swap")) =>
                {
                    Ok(())
                }
                Err(e) => Err(annotate(e, &path)),
            }
        };
        for (n, f) in files.iter().enumerate() {
            match write(f) {
                // v1 wants memsw >= limit at all times: raising a limit
                // above the memsw already there needs the memsw first.
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidInput
                        && f.1 == "memory.limit_in_bytes" =>
                {
                    match files.get(n + 1) {
                        Some(memsw) if memsw.1 == "memory.memsw.limit_in_bytes" => {
                            write(memsw)?;
                            write(f)?;
                        }
                        _ => return Err(e),
                    }
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Kills and removes every sandbox cgroup under the parent (what an
    /// earlier process of this instance left); returns how many.
    pub fn sweep(&self) -> usize {
        let mut names = std::collections::BTreeSet::new();
        for h in self.layout.hierarchies() {
            if let Ok(entries) = std::fs::read_dir(h.join(&self.parent)) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        names.insert(e.file_name());
                    }
                }
            }
        }
        for name in &names {
            let cg = Cgroup {
                dirs: self
                    .layout
                    .hierarchies()
                    .iter()
                    .map(|h| h.join(&self.parent).join(name))
                    .filter(|d| d.exists())
                    .collect(),
                v2: matches!(self.layout, Layout::V2 { .. }),
                oom_counter: None,
            };
            drop(cg);
        }
        names.len()
    }

    /// Removes the parent cgroups once no sandbox is left in them (a server
    /// shutting down, a test's instance); `false` when a sandbox still is.
    pub fn remove_parent(&self) -> bool {
        self.layout.hierarchies().iter().all(|h| {
            let dir = h.join(&self.parent);
            match std::fs::remove_dir(&dir) {
                Ok(()) => true,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            }
        })
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// One sandbox's cgroup (a directory per hierarchy); removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
    /// The OOM counter file, held open: read at the end of every run, and
    /// opening a cgroup file costs several times what reading it does.
    oom_counter: Option<std::fs::File>,
}

impl Cgroup {
    /// Moves `pid` (a process with one thread) into the cgroup.
    pub fn add(&self, pid: i32) -> io::Result<()> {
        for dir in &self.dirs {
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(|e| annotate(e, &procs))?;
        }
        Ok(())
    }

    /// How many processes the kernel's OOM killer ended in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.oom_counter else {
            return std::fs::read_to_string(self.oom_counter_path())
                .map(|t| oom_kills(&t))
                .unwrap_or(0);
        };
        // A few short lines; each read from offset 0 is a fresh snapshot.
        let mut buf = [0u8; 512];
        file.read_at(&mut buf, 0)
            .map(|n| oom_kills(&String::from_utf8_lossy(&buf[..n])))
            .unwrap_or(0)
    }

    fn oom_counter_path(&self) -> PathBuf {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.dirs[0].join(file)
    }

    /// Peak memory use, bytes, when the kernel reports it.
    pub fn peak_memory(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.dirs[0].join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs every process in the cgroup until none is left (bounded).
    pub fn kill_all(&self) {
        if self.v2 {
            let _ = std::fs::write(self.dirs[0].join("cgroup.kill"), "1");
        }
        for _ in 0..50 {
            let mut any = false;
            for dir in &self.dirs {
                let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                    continue;
                };
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    any = true;
                    // SAFETY: kill(2) with a pid read from the cgroup; at worst ESRCH.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            if !any {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        drop(self.oom_counter.take());
        for dir in &self.dirs {
            // Dying tasks keep a cgroup busy for a moment: retry EBUSY.
            for attempt in 0..100 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if attempt == 99 => {
                        eprintln!(
                            "skybridge-jail: cannot remove cgroup {}: {e}",
                            dir.display()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn layouts_are_detected_from_mountinfo() {
        assert_eq!(
            Layout::from_mountinfo(HYBRID).unwrap(),
            Layout::V1 {
                memory: "/sys/fs/cgroup/memory".into(),
                cpu: "/sys/fs/cgroup/cpu".into(),
                pids: "/sys/fs/cgroup/pids".into(),
            }
        );
        let combined = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        assert!(matches!(
            Layout::from_mountinfo(combined).unwrap(),
            Layout::V1 { cpu, .. } if cpu == Path::new("/sys/fs/cgroup/cpu,cpuacct")
        ));
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            Layout::from_mountinfo(v2).unwrap(),
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(Layout::from_mountinfo("")
            .unwrap_err()
            .contains("no usable cgroups"));
    }

    #[test]
    fn limits_become_the_right_files_in_the_right_order() {
        let limits = CgroupLimits {
            memory_bytes: 64 << 20,
            cpus: 0.5,
            pids: 64,
        };
        let v1 = Layout::from_mountinfo(HYBRID).unwrap();
        let files = limit_files(&v1, &limits);
        assert_eq!(files[0].1, "memory.limit_in_bytes", "limit before memsw");
        assert_eq!(
            files[1],
            (0, "memory.memsw.limit_in_bytes", "67108864".into())
        );
        assert!(files.contains(&(1, "cpu.cfs_quota_us", "50000".into())));
        assert!(files.contains(&(2, "pids.max", "64".into())));
        let v2 = Layout::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        let files = limit_files(&v2, &limits);
        assert!(files.contains(&(0, "memory.swap.max", "0".into())));
        assert!(files.contains(&(0, "cpu.max", "50000 100000".into())));
        let unlimited = CgroupLimits {
            cpus: 0.0,
            ..limits
        };
        assert!(limit_files(&v2, &unlimited).contains(&(0, "cpu.max", "max 100000".into())));
    }

    #[test]
    fn oom_kills_are_read_from_either_version() {
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            oom_kills("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"),
            1
        );
        assert_eq!(oom_kills("oom_kill_disable 0\n"), 0);
    }
}
