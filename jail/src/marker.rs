//! The exit marker: a program that knows it (Skybridge's Go shims, through
//! `SKYBRIDGE_EXIT_MARKER`) ends stdout and stderr with `<marker><code>\n`
//! right before it exits. A runner seeing it on both streams has the whole
//! output and the exit code, and need not wait for the process's exit to
//! travel through its sandbox (a container's teardown, a pid namespace's
//! init). The docker and jail backends both read it.
//!
//! A marker is random per sandbox; a function printing it only ends its own
//! run early, with a code it could have exited with anyway.

/// Bytes past the output cap kept for the marker line, so that it is neither
/// counted as the program's output nor cut off.
pub fn slack(marker: &str) -> usize {
    marker.len() + 24
}

/// A fresh marker (`SKYBRIDGE-EXIT-<32 hex digits>:`).
pub fn new_marker() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most 16 bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 16 {
        // No entropy source: still unique per process and call.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = (t ^ u128::from(std::process::id()) << 64).to_ne_bytes();
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("SKYBRIDGE-EXIT-{hex}:")
}

/// The last bytes of one output stream, to spot the exit marker however the
/// stream is framed (and even past the output cap).
#[derive(Debug, Default)]
pub struct Tail(Vec<u8>);

impl Tail {
    /// Appends `bytes`; the exit code when the stream now ends with
    /// `<marker><code>\n`.
    pub fn push(&mut self, bytes: &[u8], marker: &str) -> Option<i64> {
        let keep = slack(marker);
        self.0.extend_from_slice(bytes);
        if self.0.len() > keep {
            self.0.drain(..self.0.len() - keep);
        }
        let line = self.0.strip_suffix(b"\n")?;
        let at = line
            .windows(marker.len())
            .rposition(|w| w == marker.as_bytes())?;
        std::str::from_utf8(&line[at + marker.len()..])
            .ok()?
            .parse()
            .ok()
    }
}

/// Removes the exit marker line from the end of captured output; where the
/// output cap cut the stream (`truncated`), whatever part of it was kept.
pub fn strip(out: &mut Vec<u8>, marker: &str, truncated: bool) {
    let m = marker.as_bytes();
    let tail_from = out.len().saturating_sub(slack(marker));
    if let Some(i) = out[tail_from..].windows(m.len()).rposition(|w| w == m) {
        out.truncate(tail_from + i);
    } else if truncated {
        if let Some(n) = (1..m.len()).rev().find(|&n| out.ends_with(&m[..n])) {
            out.truncate(out.len() - n);
        }
    }
}

/// [`strip`], then the cap applied again to what is left.
pub fn strip_and_cap(out: &mut Vec<u8>, truncated: &mut bool, marker: &str, cap: usize) {
    strip(out, marker, *truncated);
    if out.len() > cap {
        out.truncate(cap);
        *truncated = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "SKYBRIDGE-EXIT-0123456789abcdef:";

    #[test]
    fn the_marker_is_found_across_frames_and_only_at_the_end() {
        let mut t = Tail::default();
        assert_eq!(t.push(b"result\nSKYBRIDGE-EX", M), None);
        assert_eq!(t.push(b"IT-0123456789abcdef:", M), None);
        assert_eq!(t.push(b"3\n", M), Some(3));
        let mut t = Tail::default();
        assert_eq!(t.push(format!("{M}0\nmore\n").as_bytes(), M), None);
        assert_eq!(t.push(format!("x{M}0\n").as_bytes(), M), Some(0));
    }

    #[test]
    fn the_marker_is_stripped_whole_or_cut() {
        let mut out = format!("{{\"a\":1}}\n{M}0\n").into_bytes();
        strip(&mut out, M, false);
        assert_eq!(out, b"{\"a\":1}\n");
        let mut out = b"ends with S".to_vec();
        strip(&mut out, M, false);
        assert_eq!(out, b"ends with S", "no marker, nothing cut");
        let mut out = b"capped outputSKYBRI".to_vec();
        strip(&mut out, M, true);
        assert_eq!(out, b"capped output");
    }

    #[test]
    fn markers_are_fresh_and_capped_output_stays_capped() {
        let (a, b) = (new_marker(), new_marker());
        assert_ne!(a, b);
        assert!(a.starts_with("SKYBRIDGE-EXIT-") && a.ends_with(':') && a.len() == 48);
        let mut out = format!("0123456789{M}0\n").into_bytes();
        let mut cut = false;
        strip_and_cap(&mut out, &mut cut, M, 4);
        assert_eq!((out.as_slice(), cut), (&b"0123"[..], true));
    }
}
