//! The request contract: every pattern and bound the server enforces on what
//! clients send, in one place.
//!
//! Validation (`functions`, `gobuild`, the HTTP extractors) checks values with
//! these very patterns, and `api::openapi` publishes them in the OpenAPI document,
//! so the spec and the server cannot disagree: a request the spec calls valid is
//! never refused as malformed, and one it calls invalid is never accepted.
//!
//! Patterns are written in the subset of regular expressions that ECMA-262 (what
//! JSON Schema means), Python's `re` and Rust's `regex` read alike: no look-around,
//! no `\d`/`\w`, no `.`, ASCII classes only.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::Config;
use crate::model::BackendKind;

/// A pattern: its source (published in the spec) and the compiled form (used by
/// validation).
pub struct Pattern {
    source: LazyLock<String>,
    compiled: LazyLock<Regex>,
}

impl Pattern {
    /// The regular expression as the spec publishes it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `value` matches (the whole value: every pattern is anchored).
    pub fn matches(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }
}

macro_rules! pattern {
    ($(#[$doc:meta])* $name:ident = $source:expr) => {
        $(#[$doc])*
        pub static $name: Pattern = Pattern {
            source: LazyLock::new(|| $source),
            compiled: LazyLock::new(|| Regex::new(&$name.source).expect("contract patterns compile")),
        };
    };
}

/// Characters of a path segment in a repository URL.
const SEG_CHARS: &str = "A-Za-z0-9._~:%@+-";
/// The same without `:` (the `host/owner/name` form has no scheme or port).
const SEG_CHARS_NO_COLON: &str = "A-Za-z0-9._~%@+-";

/// A non-empty path segment of `chars` that is not `..`.
fn segment(chars: &str) -> String {
    let no_dot = chars.replace('.', "");
    format!("(?:[{no_dot}][{chars}]*|\\.(?:[{no_dot}][{chars}]*)?|\\.\\.[{chars}]+)")
}

/// Names of `[A-Za-z0-9_]` not starting with a digit, nor with `prefix`
/// (which must be of `[A-Z_]`): a pattern without look-ahead, one alternative
/// per length of the shared prefix.
fn identifier_without_prefix(prefix: &str) -> String {
    const REST: &str = "[A-Za-z0-9_]*";
    let all: Vec<char> = ('A'..='Z').chain('a'..='z').chain('0'..='9').collect();
    let class_without = |c: char, digits: bool| -> String {
        let mut chars: Vec<char> = all
            .iter()
            .copied()
            .filter(|&x| x != c && (digits || !x.is_ascii_digit()))
            .collect();
        if c != '_' {
            chars.push('_');
        }
        format!("[{}]", compress(&chars))
    };
    let mut alternatives = vec![format!(
        "{}{REST}",
        class_without(prefix.chars().next().unwrap(), false)
    )];
    for (i, c) in prefix.chars().enumerate().skip(1) {
        let head = &prefix[..i];
        alternatives.push(format!("{head}(?:{}{REST})?", class_without(c, true)));
    }
    format!("^(?:{})$", alternatives.join("|"))
}

/// `ABCDXYZ` → `A-DX-Z`: runs of consecutive characters as ranges.
fn compress(chars: &[char]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let start = chars[i];
        let mut end = start;
        while i + 1 < chars.len() && chars[i + 1] as u32 == end as u32 + 1 {
            i += 1;
            end = chars[i];
        }
        match end as u32 - start as u32 {
            0 => out.push(start),
            1 => {
                out.push(start);
                out.push(end);
            }
            _ => out.push_str(&format!("{start}-{end}")),
        }
        i += 1;
    }
    out
}

/// Standard base64 alphabet.
const B64: &str = "[A-Za-z0-9+/]";
/// A last base64 character before `==`: its low 4 bits are zero (canonical).
const B64_END2: &str = "[AQgw]";
/// A last base64 character before `=`: its low 2 bits are zero (canonical).
const B64_END1: &str = "[AEIMQUYcgkosw048]";

pattern!(
    /// Function names: 1-63 of `a-z 0-9 - _`, starting with a letter or digit.
    FUNCTION_NAME = "^[a-z0-9][a-z0-9_-]{0,62}$".to_string()
);
pattern!(
    /// Environment variable names: letters, digits and `_`, not starting with a
    /// digit, not starting with the reserved `SKYBRIDGE_`.
    ENV_NAME = identifier_without_prefix("SKYBRIDGE_")
);
pattern!(
    /// Values without NUL, which no environment can hold. Also image command
    /// arguments.
    NO_NUL = "^[^\\x00]*$".to_string()
);
pattern!(
    /// A WASI module: canonical, padded standard base64 of bytes that start with
    /// the WebAssembly magic `\0asm`. Its base64 starts `AGFzb`, and the sixth
    /// character carries the magic's last two bits (`01`): one of `Q`-`Z`, `a`-`f`.
    WASM_MODULE = format!(
        "^AGFzb(?:Q==|[Q-Za-f]{B64_END1}=|[Q-Za-f]{B64}{{2}}(?:{B64}{{4}})*(?:{B64}{B64_END2}==|{B64}{{2}}{B64_END1}=)?)$"
    )
);
pattern!(
    /// A Go repository: `host.tld/owner/name[/…]` (fetched over https, as Sky
    /// Island does), `https://[user[:token]@]host[:port]/path`, or
    /// `file:///absolute/path`. No `..` path segments.
    GO_REPO = {
        let seg = segment(SEG_CHARS);
        let seg_nc = segment(SEG_CHARS_NO_COLON);
        let host = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
        format!(
            "^(?:file://(?:/{seg})+/?|https://(?:[A-Za-z0-9._~%+-]+(?::[A-Za-z0-9._~%+-]*)?@)?{host}(?:\\.{host})*(?::[0-9]{{1,5}})?(?:/{seg})+/?|{host}(?:\\.{host})+(?:/{seg_nc}){{2,}}/?)$"
        )
    }
);
pattern!(
    /// A git ref: a branch, tag or commit (`main`, `v1.2.0`, `HEAD~1`, a hash).
    /// No whitespace or control characters, no leading `-`, no `..`.
    GIT_REF = {
        let c = "[^\\x00-\\x20\\x7f.]";
        format!("^(?:[^\\x00-\\x20\\x7f.-]|\\.{c})(?:{c}|\\.{c})*\\.?$")
    }
);
pattern!(
    /// A package directory inside a repository: `pkg/geo`.
    GO_PACKAGE = "^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$".to_string()
);
pattern!(
    /// An exported Go function name (ASCII).
    GO_HANDLER = "^[A-Z][A-Za-z0-9_]*$".to_string()
);
pattern!(
    /// The shape of a Sky Island call, `Encode(100.1, 80.9)`: an exported name
    /// and a parenthesized argument list on one line. Go's own parser then
    /// decides whether the arguments are one call's (else `invalid_call`).
    GO_CALL = "^[ \\t]*[A-Z][A-Za-z0-9_]*[ \\t]*\\([^\\x00-\\x08\\x0a-\\x1f\\x7f]*\\)[ \\t]*$".to_string()
);
pattern!(
    /// A container image reference, Docker's grammar: `[domain[:port]/]path[:tag][@digest]`.
    IMAGE_REF = {
        let domain_part = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
        let path_part = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        format!(
            "^(?:{domain_part}(?:\\.{domain_part})*(?::[0-9]+)?/)?{path_part}(?:/{path_part})*(?::{tag})?(?:@{digest})?$"
        )
    }
);
pattern!(
    /// The user a container runs as: `name`, `uid` or `uid:gid`.
    IMAGE_USER = "^[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?$".to_string()
);
pattern!(
    /// A callback URL: `http(s)://host[:port][/path][?query][#fragment]`, where
    /// host is a DNS name whose last label starts with a letter, or an IPv4
    /// address; printable ASCII only.
    CALLBACK_URL = {
        let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
        let last = "[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
        let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
        let port = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)";
        format!(
            "^https?://(?:(?:{label}\\.)*{last}|{octet}(?:\\.{octet}){{3}})(?::{port})?(?:[/?#][!-~]*)?$"
        )
    }
);

/// Longest `source.repo` and Sky Island `url`, in characters.
pub const MAX_REPO_CHARS: usize = 2048;
/// Longest `source.ref` and Sky Island `version`.
pub const MAX_REF_CHARS: usize = 256;
/// Longest `source.package`.
pub const MAX_PACKAGE_CHARS: usize = 512;
/// Longest `source.handler`.
pub const MAX_HANDLER_CHARS: usize = 256;
/// Longest `source.call` and Sky Island `call`.
pub const MAX_CALL_CHARS: usize = 4096;
/// Longest `source.image`: the engine refuses repository names over 255.
pub const MAX_IMAGE_CHARS: usize = 255;
/// Longest `source.user`.
pub const MAX_USER_CHARS: usize = 64;
/// Longest `callback_url`.
pub const MAX_URL_CHARS: usize = 2048;

/// Whether `value` matches `pattern` and has at most `max_chars` characters
/// (JSON Schema's `maxLength` counts characters, not bytes).
pub fn fits(pattern: &Pattern, max_chars: usize, value: &str) -> bool {
    value.chars().count() <= max_chars && pattern.matches(value)
}

/// What the published limits depend on: the configuration's bounds and which
/// backends this server has, as validation applies them and the served spec
/// publishes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// `limits.max_memory_mb`.
    pub max_memory_mb: u32,
    /// `limits.max_timeout_ms`.
    pub max_timeout_ms: u64,
    /// `limits.max_cpus`; `None` in the canonical document (it is the host's
    /// CPU count by default, so it differs between machines).
    pub max_cpus: Option<f64>,
    /// `limits.max_env_vars`.
    pub max_env_vars: usize,
    /// The larger of `docker.max_warm_pool_size` and `jail.max_warm_pool_size`.
    pub max_warm_pool_size: u32,
    /// The backends built into the server; `None` in the canonical document
    /// (every backend of the API).
    pub built_backends: Option<Vec<BackendKind>>,
    /// The backend Sky Island calls run on (`skyisland.default_backend`);
    /// `None` in the canonical document.
    pub skyisland_backend: Option<BackendKind>,
    /// The backends that give functions a network on this server (jail only
    /// with an IPv4 pool); `None` in the canonical document (every backend
    /// whose constraints allow one).
    pub networked_backends: Option<Vec<BackendKind>>,
}

impl Bounds {
    /// Whether functions on `kind` may have a network here.
    pub fn gives_network(&self, kind: BackendKind) -> bool {
        crate::backend::constraints(kind).network
            && self
                .networked_backends
                .as_ref()
                .is_none_or(|n| n.contains(&kind))
    }

    /// The bounds a server running `config` enforces.
    pub fn of(config: &Config) -> Self {
        Self {
            max_memory_mb: config.limits.max_memory_mb,
            max_timeout_ms: config.limits.max_timeout_ms,
            max_cpus: Some(config.limits.max_cpus),
            max_env_vars: config.limits.max_env_vars,
            max_warm_pool_size: config
                .docker
                .max_warm_pool_size
                .max(config.jail.max_warm_pool_size),
            built_backends: None,
            skyisland_backend: Some(config.skyisland.default_backend),
            networked_backends: None,
        }
    }

    /// The bounds of the default configuration, without the machine-dependent
    /// CPU ceiling: what the committed `openapi/openapi.json` publishes.
    pub fn canonical() -> Self {
        Self {
            max_cpus: None,
            skyisland_backend: None,
            networked_backends: None,
            ..Self::of(&Config::default())
        }
    }
}

/// Parses a UUID in its one canonical text form, `8-4-4-4-12` hex digits (what
/// the spec's `format: uuid` means); the braced, URN and hyphenless forms the
/// `uuid` crate also reads are refused.
pub fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    let b = s.as_bytes();
    let shape = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    shape.then(|| uuid::Uuid::parse_str(s).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn every_pattern_compiles_and_is_anchored() {
        for p in [
            &FUNCTION_NAME,
            &ENV_NAME,
            &NO_NUL,
            &WASM_MODULE,
            &GO_REPO,
            &GIT_REF,
            &GO_PACKAGE,
            &GO_HANDLER,
            &GO_CALL,
            &IMAGE_REF,
            &IMAGE_USER,
            &CALLBACK_URL,
        ] {
            assert!(p.source().starts_with('^') && p.source().ends_with('$'));
            assert!(!p.source().contains("(?="), "no look-ahead: {}", p.source());
            // NO_NUL alone admits "" (an empty env value or argument).
            if !std::ptr::eq(p, &NO_NUL) {
                assert!(!p.matches(""), "{} matches the empty string", p.source());
            }
        }
    }

    #[test]
    fn env_names_exclude_exactly_the_reserved_prefix() {
        // Every string of up to 3 characters over an alphabet that covers each
        // branch, plus prefixes of the reserved word with a tail.
        let alphabet = ['S', 'K', 'Y', 'a', '0', '_', '-'];
        let mut cases = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = cases
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            cases.extend(longer);
        }
        let word = "SKYBRIDGE_";
        for i in 1..=word.len() {
            for tail in ["", "X", "0", "_", "a"] {
                cases.push(format!("{}{tail}", &word[..i]));
            }
        }
        cases.push("SKYBRIDGE_INPUT".into());
        cases.push("SKYBRIDGEX".into());
        cases.push("skybridge_x".into());
        for name in cases {
            let expected = !name.is_empty()
                && !name.as_bytes()[0].is_ascii_digit()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.starts_with(word);
            assert_eq!(ENV_NAME.matches(&name), expected, "{name:?}");
        }
    }

    #[test]
    fn wasm_modules_are_canonical_base64_of_wasm_bytes() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        for len in 4..40 {
            let mut bytes = b"\0asm".to_vec();
            bytes.extend((0..len - 4).map(|i| (i * 37 + 11) as u8));
            assert!(WASM_MODULE.matches(&b64(&bytes)), "{len} bytes");
        }
        assert!(
            !WASM_MODULE.matches(&b64(b"\0as")),
            "too short for the magic"
        );
        assert!(!WASM_MODULE.matches(&b64(b"hello world")));
        assert!(WASM_MODULE.matches("AGFzbQ=="), "exactly the magic");
        assert!(
            !WASM_MODULE.matches("AGFzbR=="),
            "non-canonical last character"
        );
        assert!(!WASM_MODULE.matches("AGFzbg=="), "\\0asn is not the magic");
        assert!(!WASM_MODULE.matches("AGFzbQEAAAA"), "unpadded");
        assert!(!WASM_MODULE.matches("AGFzbQEAAAA=\n"));
        // Whatever the pattern admits decodes to bytes with the magic; every
        // sixth character and ending is tried.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for c6 in alphabet.chars() {
            for end in ["==", "A=", "AA", "AAAA", "AAA=", "AA==", "Ag==", "AB=="] {
                let s = format!("AGFzb{c6}{end}");
                if WASM_MODULE.matches(&s) {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&s)
                        .unwrap_or_else(|e| panic!("{s} matches but does not decode: {e}"));
                    assert!(bytes.starts_with(b"\0asm"), "{s}");
                }
            }
        }
    }

    #[test]
    fn repository_forms() {
        for ok in [
            "github.com/mmcloughlin/geohash",
            "github.com/cespare/xxhash/v2",
            "gitlab.example.com/team/sub/lib.git",
            "https://github.com/mmcloughlin/geohash",
            "https://user:tok@git.example.com:8443/team/lib.git",
            "https://git.example.com/x",
            "file:///tmp/repos/geo",
            "file:///tmp/x.y/.hidden/",
        ] {
            assert!(GO_REPO.matches(ok), "{ok} refused");
        }
        // gobuild::repo's tests cover the dangerous forms through parse_repo.
        for bad in [
            "file:///",
            "github.com/a",
            "github.com/a/..",
            "https://host",
            " github.com/a/b",
            "github.com/a/b\n",
        ] {
            assert!(!GO_REPO.matches(bad), "{bad} accepted");
        }
    }

    #[test]
    fn refs_packages_handlers_calls() {
        for ok in [
            "main",
            "v1.2.0",
            "HEAD~1",
            "feature/x",
            "a.b",
            "x.",
            "0123abc",
        ] {
            assert!(GIT_REF.matches(ok), "{ok}");
        }
        for bad in ["-x", "a..b", "..", ".", "a b", "a\tb", "a\u{7f}"] {
            assert!(!GIT_REF.matches(bad), "{bad}");
        }
        for ok in ["pkg/geo", "v2", "a.b/c-d"] {
            assert!(GO_PACKAGE.matches(ok), "{ok}");
        }
        for bad in ["/etc", "../x", "a//b", "_x", ".x", "a/", "a b"] {
            assert!(!GO_PACKAGE.matches(bad), "{bad}");
        }
        assert!(GO_HANDLER.matches("Encode") && !GO_HANDLER.matches("encode"));
        for ok in [
            "Encode(100.1, 80.9)",
            " F ( ) ",
            "Distance(Point{1, 2}, Point{3, 4})",
            "F(\"a\tb\")",
        ] {
            assert!(GO_CALL.matches(ok), "{ok:?}");
        }
        for bad in ["F(1)\nG()", "f(1)", "pkg.F(1)", "F", "F(1", "F(\u{0})"] {
            assert!(!GO_CALL.matches(bad), "{bad:?}");
        }
    }

    #[test]
    fn images_users_urls() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for ok in [
            "alpine".to_string(),
            "alpine:3.20".into(),
            "busybox:1.36".into(),
            "localhost:5000/team/fn:v1".into(),
            format!("registry.example.com/team/fn@{digest}"),
            "skybridge-test/busybox:latest".into(),
            "a__b/c--d".into(),
        ] {
            assert!(IMAGE_REF.matches(&ok), "{ok}");
        }
        for bad in ["-x", "/x", ":x", "@x", "Alpine", "a b", "x:", "x@sha256:12"] {
            assert!(!IMAGE_REF.matches(bad), "{bad}");
        }
        for ok in ["nobody", "65534", "1000:1000", "app.user"] {
            assert!(IMAGE_USER.matches(ok), "{ok}");
        }
        for bad in ["a:b:c", ":1", "1:", "a b"] {
            assert!(!IMAGE_USER.matches(bad), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:9000/hooks/skybridge",
            "https://example.com",
            "https://hooks.example.com/a?b=c#d",
            "http://localhost:8080/",
        ] {
            assert!(CALLBACK_URL.matches(ok), "{ok}");
            reqwest::Url::parse(ok).expect("the pattern admits only parseable URLs");
        }
        for bad in [
            "ftp://x/y",
            "http://",
            "http://a.1/",
            "http://1.2.3.999/",
            "http://a:99999/",
            "http://a/ b",
            "not a url",
        ] {
            assert!(!CALLBACK_URL.matches(bad), "{bad}");
        }
    }

    #[test]
    fn uuids_only_in_their_canonical_form() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(parse_uuid(&id.to_string()), Some(id));
        assert_eq!(parse_uuid(&id.to_string().to_uppercase()), Some(id));
        assert_eq!(parse_uuid(&id.simple().to_string()), None);
        assert_eq!(parse_uuid(&id.urn().to_string()), None);
        assert_eq!(parse_uuid(&format!("{{{id}}}")), None);
        assert_eq!(parse_uuid("not-a-uuid"), None);
    }
}
