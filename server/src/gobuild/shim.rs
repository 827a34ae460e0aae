//! The generated `main.go` shims, and the parser for Sky Island call strings whose
//! arguments are Go literals.
//!
//! `handler` shim: one binary per (commit, package, function, target) serves every
//! argument list: it reads a JSON array of arguments on stdin, decodes each into the
//! parameter's type with `reflect`, calls the function and prints the result as
//! JSON (or, with `SKYBRIDGE_SHIM_OUTPUT=print`, exactly what `fmt.Print` prints).
//! A call string of literals (`Encode(100.1, 80.9)`) therefore runs the handler
//! binary with `[100.1, 80.9]` and never rebuilds: Sky Island's cache-key defect.
//!
//! The shim compiles inside the user's module, under the language version its
//! `go.mod` declares (go1.16 when it declares none, and as old as go1.11 in
//! widely used packages). So the generated Go uses nothing newer than Go 1.12's
//! language: `interface{}` rather than `any`, no generics, no `min`/`max`/`clear`.

use serde_json::Value;

/// Part of every artifact key: bump when the generated code changes.
pub const SHIM_VERSION: &str = "7";

/// How the generated program is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimMode {
    /// A command: `main` runs the call and exits with its code (docker, jail,
    /// and wasm when the Go toolchain is older than 1.24).
    Command,
    /// A WASI reactor (`-buildmode=c-shared`, Go >= 1.24) for the wasm backend:
    /// `_initialize` starts the runtime, `skybridge_warmup` warms the shim's
    /// caches before the deploy-time snapshot, and every call enters through
    /// `skybridge_handle`, which re-reads env and args from the host, reseeds
    /// the runtime's random state and returns the exit code.
    Reactor,
}

/// The reactor's per-call entry point.
pub const HANDLE_EXPORT: &str = "skybridge_handle";
/// The reactor's warm-up, run once before the snapshot.
pub const WARMUP_EXPORT: &str = "skybridge_warmup";

/// `-ldflags` a reactor build needs: the shim reaches the runtime's random
/// state through `//go:linkname`, which Go 1.23+ refuses by default. The shim
/// checks the layout it relies on during the warm-up and refuses to be
/// snapshotted when it differs (the deploy then runs it unsnapshotted).
pub const REACTOR_LDFLAGS: &str = "-checklinkname=0";

/// Env var that switches the handler shim to `fmt.Print` output.
pub const OUTPUT_ENV: &str = "SKYBRIDGE_SHIM_OUTPUT";

/// Env var naming the exit marker: when set, the shims end stdout and stderr
/// with `<marker><exit code>\n` just before exiting, so a runner learns the
/// result without waiting for the process's sandbox to be torn down (the
/// docker backend: about 25 ms per container).
pub const EXIT_MARKER_ENV: &str = "SKYBRIDGE_EXIT_MARKER";

/// Go shared by both shims as commands: `main`, and exit through the marker.
const COMMAND_TAIL: &str = r#"
func main() { skybridgeMain() }

// skybridgeExit ends the process with code. With SKYBRIDGE_EXIT_MARKER set, it
// first ends stdout and stderr with the marker and the code.
func skybridgeExit(code int) {
	if m := os.Getenv("SKYBRIDGE_EXIT_MARKER"); m != "" {
		fmt.Fprintf(os.Stdout, "%s%d\n", m, code)
		fmt.Fprintf(os.Stderr, "%s%d\n", m, code)
	}
	os.Exit(code)
}
"#;

/// Go shared by both shims as reactors: the exports, the per-call entry and
/// the runtime's random state (see [`ShimMode::Reactor`]).
const REACTOR_TAIL: &str = r#"
func main() {}

// skybridgeExit unwinds to skybridgeHandle, which returns code to the host.
func skybridgeExit(code int) { panic(skybridgeExitCode(code)) }

//go:wasmexport skybridge_handle
func skybridgeHandle() (code int32) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(skybridgeExitCode)
			if !ok {
				panic(r)
			}
			code = int32(c)
		}
	}()
	skybridgeEnter()
	skybridgeMain()
	return 0
}

//go:wasmexport skybridge_warmup
func skybridgeWarmup() {
	skybridgeCheckRuntime()
	skybridgeWarmShim()
	skybridgeGrowStack(skybridgeStackFrames)
}

// Calls run on the goroutine the warm-up ran on, with the stack it left: one
// grown here (to about 256 KiB) is in the snapshot, so no call pays for
// copying its stack while it grows.
const skybridgeStackFrames = 32

//go:noinline
func skybridgeGrowStack(n int) byte {
	var pad [4096]byte
	pad[n] = byte(n)
	if n == 0 {
		return pad[0]
	}
	return skybridgeGrowStack(n-1) + pad[n]
}

// skybridgeEnter makes the snapshot this call's own: the host's env and args
// (the snapshot froze the build's, which were empty), and fresh random state
// (the snapshot froze one seed for every instance).
func skybridgeEnter() {
	var seed [32]byte
	if skybridgeReadRandom(seed[:]) != len(seed) {
		panic("skybridge: the host gave no randomness")
	}
	skybridgeReseed(seed)
	os.Clearenv()
	for _, kv := range skybridgeEnviron() {
		if i := strings.IndexByte(kv, '='); i > 0 {
			os.Setenv(kv[:i], kv[i+1:])
		}
	}
	os.Args = skybridgeArgs()
}

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func skybridgeEnvironSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func skybridgeEnvironGet(ptrs, buf unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 args_sizes_get
func skybridgeArgsSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 args_get
func skybridgeArgsGet(ptrs, buf unsafe.Pointer) uint32

func skybridgeEnviron() []string {
	return skybridgeStrings(skybridgeEnvironSizesGet, skybridgeEnvironGet)
}

func skybridgeArgs() []string {
	return skybridgeStrings(skybridgeArgsSizesGet, skybridgeArgsGet)
}

// skybridgeStrings reads a WASI string list (environ or args).
func skybridgeStrings(sizes, get func(a, b unsafe.Pointer) uint32) []string {
	var count, size uint32
	if sizes(unsafe.Pointer(&count), unsafe.Pointer(&size)) != 0 || count == 0 {
		return nil
	}
	ptrs := make([]uint32, count)
	buf := make([]byte, size)
	if get(unsafe.Pointer(&ptrs[0]), unsafe.Pointer(&buf[0])) != 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(buf), "\x00"), "\x00")
}

// The runtime's random state: globalRand seeds every M's chacha8 state, and
// math/rand, math/rand/v2 and map iteration all draw from the M's. wasip1 has
// one M, m0. skybridgeCheckRuntime proves this layout before the snapshot.

//go:linkname skybridgeGlobalRand runtime.globalRand
var skybridgeGlobalRand struct {
	lock  uintptr
	seed  [32]byte
	state struct {
		buf  [32]uint64
		seed [4]uint64
		i    uint32
		n    uint32
		c    uint32
	}
	init bool
}

//go:linkname skybridgeM0 runtime.m0
var skybridgeM0 byte

//go:linkname skybridgeMrandinit runtime.mrandinit
func skybridgeMrandinit(mp unsafe.Pointer)

//go:linkname skybridgeChachaInit internal/chacha8rand.(*State).Init
func skybridgeChachaInit(s unsafe.Pointer, seed [32]byte)

//go:linkname skybridgeReadRandom runtime.readRandom
func skybridgeReadRandom(r []byte) int

//go:linkname skybridgeRand runtime.rand
func skybridgeRand() uint64

func skybridgeReseed(seed [32]byte) {
	skybridgeChachaInit(unsafe.Pointer(&skybridgeGlobalRand.state), seed)
	skybridgeMrandinit(unsafe.Pointer(&skybridgeM0))
}

// skybridgeCheckRuntime panics (failing the snapshot, never a call) unless the
// runtime's random state is laid out as declared above and reseeding it
// decides what the running M draws next.
func skybridgeCheckRuntime() {
	g := &skybridgeGlobalRand
	s := &g.state
	if !g.init || g.lock != 0 || (s.n != 32 && s.n != 28) || s.i > s.n || s.c%4 != 0 || s.c >= 16 {
		panic("skybridge: this Go runtime's random state is not laid out as the shim expects")
	}
	var a, b [32]byte
	a[0], b[0] = 1, 2
	skybridgeReseed(a)
	x := skybridgeRand()
	skybridgeReseed(a)
	y := skybridgeRand()
	skybridgeReseed(b)
	z := skybridgeRand()
	if x != y || x == z {
		panic("skybridge: reseeding this Go runtime does not reach its random state")
	}
}
"#;

/// A call whose arguments are all Go literals, as JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct LiteralCall {
    /// The called function.
    pub function: String,
    /// The arguments, in order.
    pub args: Vec<Value>,
}

/// Whether `s` is an exported Go identifier (ASCII only, which is what we accept).
pub fn is_exported_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `Name(lit, lit, …)` where every argument is a Go literal: integers
/// (decimal, 0x, 0o, 0b, legacy octal), decimal floats, interpreted and raw strings,
/// runes, `true`, `false`, `nil`, with an optional sign on numbers. Returns `None`
/// for anything else (which is then compiled literally after Go's parser checks
/// it): this grammar is a strict subset of Go's.
pub fn parse_literal_call(s: &str) -> Option<LiteralCall> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    p.ws();
    let name = p.ident()?;
    if !is_exported_ident(&name) {
        return None;
    }
    p.ws();
    p.eat(b'(')?;
    let mut args = Vec::new();
    loop {
        p.ws();
        if p.peek() == Some(b')') {
            p.i += 1;
            break;
        }
        args.push(p.literal()?);
        p.ws();
        match p.peek()? {
            b',' => p.i += 1,
            b')' => {
                p.i += 1;
                break;
            }
            _ => return None,
        }
    }
    p.ws();
    (p.i == p.s.len()).then_some(LiteralCall {
        function: name,
        args,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        let id = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        (!id.is_empty() && !id.as_bytes()[0].is_ascii_digit()).then(|| id.to_string())
    }
    fn literal(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.interpreted_string().map(Value::String),
            b'`' => self.raw_string().map(Value::String),
            b'\'' => self.rune(),
            b'-' | b'+' => {
                let neg = self.peek() == Some(b'-');
                self.i += 1;
                self.number(neg)
            }
            b'0'..=b'9' | b'.' => self.number(false),
            _ => match self.ident()?.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "nil" => Some(Value::Null),
                _ => None,
            },
        }
    }
    fn number(&mut self, neg: bool) -> Option<Value> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'.'
            || ((c == b'+' || c == b'-') && matches!(self.s[self.i - 1], b'e' | b'E')))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        let lower = text.to_ascii_lowercase();
        let int = |digits: &str, radix| i128::from_str_radix(digits, radix).ok();
        let value: Option<i128> = if let Some(h) = lower.strip_prefix("0x") {
            int(h, 16)
        } else if let Some(o) = lower.strip_prefix("0o") {
            int(o, 8)
        } else if let Some(b) = lower.strip_prefix("0b") {
            int(b, 2)
        } else if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().all(|c| c.is_ascii_digit())
        {
            int(&lower[1..], 8) // legacy octal: 017 == 15; 019 is invalid Go
        } else if lower.bytes().all(|c| c.is_ascii_digit()) {
            int(&lower, 10)
        } else {
            // Decimal float: digits, one dot and/or an exponent. No hex floats,
            // no imaginary literals, no underscores (Go's own parser handles those).
            let ok = lower
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
                && lower.bytes().filter(|&c| c == b'.').count() <= 1
                && lower.bytes().any(|c| c.is_ascii_digit());
            let f: f64 = if ok { lower.parse().ok()? } else { return None };
            let f = if neg { -f } else { f };
            return json_number(f);
        };
        let v = value?;
        let v = if neg { -v } else { v };
        if let Ok(i) = i64::try_from(v) {
            Some(Value::from(i))
        } else {
            u64::try_from(v).ok().map(Value::from)
        }
    }
    fn interpreted_string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut bytes = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(bytes).ok();
                }
                b'\n' => return None,
                b'\\' => {
                    self.i += 1;
                    self.escape(&mut bytes, b'"')?;
                }
                c => {
                    bytes.push(c);
                    self.i += 1;
                }
            }
        }
    }
    fn raw_string(&mut self) -> Option<String> {
        self.eat(b'`')?;
        let start = self.i;
        while self.peek()? != b'`' {
            self.i += 1;
        }
        let body = &self.s[start..self.i];
        self.i += 1;
        // Go drops carriage returns from raw strings.
        String::from_utf8(body.iter().copied().filter(|&c| c != b'\r').collect()).ok()
    }
    fn rune(&mut self) -> Option<Value> {
        self.eat(b'\'')?;
        let mut bytes = Vec::new();
        let value = if self.peek()? == b'\\' {
            self.i += 1;
            match self.peek()? {
                b'x' | b'0'..=b'7' => {
                    self.escape(&mut bytes, b'\'')?;
                    bytes[0] as u32
                }
                _ => {
                    self.escape(&mut bytes, b'\'')?;
                    std::str::from_utf8(&bytes).ok()?.chars().next()? as u32
                }
            }
        } else {
            let rest = std::str::from_utf8(&self.s[self.i..]).ok()?;
            let c = rest.chars().next()?;
            if c == '\'' || c == '\n' {
                return None;
            }
            self.i += c.len_utf8();
            c as u32
        };
        self.eat(b'\'')?;
        Some(Value::from(value))
    }
    /// One escape after a backslash; `quote` is the only quote it may escape.
    fn escape(&mut self, out: &mut Vec<u8>, quote: u8) -> Option<()> {
        let c = self.peek()?;
        self.i += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            q if q == quote => Some(q),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Some(());
        }
        let hex = |p: &mut Self, n: usize| -> Option<u32> {
            let digits = std::str::from_utf8(p.s.get(p.i..p.i + n)?).ok()?;
            p.i += n;
            u32::from_str_radix(digits, 16)
                .ok()
                .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        match c {
            b'x' => out.push(hex(self, 2)? as u8),
            b'0'..=b'7' => {
                let digits = std::str::from_utf8(self.s.get(self.i - 1..self.i + 2)?).ok()?;
                self.i += 2;
                out.push(u8::try_from(u32::from_str_radix(digits, 8).ok()?).ok()?);
            }
            b'u' => push_char(out, hex(self, 4)?)?,
            b'U' => push_char(out, hex(self, 8)?)?,
            _ => return None,
        }
        Some(())
    }
}

fn push_char(out: &mut Vec<u8>, cp: u32) -> Option<()> {
    let c = char::from_u32(cp)?;
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    Some(())
}

/// Integral floats become JSON integers, so `1e3` still decodes into an `int`
/// parameter as Go's untyped constant would.
fn json_number(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    // Integral and within i64: an integer, exact for literals like 1e18.
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        return Some(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f).map(Value::Number)
}

/// Go source for the handler shim calling `function` of the package at `import_path`.
pub fn handler_shim(import_path: &str, function: &str, mode: ShimMode) -> String {
    let (imports, tail) = match mode {
        ShimMode::Command => ("", COMMAND_TAIL.to_string()),
        ShimMode::Reactor => (
            "\"strings\"\n\t\"unsafe\"\n\t",
            REACTOR_TAIL.to_string() + HANDLER_WARMUP,
        ),
    };
    let code = HANDLER_TEMPLATE.replace("{{EXTRA_IMPORTS}}", imports) + &tail;
    code.replace("{{IMPORT}}", import_path)
        .replace("{{FUNC}}", function)
}

/// Go source that prints what `fmt.Print(<call>)` prints, the call checked by Go's
/// parser first (one call of an exported name, no comments, no function literals);
/// the package is dot-imported so arguments may name its exported identifiers. Like the handler shim, a non-nil error result
/// exits 1 and a panic exits 2, each with its message on stderr.
pub fn call_shim(import_path: &str, call: &str, mode: ShimMode) -> String {
    let (imports, tail) = match mode {
        ShimMode::Command => ("", COMMAND_TAIL.to_string()),
        ShimMode::Reactor => (
            "\"io\"\n\t\"strings\"\n\t\"unsafe\"\n\t",
            REACTOR_TAIL.to_string() + CALL_WARMUP,
        ),
    };
    // The call goes in last: it is user text, and must not be searched for
    // placeholders.
    let code = CALL_TEMPLATE.replace("{{EXTRA_IMPORTS}}", imports) + &tail;
    code.replace("{{IMPORT}}", import_path)
        .replace("{{CALL}}", call)
}

/// The handler shim's warm-up: the JSON and fmt caches for the handler's
/// parameter and result types (zero values only: user code is never called,
/// except a type's own marshalling methods, whose panics are ignored).
const HANDLER_WARMUP: &str = r#"
func skybridgeWarmShim() {
	t := reflect.TypeOf(userpkg.{{FUNC}})
	for i := 0; i < t.NumIn(); i++ {
		skybridgeWarmType(t.In(i))
		if t.IsVariadic() && i == t.NumIn()-1 {
			skybridgeWarmType(t.In(i).Elem())
		}
	}
	for i := 0; i < t.NumOut(); i++ {
		skybridgeWarmType(t.Out(i))
	}
	// reflect's frame layout for a call of the handler's type: the first
	// Call of a function of that type computes and caches it.
	func() {
		defer func() { recover() }()
		stub := reflect.MakeFunc(t, func([]reflect.Value) []reflect.Value {
			outs := make([]reflect.Value, t.NumOut())
			for i := range outs {
				outs[i] = reflect.Zero(t.Out(i))
			}
			return outs
		})
		ins := make([]reflect.Value, t.NumIn())
		for i := range ins {
			ins[i] = reflect.Zero(t.In(i))
		}
		if t.IsVariadic() {
			stub.CallSlice(ins)
		} else {
			stub.Call(ins)
		}
	}()
	var items []json.RawMessage
	json.Unmarshal([]byte("[1, \"a\"]"), &items)
	json.NewEncoder(io.Discard).Encode(items)
	bytes.TrimSpace([]byte(" "))
}

func skybridgeWarmType(t reflect.Type) {
	defer func() { recover() }()
	v := reflect.New(t)
	if raw, err := json.Marshal(v.Elem().Interface()); err == nil {
		json.Unmarshal(raw, reflect.New(t).Interface())
	}
	fmt.Fprint(io.Discard, v.Elem().Interface())
}
"#;

/// The call shim's warm-up: fmt's printer for common kinds (the call itself
/// is never run before a request).
const CALL_WARMUP: &str = r#"
func skybridgeWarmShim() {
	fmt.Fprint(io.Discard, 1, 1.5, "s", true, []int{1}, map[string]int{"a": 1}, nil)
}
"#;

const CALL_TEMPLATE: &str = r#"// Code generated by Skybridge (shim v7). DO NOT EDIT.
package main

import (
	"fmt"
	"os"
	{{EXTRA_IMPORTS}}
	. "{{IMPORT}}"
)

// skybridgeExitCode carries an exit code up to a reactor's entry point.
type skybridgeExitCode int

func skybridgeMain() {
	defer func() {
		if r := recover(); r != nil {
			if c, ok := r.(skybridgeExitCode); ok {
				panic(c)
			}
			fmt.Fprintf(os.Stderr, "panic: %v\n", r)
			skybridgeExit(2)
		}
	}()
	skybridgeReport({{CALL}})
	skybridgeExit(0)
}

func skybridgeReport(results ...interface{}) {
	fmt.Print(results...)
	if n := len(results); n > 0 {
		if err, ok := results[n-1].(error); ok && err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			skybridgeExit(1)
		}
	}
}
"#;

const HANDLER_TEMPLATE: &str = r#"// Code generated by Skybridge (shim v7). DO NOT EDIT.
//
// Reads a JSON array of arguments on stdin (a single value for a one-parameter
// function), calls {{FUNC}} and writes its result as JSON on stdout. With
// SKYBRIDGE_SHIM_OUTPUT=print it writes what fmt.Print prints instead.
// Exit codes: 1 the function returned an error, 2 it panicked, 3 bad input.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	{{EXTRA_IMPORTS}}
	userpkg "{{IMPORT}}"
)

var errorType = reflect.TypeOf((*error)(nil)).Elem()

// skybridgeExitCode carries an exit code up to a reactor's entry point.
type skybridgeExitCode int

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	skybridgeExit(code)
}

func skybridgeMain() {
	fn := reflect.ValueOf(userpkg.{{FUNC}})
	t := fn.Type()
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(3, "reading input: %v", err)
	}
	args, err := decodeArgs(t, bytes.TrimSpace(raw))
	if err != nil {
		fail(3, "{{FUNC}}: %v", err)
	}
	var out []reflect.Value
	func() {
		defer func() {
			if r := recover(); r != nil {
				if c, ok := r.(skybridgeExitCode); ok {
					panic(c)
				}
				fail(2, "panic: %v", r)
			}
		}()
		out = fn.Call(args)
	}()
	failed := len(out) > 0 && t.Out(len(out)-1) == errorType && !out[len(out)-1].IsNil()
	if os.Getenv("SKYBRIDGE_SHIM_OUTPUT") == "print" {
		vals := make([]interface{}, len(out))
		for i, v := range out {
			vals[i] = v.Interface()
		}
		fmt.Print(vals...)
		if failed {
			fail(1, "error: %v", out[len(out)-1].Interface())
		}
		skybridgeExit(0)
	}
	results := out
	if len(out) > 0 && t.Out(len(out)-1) == errorType {
		if failed {
			fail(1, "error: %v", out[len(out)-1].Interface())
		}
		results = out[:len(out)-1]
	}
	var value interface{}
	switch len(results) {
	case 0:
		skybridgeExit(0)
	case 1:
		value = results[0].Interface()
	default:
		vals := make([]interface{}, len(results))
		for i, v := range results {
			vals[i] = v.Interface()
		}
		value = vals
	}
	if err := json.NewEncoder(os.Stdout).Encode(value); err != nil {
		fail(1, "encoding the result as JSON: %v", err)
	}
	skybridgeExit(0)
}

func decodeArgs(t reflect.Type, raw []byte) ([]reflect.Value, error) {
	n := t.NumIn()
	var items []json.RawMessage
	switch {
	case len(raw) == 0, n == 0 && string(raw) == "null":
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("input is not a JSON array of arguments: %v", err)
		}
		// One parameter: [x] is the argument list when x fits the parameter;
		// otherwise the whole array is the one argument ([1,2,3] for []int).
		if n == 1 && !t.IsVariadic() && (len(items) != 1 || !fits(items[0], t.In(0))) {
			items = []json.RawMessage{raw}
		}
	case n == 1 && !t.IsVariadic():
		items = []json.RawMessage{raw}
	default:
		return nil, fmt.Errorf("input must be a JSON array of %d arguments", n)
	}
	if t.IsVariadic() {
		if len(items) < n-1 {
			return nil, fmt.Errorf("takes at least %d arguments, got %d", n-1, len(items))
		}
	} else if len(items) != n {
		return nil, fmt.Errorf("takes %d arguments, got %d", n, len(items))
	}
	args := make([]reflect.Value, 0, len(items))
	for i, item := range items {
		var pt reflect.Type
		if t.IsVariadic() && i >= n-1 {
			pt = t.In(n - 1).Elem()
		} else {
			pt = t.In(i)
		}
		if string(bytes.TrimSpace(item)) == "null" && !nillable(pt) {
			return nil, fmt.Errorf("argument %d (%s): nil is not a %s", i+1, pt, pt)
		}
		p := reflect.New(pt)
		if err := json.Unmarshal(item, p.Interface()); err != nil {
			return nil, fmt.Errorf("argument %d (%s): %v", i+1, pt, err)
		}
		args = append(args, p.Elem())
	}
	return args, nil
}

func fits(item json.RawMessage, t reflect.Type) bool {
	if string(bytes.TrimSpace(item)) == "null" && !nillable(t) {
		return false
	}
	return json.Unmarshal(item, reflect.New(t).Interface()) == nil
}

func nillable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Ptr, reflect.Map, reflect.Slice, reflect.Interface:
		return true
	}
	return false
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Option<Vec<Value>> {
        parse_literal_call(s).map(|c| c.args)
    }

    #[test]
    fn sky_island_example_parses() {
        let c = parse_literal_call("Encode(100.1, 80.9)").unwrap();
        assert_eq!(c.function, "Encode");
        assert_eq!(c.args, vec![json!(100.1), json!(80.9)]);
    }

    #[test]
    fn literal_kinds() {
        assert_eq!(parse("F()"), Some(vec![]));
        assert_eq!(
            parse(" F ( 1 , -2, +3, ) "),
            Some(vec![json!(1), json!(-2), json!(3)])
        );
        assert_eq!(
            parse("F(0x1F, 0o17, 017, 0b101)"),
            Some(vec![json!(31), json!(15), json!(15), json!(5)])
        );
        assert_eq!(
            parse("F(1e3, -2.5, .5, 1.)"),
            Some(vec![json!(1000), json!(-2.5), json!(0.5), json!(1)])
        );
        assert_eq!(
            parse(r#"F("a\tb\"c\\", `raw\n`, "\u00e9\x41\101")"#),
            Some(vec![json!("a\tb\"c\\"), json!("raw\\n"), json!("éAA")])
        );
        assert_eq!(
            parse(r"F('a', '\n', '\'', 'é', '\x41')"),
            Some(vec![json!(97), json!(10), json!(39), json!(233), json!(65)])
        );
        assert_eq!(
            parse("F(true, false, nil)"),
            Some(vec![json!(true), json!(false), Value::Null])
        );
        assert_eq!(
            parse("F(18446744073709551615)"),
            Some(vec![json!(u64::MAX)])
        );
        assert_eq!(
            parse("F(1e18, -1e16)"),
            Some(vec![
                json!(1_000_000_000_000_000_000i64),
                json!(-10_000_000_000_000_000i64)
            ])
        );
    }

    #[test]
    fn anything_else_falls_back_to_go() {
        for s in [
            "F(x)",
            "F(1+2)",
            "F(math.Pi)",
            "f(1)",
            "pkg.F(1)",
            "F(1)(2)",
            "F(1",
            "F(1))",
            "F(1); G()",
            r#"Encode(1,2)); os.RemoveAll("/")//"#,
            "F(1_000)",
            "F(0x1p4)",
            "F(2i)",
            "F(019)",
            r#"F("\q")"#,
            r#"F("\xff")"#,
            "F('ab')",
            "F(\"a\nb\")",
            "F(1.2.3)",
            "F(1e)",
            "",
        ] {
            assert_eq!(
                parse_literal_call(s),
                None,
                "{s:?} should not be a literal call"
            );
        }
    }

    #[test]
    fn shims_use_only_the_go_1_12_language() {
        let mut codes = Vec::new();
        for mode in [ShimMode::Command, ShimMode::Reactor] {
            codes.push(handler_shim("x.y/z", "F", mode));
            codes.push(call_shim("x.y/z", "F(1)", mode));
        }
        for code in codes {
            for token in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                assert!(
                    !matches!(token, "any" | "comparable" | "min" | "max" | "clear"),
                    "`{token}` needs a newer Go language version than a go.mod may declare"
                );
            }
        }
    }

    #[test]
    fn shims_embed_the_import_and_call() {
        let h = handler_shim("example.com/geo", "Encode", ShimMode::Command);
        assert!(
            h.contains("userpkg \"example.com/geo\"")
                && h.contains("reflect.ValueOf(userpkg.Encode)")
        );
        let c = call_shim("example.com/geo", "Encode(Precision)", ShimMode::Command);
        assert!(
            c.contains(". \"example.com/geo\"") && c.contains("skybridgeReport(Encode(Precision))")
        );
        assert!(c.contains("func main() { skybridgeMain() }") && !c.contains("wasmexport"));
    }

    #[test]
    fn every_import_of_every_shim_is_used() {
        // Go refuses an unused import; catch it here rather than in a deploy.
        for mode in [ShimMode::Command, ShimMode::Reactor] {
            for code in [
                handler_shim("x.y/z", "F", mode),
                call_shim("x.y/z", "F(1)", mode),
            ] {
                let imports = code
                    .split("import (")
                    .nth(1)
                    .unwrap()
                    .split(')')
                    .next()
                    .unwrap();
                let body: String = code
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                for line in imports
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with('"'))
                {
                    let path = line.trim_matches('"');
                    let name = path.rsplit('/').next().unwrap();
                    assert!(
                        body.contains(&format!("{name}.")),
                        "{mode:?}: `{path}` is imported and not used"
                    );
                }
            }
        }
    }

    #[test]
    fn reactors_export_the_entry_points_and_never_call_main() {
        for code in [
            handler_shim("example.com/geo", "Encode", ShimMode::Reactor),
            call_shim("example.com/geo", "Encode(1, 2)", ShimMode::Reactor),
        ] {
            assert!(code.contains("func main() {}"));
            assert!(code.contains(&format!("//go:wasmexport {HANDLE_EXPORT}\n")));
            assert!(code.contains(&format!("//go:wasmexport {WARMUP_EXPORT}\n")));
            assert!(!code.contains("os.Exit"), "a reactor returns its code");
            assert!(!code.contains("{{"), "every placeholder is filled");
        }
    }
}
