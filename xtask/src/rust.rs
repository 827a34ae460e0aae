//! `sdk-rust/src/generated.rs`: models, the operation table, and one typed
//! method per operation on `Client`.

use std::fmt::Write;

use crate::spec::{pascal, snake, Field, Model, Operation, Spec, Success, Type};

/// Rust's type for `ty`. `query`: a query parameter (UUIDs stay strings: they
/// are cursors copied from a page's `next_cursor`).
fn rust_type(ty: &Type, query: bool) -> String {
    match ty {
        Type::String => "String".into(),
        Type::Uuid if query => "String".into(),
        Type::Uuid => "uuid::Uuid".into(),
        Type::DateTime => "chrono::DateTime<chrono::Utc>".into(),
        Type::Integer { unsigned, bits } => format!("{}{bits}", if *unsigned { "u" } else { "i" }),
        Type::Number => "f64".into(),
        Type::Bool => "bool".into(),
        Type::Any => "serde_json::Value".into(),
        Type::Array(t) => format!("Vec<{}>", rust_type(t, query)),
        Type::Map(t) => format!(
            "std::collections::BTreeMap<String, {}>",
            rust_type(t, query)
        ),
        Type::Ref(n) => n.clone(),
    }
}

/// `///` lines for `text` at `indent`, or `fallback` when there is none.
fn doc(out: &mut String, indent: &str, text: &str, fallback: &str) {
    let text = if text.trim().is_empty() {
        fallback
    } else {
        text
    };
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            writeln!(out, "{indent}///").unwrap();
        } else {
            writeln!(out, "{indent}/// {line}").unwrap();
        }
    }
}

const KEYWORDS: [&str; 6] = ["type", "ref", "async", "package", "use", "fn"];

/// A field's Rust name, and the serde rename when it differs from the JSON one.
fn field_name(json: &str) -> (String, Option<String>) {
    if KEYWORDS.contains(&json) {
        (format!("r#{json}"), None)
    } else {
        (json.to_string(), None)
    }
}

fn fields(out: &mut String, indent: &str, fields: &[Field], public: bool) {
    let vis = if public { "pub " } else { "" };
    for f in fields {
        doc(out, indent, &f.doc, &format!("`{}`.", f.name));
        let (name, rename) = field_name(&f.name);
        if let Some(r) = rename {
            writeln!(out, "{indent}#[serde(rename = \"{r}\")]").unwrap();
        }
        let ty = rust_type(&f.ty, false);
        if f.always {
            writeln!(out, "{indent}{vis}{name}: {ty},").unwrap();
        } else {
            writeln!(
                out,
                "{indent}#[serde(default, skip_serializing_if = \"Option::is_none\")]"
            )
            .unwrap();
            writeln!(out, "{indent}{vis}{name}: Option<{ty}>,").unwrap();
        }
    }
}

fn models(out: &mut String, spec: &Spec) {
    for (name, model) in &spec.models {
        match model {
            Model::Object { doc: d, fields: fs } => {
                doc(out, "", d, &format!("`{name}`."));
                let default = if fs.iter().all(|f| !f.always) {
                    ", Default"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize{default})]\npub struct {name} {{"
                )
                .unwrap();
                fields(out, "    ", fs, true);
                writeln!(out, "}}\n").unwrap();
            }
            Model::Enum { doc: d, values } => {
                doc(out, "", d, &format!("`{name}`."));
                writeln!(
                    out,
                    "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]\npub enum {name} {{"
                )
                .unwrap();
                for v in values {
                    writeln!(
                        out,
                        "    /// `{v}`.\n    #[serde(rename = \"{v}\")]\n    {},",
                        pascal(v)
                    )
                    .unwrap();
                }
                writeln!(out, "}}\n").unwrap();
                writeln!(
                    out,
                    "impl {name} {{\n    /// The value as the API writes it.\n    pub fn as_str(self) -> &'static str {{\n        match self {{"
                )
                .unwrap();
                for v in values {
                    writeln!(out, "            {name}::{} => \"{v}\",", pascal(v)).unwrap();
                }
                writeln!(
                    out,
                    "        }}\n    }}\n}}\n\nimpl std::fmt::Display for {name} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.as_str())\n    }}\n}}\n"
                )
                .unwrap();
            }
            Model::Tagged {
                doc: d,
                tag,
                variants,
            } => {
                doc(out, "", d, &format!("`{name}`, by its `{tag}`."));
                writeln!(
                    out,
                    "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\n#[serde(tag = \"{tag}\")]\npub enum {name} {{"
                )
                .unwrap();
                for (value, vdoc, vfields) in variants {
                    doc(out, "    ", vdoc, &format!("`{tag}: {value}`."));
                    writeln!(
                        out,
                        "    #[serde(rename = \"{value}\")]\n    {} {{",
                        pascal(value)
                    )
                    .unwrap();
                    fields(out, "        ", vfields, false);
                    writeln!(out, "    }},").unwrap();
                }
                writeln!(out, "}}\n").unwrap();
            }
        }
    }
}

fn const_name(op: &Operation) -> String {
    snake(&op.id).to_uppercase()
}

fn operations_table(out: &mut String, spec: &Spec) {
    writeln!(
        out,
        "/// Every operation of the API, as data: what [`Client::call_operation`]\n/// (and the Node and Ruby bindings) dispatch on.\npub mod operations {{\n    use crate::operation::{{Method, OperationSpec, ResponseKind}};\n"
    )
    .unwrap();
    for op in &spec.operations {
        let list = |ps: &[crate::spec::Param]| {
            ps.iter()
                .map(|p| format!("\"{}\"", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let response = match op.success {
            Success::Json(_) => "Json",
            Success::Text => "Text",
            Success::Empty => "Empty",
        };
        writeln!(
            out,
            "    /// `{} {}`: {}\n    pub const {}: OperationSpec = OperationSpec {{\n        id: \"{}\",\n        method: Method::{},\n        path: \"{}\",\n        path_params: &[{}],\n        query_params: &[{}],\n        body: {},\n        response: ResponseKind::{response},\n        idempotent: {},\n    }};\n",
            op.method,
            op.path,
            // A summary may wrap: this doc line must not.
            op.summary
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .trim_end_matches('.')
                .to_string()
                + ".",
            const_name(op),
            op.id,
            pascal(&op.method.to_lowercase()),
            op.path,
            list(&op.path_params),
            list(&op.query_params),
            op.body.is_some(),
            op.idempotent(),
        )
        .unwrap();
    }
    let all: Vec<String> = spec.operations.iter().map(const_name).collect();
    writeln!(
        out,
        "    /// All of them, by `operationId`.\n    pub const ALL: &[&OperationSpec] = &[{}];\n}}\n",
        all.iter()
            .map(|c| format!("&{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
}

fn query_structs(out: &mut String, spec: &Spec) {
    for op in spec
        .operations
        .iter()
        .filter(|o| !o.query_params.is_empty())
    {
        writeln!(
            out,
            "/// Query parameters of [`Client::{}`].\n#[derive(Debug, Clone, Default, PartialEq)]\npub struct {}Query {{",
            snake(&op.id),
            pascal(&op.id)
        )
        .unwrap();
        for p in &op.query_params {
            doc(out, "    ", &p.doc, &format!("`{}`.", p.name));
            writeln!(
                out,
                "    pub {}: Option<{}>,",
                p.name,
                rust_type(&p.ty, true)
            )
            .unwrap();
        }
        writeln!(out, "}}\n").unwrap();
    }
}

fn success_type(op: &Operation) -> String {
    match &op.success {
        Success::Json(t) => rust_type(t, false),
        Success::Text => "String".into(),
        Success::Empty => "()".into(),
    }
}

fn methods(out: &mut String, spec: &Spec) {
    writeln!(out, "impl Client {{").unwrap();
    for op in &spec.operations {
        let mut text = op.summary.clone();
        if !op.description.is_empty() {
            text.push_str("\n\n");
            text.push_str(&op.description);
        }
        let errors: Vec<String> = op.error_statuses.iter().map(u16::to_string).collect();
        text.push_str(&format!(
            "\n\n`{} {}` (`{}`). Errors: {}, as [`Error::Api`](crate::Error::Api).",
            op.method,
            op.path,
            op.id,
            errors.join(", ")
        ));
        doc(out, "    ", &text, "");
        let mut args = vec!["&self".to_string()];
        let mut path_values = Vec::new();
        for p in &op.path_params {
            let ty = match p.ty {
                Type::Uuid => "uuid::Uuid",
                _ => "&str",
            };
            args.push(format!("{}: {ty}", p.name));
            path_values.push(format!("{}.to_string()", p.name));
        }
        if !op.query_params.is_empty() {
            args.push(format!("query: &{}Query", pascal(&op.id)));
        }
        if let Some(b) = &op.body {
            args.push(format!("body: &{b}"));
        }
        writeln!(
            out,
            "    pub async fn {}({}) -> Result<{}> {{",
            snake(&op.id),
            args.join(", "),
            success_type(op)
        )
        .unwrap();
        writeln!(
            out,
            "        #[allow(unused_mut)]\n        let mut params: Vec<(&'static str, String)> = Vec::new();"
        )
        .unwrap();
        for p in &op.query_params {
            let value = match &p.ty {
                Type::Ref(_) => "v.as_str().to_string()",
                _ => "v.to_string()",
            };
            writeln!(
                out,
                "        if let Some(v) = &query.{0} {{\n            params.push((\"{0}\", {value}));\n        }}",
                p.name
            )
            .unwrap();
        }
        let body = if op.body.is_some() {
            "Some(crate::operation::to_json(body)?)"
        } else {
            "None"
        };
        let (bind, finish) = match op.success {
            Success::Json(_) => ("let response = ", "response.json()"),
            Success::Text => ("let response = ", "response.text()"),
            Success::Empty => ("", "Ok(())"),
        };
        writeln!(
            out,
            "        {bind}self\n            .send(&operations::{}, &[{}], params, {body})\n            .await?;\n        {finish}\n    }}\n",
            const_name(op),
            path_values.join(", ")
        )
        .unwrap();

        if let Some((item, page)) = op.pagination(spec) {
            let item = rust_type(item, false);
            let mut args = vec!["&self".to_string()];
            let mut call_args = Vec::new();
            for p in &op.path_params {
                let ty = match p.ty {
                    Type::Uuid => "uuid::Uuid",
                    _ => "&'a str",
                };
                args.push(format!("{}: {ty}", p.name));
                call_args.push(p.name.clone());
            }
            call_args.push("&q".into());
            args.push(format!("query: {}Query", pascal(&op.id)));
            writeln!(
                out,
                "    /// Every item of [`Client::{0}`], page after page (each page's\n    /// `next_cursor` becomes the next request's `cursor`), as a stream.\n    pub fn {0}_stream<'a>({1}) -> impl futures_core::Stream<Item = Result<{item}>> + 'a {{\n        crate::pagination::paginate(query, move |q| async move {{\n            let page: {page} = self.{0}({2}).await?;\n            Ok((page.items, page.next_cursor))\n        }}, |q, cursor| q.cursor = Some(cursor))\n    }}\n",
                snake(&op.id),
                args.join(", ").replace("&self", "&'a self"),
                call_args.join(", "),
            )
            .unwrap();
        }
    }
    writeln!(out, "}}").unwrap();
}

/// The whole file.
pub fn generate(spec: &Spec) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "// Code generated by `cargo xtask codegen` from openapi/openapi.json (API {}). DO NOT EDIT.\n\n//! Models and operations of the Skybridge API, generated from its OpenAPI\n//! document.\n#![allow(clippy::all)]\n\nuse serde::{{Deserialize, Serialize}};\n\nuse crate::{{Client, Result}};\n",
        spec.version
    )
    .unwrap();
    models(&mut out, spec);
    query_structs(&mut out, spec);
    operations_table(&mut out, spec);
    methods(&mut out, spec);
    rustfmt(&out)
}

/// The code as `rustfmt` lays it out, so `cargo fmt --check` holds for it too.
fn rustfmt(code: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running rustfmt (rustup component add rustfmt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(code.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("rustfmt");
    assert!(out.status.success(), "rustfmt refused the generated code");
    String::from_utf8(out.stdout).expect("rustfmt writes UTF-8")
}
