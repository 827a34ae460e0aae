//! What the server and a sandbox's init (`skybridge-jail-init`) say to each
//! other over two pipes: on init's fd 3 the server writes the [`InitConfig`]
//! (framed by [`frame`]) as soon as init is started, then, once init is in
//! its cgroup (and has its network), the byte [`GO`]; init writes its
//! [`Report`]s back on fd 4. Pure encoding, so both sides are unit-tested
//! without a sandbox.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// fd on which init reads its [`InitConfig`].
pub const CONFIG_FD: i32 = 3;
/// fd on which init writes its [`Report`]s.
pub const REPORT_FD: i32 = 4;
/// Sent once init is in its sandbox's cgroup, before the configuration (a
/// spare init gets it ahead of time): init then starts pid 2, which waits
/// to exec the function. Anything else (the server gone) makes init exit.
pub const IN_CGROUP: u8 = b'C';
/// Sent after the configuration when the function may start: the cgroup's
/// limits are set. Anything else (the server gone) makes init exit.
pub const GO: u8 = b'G';

/// A configuration as it travels: its length (`u32`, little-endian), then
/// its bytes; init builds the sandbox while the server still prepares the
/// cgroup, and waits for [`GO`] only before starting the function.
pub fn frame(config: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(config.len()).map_err(|_| "the configuration is too large")?;
    let mut out = Vec::with_capacity(4 + config.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(config);
    Ok(out)
}

/// The network of a sandbox that has one: its `eth0` (already moved into the
/// sandbox by the server) gets `addr/prefix_len` and a default route via
/// `gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The sandbox's address.
    pub addr: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
    /// Default gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// Name servers for `/etc/resolv.conf`.
    pub nameservers: Vec<Ipv4Addr>,
}

/// Everything init needs to build the sandbox and start the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitConfig {
    /// The function's binary on the host; bound read-only at `/function`.
    pub program: PathBuf,
    /// `argv[0]` of the function.
    pub argv0: String,
    /// Its further arguments.
    pub args: Vec<String>,
    /// The function's environment.
    pub env: Vec<(String, String)>,
    /// Host name inside the sandbox.
    pub hostname: String,
    /// Size of `/tmp`, bytes.
    pub tmp_bytes: u64,
    /// Most files in `/tmp`.
    pub tmp_inodes: u64,
    /// `RLIMIT_NOFILE`.
    pub nofile: u64,
    /// `RLIMIT_FSIZE`, bytes.
    pub fsize: u64,
    /// The network, when the function has one.
    pub net: Option<NetConfig>,
}

/// The path of the function's binary inside the sandbox.
pub const PROGRAM_PATH: &str = "/function";

fn push(out: &mut Vec<u8>, key: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("the value of `{key}` holds a NUL byte"));
    }
    out.extend_from_slice(key.as_bytes());
    out.push(0);
    out.extend_from_slice(value.as_bytes());
    out.push(0);
    Ok(())
}

impl InitConfig {
    /// `key\0value\0` pairs. Values never hold NUL: the API refuses NUL in
    /// names and environment variables, and [`InitConfig::encode`] refuses to
    /// encode one.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(512);
        let path = |p: &PathBuf| {
            p.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("path {} is not UTF-8", p.display()))
        };
        push(&mut out, "program", &path(&self.program)?)?;
        push(&mut out, "argv0", &self.argv0)?;
        for a in &self.args {
            push(&mut out, "arg", a)?;
        }
        push(&mut out, "hostname", &self.hostname)?;
        push(&mut out, "tmp_bytes", &self.tmp_bytes.to_string())?;
        push(&mut out, "tmp_inodes", &self.tmp_inodes.to_string())?;
        push(&mut out, "nofile", &self.nofile.to_string())?;
        push(&mut out, "fsize", &self.fsize.to_string())?;
        if let Some(n) = &self.net {
            push(
                &mut out,
                "net",
                &format!("{}/{} {}", n.addr, n.prefix_len, n.gateway),
            )?;
            for ns in &n.nameservers {
                push(&mut out, "nameserver", &ns.to_string())?;
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') {
                return Err(format!("environment variable name `{k}` is invalid"));
            }
            push(&mut out, "env", &format!("{k}={v}"))?;
        }
        Ok(out)
    }

    /// The inverse of [`InitConfig::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err("empty configuration".into());
        }
        let mut fields: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
        if fields.pop() != Some(&[][..]) || !fields.len().is_multiple_of(2) {
            return Err("truncated configuration".into());
        }
        let mut c = InitConfig {
            program: PathBuf::new(),
            argv0: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            hostname: String::new(),
            tmp_bytes: 0,
            tmp_inodes: 0,
            nofile: 0,
            fsize: 0,
            net: None,
        };
        let mut nameservers = Vec::new();
        for pair in fields.chunks(2) {
            let key = std::str::from_utf8(pair[0]).map_err(|_| "key is not UTF-8")?;
            let value = std::str::from_utf8(pair[1])
                .map_err(|_| format!("value of `{key}` is not UTF-8"))?;
            let num = |v: &str| -> Result<u64, String> {
                v.parse()
                    .map_err(|_| format!("`{key}` = `{v}` is not a number"))
            };
            match key {
                "program" => c.program = value.into(),
                "argv0" => c.argv0 = value.into(),
                "arg" => c.args.push(value.into()),
                "hostname" => c.hostname = value.into(),
                "tmp_bytes" => c.tmp_bytes = num(value)?,
                "tmp_inodes" => c.tmp_inodes = num(value)?,
                "nofile" => c.nofile = num(value)?,
                "fsize" => c.fsize = num(value)?,
                "net" => c.net = Some(parse_net(value)?),
                "nameserver" => nameservers.push(
                    value
                        .parse()
                        .map_err(|_| format!("bad name server `{value}`"))?,
                ),
                "env" => {
                    let (k, v) = value
                        .split_once('=')
                        .ok_or_else(|| format!("bad environment entry `{value}`"))?;
                    c.env.push((k.to_string(), v.to_string()));
                }
                other => return Err(format!("unknown key `{other}`")),
            }
        }
        if let Some(n) = &mut c.net {
            n.nameservers = nameservers;
        }
        if c.program.as_os_str().is_empty() {
            return Err("program is required".into());
        }
        Ok(c)
    }
}

fn parse_net(value: &str) -> Result<NetConfig, String> {
    let bad = || format!("bad network `{value}`");
    let (cidr, gateway) = value.split_once(' ').ok_or_else(bad)?;
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    Ok(NetConfig {
        addr: addr.parse().map_err(|_| bad())?,
        prefix_len: prefix.parse().map_err(|_| bad())?,
        gateway: gateway.parse().map_err(|_| bad())?,
        nameservers: Vec::new(),
    })
}

/// A step of the sandbox's set-up, named in failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading or decoding the configuration.
    Config,
    /// Entering a new cgroup namespace.
    CgroupNs,
    /// Building the root filesystem.
    Mounts,
    /// Setting the host name.
    Hostname,
    /// Configuring `lo` and `eth0`.
    Network,
    /// Building the seccomp filter.
    Seccomp,
    /// Starting the function's process.
    Fork,
    /// Dropping privileges (rlimits, capabilities, user, no_new_privs, seccomp).
    Privileges,
    /// Executing the function's binary.
    Exec,
}

impl Stage {
    /// Its name on the wire and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Config => "config",
            Stage::CgroupNs => "cgroupns",
            Stage::Mounts => "mounts",
            Stage::Hostname => "hostname",
            Stage::Network => "network",
            Stage::Seccomp => "seccomp",
            Stage::Fork => "fork",
            Stage::Privileges => "privileges",
            Stage::Exec => "exec",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Stage::Config,
            Stage::CgroupNs,
            Stage::Mounts,
            Stage::Hostname,
            Stage::Network,
            Stage::Seccomp,
            Stage::Fork,
            Stage::Privileges,
            Stage::Exec,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One message from init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The function's process runs (its `execve` succeeded).
    Ready,
    /// Set-up failed at `stage` with `errno` (0 when not a system call).
    Failed {
        /// Where.
        stage: Stage,
        /// The OS error number.
        errno: i32,
        /// What was being done.
        detail: String,
    },
    /// The function's process ended with this raw wait status.
    Exited(i32),
}

impl Report {
    /// One line.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Report::Ready => b"R\n".to_vec(),
            Report::Failed {
                stage,
                errno,
                detail,
            } => {
                let detail: String = detail
                    .chars()
                    .map(|c| if c == '\n' { ' ' } else { c })
                    .collect();
                format!("E{}\t{errno}\t{detail}\n", stage.as_str()).into_bytes()
            }
            Report::Exited(status) => format!("S{status}\n").into_bytes(),
        }
    }

    /// Decodes the complete lines at the start of `buf`, removing them.
    pub fn take(buf: &mut Vec<u8>) -> Result<Vec<Report>, String> {
        let mut out = Vec::new();
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = std::str::from_utf8(&line[..nl]).map_err(|_| "report is not UTF-8")?;
            out.push(Self::parse(line)?);
        }
        Ok(out)
    }

    fn parse(line: &str) -> Result<Self, String> {
        let bad = || format!("malformed report `{line}`");
        match line.as_bytes().first() {
            Some(b'R') if line == "R" => Ok(Report::Ready),
            Some(b'S') => line[1..].parse().map(Report::Exited).map_err(|_| bad()),
            Some(b'E') => {
                let mut parts = line[1..].splitn(3, '\t');
                let stage = parts.next().and_then(Stage::parse).ok_or_else(bad)?;
                let errno = parts.next().and_then(|e| e.parse().ok()).ok_or_else(bad)?;
                Ok(Report::Failed {
                    stage,
                    errno,
                    detail: parts.next().unwrap_or_default().to_string(),
                })
            }
            _ => Err(bad()),
        }
    }
}

/// How a process ended, from its raw wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// Decodes a raw wait status.
    pub fn from_status(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        }
    }

    /// The shell's convention: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InitConfig {
        InitConfig {
            program: "/var/lib/skybridge/artifacts/ab/cd/fn".into(),
            argv0: "geo".into(),
            args: vec!["-c".into(), "echo 'a b'".into(), String::new()],
            env: vec![
                ("A".into(), "1".into()),
                ("JSON".into(), "{\"k\": \"a=b\"}".into()),
                ("EMPTY".into(), String::new()),
            ],
            hostname: "geo-0190".into(),
            tmp_bytes: 64 << 20,
            tmp_inodes: 4096,
            nofile: 256,
            fsize: 64 << 20,
            net: Some(NetConfig {
                addr: "10.77.0.10".parse().unwrap(),
                prefix_len: 24,
                gateway: "10.77.0.1".parse().unwrap(),
                nameservers: vec!["10.77.0.1".parse().unwrap()],
            }),
        }
    }

    #[test]
    fn frames_carry_their_length() {
        let f = frame(b"abc").unwrap();
        assert_eq!(f, [3, 0, 0, 0, b'a', b'b', b'c']);
        assert_eq!(frame(&[]).unwrap(), [0, 0, 0, 0]);
    }

    #[test]
    fn configs_round_trip() {
        let c = sample();
        assert_eq!(InitConfig::decode(&c.encode().unwrap()).unwrap(), c);
        let mut c = sample();
        c.net = None;
        c.env.clear();
        assert_eq!(InitConfig::decode(&c.encode().unwrap()).unwrap(), c);
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let mut c = sample();
        c.env.push(("BAD".into(), "nul\0inside".into()));
        assert!(c.encode().unwrap_err().contains("NUL"));
        let mut c = sample();
        c.env.push(("A=B".into(), "x".into()));
        assert!(c.encode().is_err());
        let bytes = sample().encode().unwrap();
        assert!(InitConfig::decode(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        assert!(InitConfig::decode(b"nofile\0many\0")
            .unwrap_err()
            .contains("not a number"));
        assert!(InitConfig::decode(b"colour\0red\0")
            .unwrap_err()
            .contains("unknown key"));
        assert!(InitConfig::decode(b"").unwrap_err().contains("empty"));
    }

    #[test]
    fn reports_round_trip_across_partial_reads() {
        let reports = [
            Report::Ready,
            Report::Failed {
                stage: Stage::Exec,
                errno: 2,
                detail: "execve /function\nagain".into(),
            },
            Report::Exited(9),
        ];
        let wire: Vec<u8> = reports.iter().flat_map(Report::encode).collect();
        let mut buf = wire[..5].to_vec();
        let mut got = Report::take(&mut buf).unwrap();
        buf.extend_from_slice(&wire[5..]);
        got.extend(Report::take(&mut buf).unwrap());
        assert!(buf.is_empty());
        assert_eq!(got[0], Report::Ready);
        assert_eq!(
            got[1],
            Report::Failed {
                stage: Stage::Exec,
                errno: 2,
                detail: "execve /function again".into()
            }
        );
        assert_eq!(got[2], Report::Exited(9));
        assert!(Report::take(&mut b"X\n".to_vec()).is_err());
    }

    #[test]
    fn wait_statuses_decode() {
        assert_eq!(Exit::from_status(3 << 8), Exit::Code(3));
        assert_eq!(Exit::from_status(9), Exit::Signal(9));
        assert_eq!(Exit::Signal(9).code(), 137);
    }
}
