//! Data-segment compaction: a post-pass over a module's data section.
//!
//! Go emits tens of thousands of small data segments (and a Wizer snapshot tens
//! of thousands more), and wasmtime keeps per-instance state for every one of
//! them: ~110–170 µs of every instantiation goes to segments alone. This pass
//! drops empty segments and merges neighbours whose gap is at most
//! [`MAX_GAP`] bytes (filling the gap with zeros, which is what memory already
//! holds there), so a Go module ends up with a few dozen segments. The result is
//! validated again before it is used.
//!
//! Passive segments go too: only `memory.init` and `data.drop` can name one, and
//! a module that uses them must have a data-count section, so without one they
//! are dead weight (Wizer leaves an empty passive segment in place of every
//! original active one, to keep indices stable).
//!
//! It refuses, leaving the module as it is, whenever merging could change what
//! the module means: a data-count section (segment indices matter), an offset
//! that is not a constant, a memory other than memory 0, overlapping segments
//! (where order decides which bytes win).

use wasm_encoder::{ConstExpr, DataSection, Module, RawSection};
use wasmparser::{DataKind, Operator, Parser, Payload};

/// Largest gap of zeros that is merged into one segment.
pub const MAX_GAP: u32 = 4096;

/// A compacted module and what the pass did.
#[derive(Debug)]
pub struct Compacted {
    /// The rewritten module.
    pub wasm: Vec<u8>,
    /// Data segments before.
    pub before: usize,
    /// Data segments after.
    pub after: usize,
}

/// One active segment on memory 0 at a constant offset.
struct Segment<'a> {
    offset: u32,
    data: &'a [u8],
}

/// Rewrites `wasm` with its data segments merged, or says why it did not.
pub fn compact(wasm: &[u8]) -> Result<Compacted, String> {
    let mut out = Module::new();
    let mut before = 0;
    let mut after = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| format!("not a valid module: {e}"))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if encoding != wasmparser::Encoding::Module {
                    return Err("a component, not a core module".into());
                }
            }
            Payload::DataCountSection { .. } => {
                return Err(
                    "the module has a data-count section (memory.init/data.drop may name segments)"
                        .into(),
                );
            }
            Payload::DataSection(reader) => {
                let mut segments = Vec::new();
                for data in reader {
                    let data = data.map_err(|e| format!("reading a data segment: {e}"))?;
                    before += 1;
                    if let Some(segment) = active_segment(data)? {
                        segments.push(segment);
                    }
                }
                let merged = merge(segments)?;
                after = merged.len();
                let mut section = DataSection::new();
                for (offset, bytes) in merged {
                    section.active(
                        0,
                        &ConstExpr::i32_const(offset as i32),
                        bytes.iter().copied(),
                    );
                }
                out.section(&section);
            }
            // Function bodies are inside the code section's raw bytes.
            Payload::CodeSectionEntry(_) => {}
            Payload::End(_) => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    out.section(&RawSection {
                        id,
                        data: &wasm[range],
                    });
                }
            }
        }
    }
    let wasm = out.finish();
    wasmparser::Validator::new()
        .validate_all(&wasm)
        .map_err(|e| format!("the compacted module does not validate: {e}"))?;
    Ok(Compacted {
        wasm,
        before,
        after,
    })
}

/// The segment, `None` for a passive one (unreferenced: see the module docs).
fn active_segment(data: wasmparser::Data<'_>) -> Result<Option<Segment<'_>>, String> {
    let DataKind::Active {
        memory_index,
        offset_expr,
    } = data.kind
    else {
        return Ok(None);
    };
    if memory_index != 0 {
        return Err(format!("a data segment initializes memory {memory_index}"));
    }
    let mut ops = offset_expr.get_operators_reader();
    let offset = match (ops.read(), ops.read()) {
        (Ok(Operator::I32Const { value }), Ok(Operator::End)) => value as u32,
        _ => return Err("a data segment's offset is not an i32 constant".into()),
    };
    Ok(Some(Segment {
        offset,
        data: data.data,
    }))
}

/// Sorted, non-overlapping, merged: `(offset, bytes)` per output segment.
fn merge(mut segments: Vec<Segment<'_>>) -> Result<Vec<(u32, Vec<u8>)>, String> {
    segments.retain(|s| !s.data.is_empty());
    segments.sort_by_key(|s| s.offset);
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    for s in segments {
        let end = u64::from(s.offset) + s.data.len() as u64;
        if end > u64::from(u32::MAX) + 1 {
            return Err("a data segment ends past 4 GiB".into());
        }
        if let Some((start, bytes)) = out.last_mut() {
            let cur_end = u64::from(*start) + bytes.len() as u64;
            if u64::from(s.offset) < cur_end {
                return Err(format!("data segments overlap at offset {:#x}", s.offset));
            }
            let gap = u64::from(s.offset) - cur_end;
            if gap <= u64::from(MAX_GAP) {
                bytes.resize(bytes.len() + gap as usize, 0);
                bytes.extend_from_slice(s.data);
                continue;
            }
        }
        out.push((s.offset, s.data.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, DataCountSection, ExportKind, ExportSection, Function, FunctionSection,
        Instruction, MemorySection, MemoryType, TypeSection,
    };

    /// A module with one memory, the given segments, and an exported function.
    fn module(segments: &[(i32, &[u8])], data_count: bool) -> Vec<u8> {
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], [wasm_encoder::ValType::I32]);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut mems = MemorySection::new();
        mems.memory(MemoryType {
            minimum: 2,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        m.section(&mems);
        let mut exports = ExportSection::new();
        exports.export("f", ExportKind::Func, 0);
        m.section(&exports);
        if data_count {
            m.section(&DataCountSection {
                count: segments.len() as u32,
            });
        }
        let mut code = CodeSection::new();
        let mut f = Function::new([]);
        f.instruction(&Instruction::I32Const(0))
            .instruction(&Instruction::I32Load(wasm_encoder::MemArg {
                offset: 0,
                align: 2,
                memory_index: 0,
            }))
            .instruction(&Instruction::End);
        code.function(&f);
        m.section(&code);
        let mut data = DataSection::new();
        for (offset, bytes) in segments {
            data.active(0, &ConstExpr::i32_const(*offset), bytes.iter().copied());
        }
        m.section(&data);
        m.finish()
    }

    /// Memory as the module's segments leave it (first 128 KiB).
    fn image(wasm: &[u8]) -> Vec<u8> {
        let mut mem = vec![0u8; 128 * 1024];
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::DataSection(reader) = payload.unwrap() {
                for d in reader {
                    let Some(s) = active_segment(d.unwrap()).unwrap() else {
                        continue;
                    };
                    let at = s.offset as usize;
                    mem[at..at + s.data.len()].copy_from_slice(s.data);
                }
            }
        }
        mem
    }

    #[test]
    fn neighbours_merge_and_empty_segments_go() {
        let wasm = module(
            &[
                (4096, b"world"),
                (0, b"hello"),
                (100, b""),
                (4096 + 5 + 4096, b"edge"),
                (70_000, b"far"),
            ],
            false,
        );
        let c = compact(&wasm).unwrap();
        assert_eq!((c.before, c.after), (5, 2));
        assert_eq!(image(&c.wasm), image(&wasm));
    }

    #[test]
    fn passive_segments_without_a_data_count_are_dropped() {
        let mut wasm = module(&[(0, b"a")], false);
        // Append a second data section? Not valid; rebuild with a passive one.
        let mut m = Module::new();
        for payload in Parser::new(0).parse_all(&wasm) {
            match payload.unwrap() {
                Payload::DataSection(_) => {
                    let mut data = DataSection::new();
                    data.passive([]);
                    data.passive(*b"dead");
                    data.active(0, &ConstExpr::i32_const(0), *b"a");
                    m.section(&data);
                }
                Payload::CodeSectionEntry(_) | Payload::End(_) | Payload::Version { .. } => {}
                other => {
                    if let Some((id, range)) = other.as_section() {
                        m.section(&RawSection {
                            id,
                            data: &wasm[range],
                        });
                    }
                }
            }
        }
        wasm = m.finish();
        let c = compact(&wasm).unwrap();
        assert_eq!((c.before, c.after), (3, 1));
        assert_eq!(image(&c.wasm), image(&wasm));
    }

    #[test]
    fn a_gap_one_byte_too_wide_stays_split() {
        let wasm = module(&[(0, b"a"), (1 + MAX_GAP as i32 + 1, b"b")], false);
        assert_eq!(compact(&wasm).unwrap().after, 2);
    }

    #[test]
    fn meaning_changing_inputs_are_refused() {
        let overlap = module(&[(0, b"hello"), (2, b"xy")], false);
        assert!(compact(&overlap).unwrap_err().contains("overlap"));
        let counted = module(&[(0, b"a")], true);
        assert!(compact(&counted).unwrap_err().contains("data-count"));
        assert!(compact(b"not wasm").is_err());
    }

    #[test]
    fn everything_else_is_kept_byte_for_byte() {
        let wasm = module(&[(0, b"a"), (8, b"b")], false);
        let c = compact(&wasm).unwrap();
        let exports = |w: &[u8]| {
            Parser::new(0)
                .parse_all(w)
                .filter_map(|p| match p.unwrap() {
                    Payload::ExportSection(r) => Some(
                        r.into_iter()
                            .map(|e| e.unwrap().name.to_string())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(exports(&c.wasm), exports(&wasm));
        assert_eq!(c.after, 1);
    }
}
