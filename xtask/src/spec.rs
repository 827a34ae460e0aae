//! The OpenAPI document read into what the SDK generators need: models
//! (objects, string enums, tagged unions) and operations. Only the shapes the
//! Skybridge spec uses are understood; anything else is an error naming it, so
//! a new kind of schema cannot slip through as `any`.

use std::collections::BTreeMap;

use serde_json::Value;

/// A type as the generators see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// A UTF-8 string.
    String,
    /// `format: uuid`.
    Uuid,
    /// `format: date-time`.
    DateTime,
    /// An integer: signed or not, 32 or 64 bits.
    Integer { unsigned: bool, bits: u8 },
    /// `type: number`.
    Number,
    /// `type: boolean`.
    Bool,
    /// Any JSON value (`{}`).
    Any,
    /// `type: array`.
    Array(Box<Type>),
    /// An object with string keys and values of one type.
    Map(Box<Type>),
    /// A named model.
    Ref(String),
}

/// One property of an object model.
#[derive(Debug, Clone)]
pub struct Field {
    /// The JSON name (snake_case in this API).
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Whether the object always has it (required and not nullable).
    pub always: bool,
    /// Documentation.
    pub doc: String,
}

/// A named schema.
#[derive(Debug, Clone)]
pub enum Model {
    /// An object with known properties.
    Object {
        /// Documentation.
        doc: String,
        /// Its properties, in name order.
        fields: Vec<Field>,
    },
    /// A string enum.
    Enum {
        /// Documentation.
        doc: String,
        /// The values.
        values: Vec<String>,
    },
    /// A union of objects told apart by a `type` tag.
    Tagged {
        /// Documentation.
        doc: String,
        /// The tag's property name (`type`).
        tag: String,
        /// (tag value, documentation, the other fields).
        variants: Vec<(String, String, Vec<Field>)>,
    },
}

/// A parameter of an operation.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Documentation.
    pub doc: String,
}

/// What a successful response carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Success {
    /// JSON of this type.
    Json(Type),
    /// Text.
    Text,
    /// Nothing (204).
    Empty,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `operationId` (camelCase).
    pub id: String,
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: String,
    /// The path template, `/api/v1/functions/{name}`.
    pub path: String,
    /// Summary (first line) and the rest of the description.
    pub summary: String,
    /// The description after the summary.
    pub description: String,
    /// Path parameters, in path order.
    pub path_params: Vec<Param>,
    /// Query parameters.
    pub query_params: Vec<Param>,
    /// The request body's model, when there is one.
    pub body: Option<String>,
    /// What success returns (every 2xx status returns the same).
    pub success: Success,
    /// The error statuses the spec lists.
    pub error_statuses: Vec<u16>,
}

impl Operation {
    /// GET, PUT and DELETE may be repeated without changing the outcome.
    pub fn idempotent(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "PUT" | "DELETE" | "HEAD")
    }

    /// For list operations: the model of the items and the page's model.
    pub fn pagination<'a>(&self, spec: &'a Spec) -> Option<(&'a Type, String)> {
        if !self.query_params.iter().any(|p| p.name == "cursor") {
            return None;
        }
        let Success::Json(Type::Ref(page)) = &self.success else {
            return None;
        };
        let Model::Object { fields, .. } = spec.models.get(page)? else {
            return None;
        };
        fields.iter().find(|f| f.name == "next_cursor")?;
        let items = fields.iter().find(|f| f.name == "items")?;
        match &items.ty {
            Type::Array(inner) => Some((inner, page.clone())),
            _ => None,
        }
    }
}

/// The whole document.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `info.version`.
    pub version: String,
    /// Named schemas.
    pub models: BTreeMap<String, Model>,
    /// Operations, sorted by id.
    pub operations: Vec<Operation>,
}

fn doc_of(s: &Value) -> String {
    s.get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn type_names(s: &Value) -> Vec<String> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// The type of a schema and whether it admits `null`.
pub fn type_of(s: &Value, at: &str) -> Result<(Type, bool), String> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unsupported $ref {r}"))?;
        return Ok((Type::Ref(name.to_string()), false));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = s.get(key) {
            // `null` or a ref: a nullable ref.
            let non_null: Vec<&Value> = alts.iter().filter(|a| type_names(a) != ["null"]).collect();
            if non_null.len() == 1 && non_null.len() < alts.len() {
                let (t, _) = type_of(non_null[0], at)?;
                return Ok((t, true));
            }
            return Err(format!("{at}: unsupported {key}"));
        }
    }
    let names = type_names(s);
    let nullable = names.iter().any(|t| t == "null");
    let base: Vec<&String> = names.iter().filter(|t| *t != "null").collect();
    let format = s.get("format").and_then(Value::as_str).unwrap_or("");
    let unsigned = s
        .get("minimum")
        .and_then(Value::as_f64)
        .is_some_and(|m| m >= 0.0);
    let ty = match base.as_slice() {
        [] => Type::Any,
        [t] => match t.as_str() {
            "string" => match format {
                "uuid" => Type::Uuid,
                "date-time" => Type::DateTime,
                _ => Type::String,
            },
            "integer" => Type::Integer {
                unsigned,
                bits: if format == "int32" { 32 } else { 64 },
            },
            "number" => Type::Number,
            "boolean" => Type::Bool,
            "array" => {
                let items = s
                    .get("items")
                    .ok_or_else(|| format!("{at}: array without items"))?;
                Type::Array(Box::new(type_of(items, &format!("{at}[]"))?.0))
            }
            "object" if s.get("properties").is_none() => match s.get("additionalProperties") {
                Some(v @ Value::Object(_)) => {
                    Type::Map(Box::new(type_of(v, &format!("{at}{{}}"))?.0))
                }
                _ => return Err(format!("{at}: object without properties or value type")),
            },
            other => return Err(format!("{at}: unsupported inline type {other}")),
        },
        _ => return Err(format!("{at}: several types {base:?}")),
    };
    Ok((ty, nullable))
}

fn fields_of(s: &Value, at: &str, skip: Option<&str>) -> Result<Vec<Field>, String> {
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = Vec::new();
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            if Some(name.as_str()) == skip {
                continue;
            }
            let (ty, nullable) = type_of(p, &format!("{at}.{name}"))?;
            fields.push(Field {
                name: name.clone(),
                ty,
                always: required.contains(&name.as_str()) && !nullable,
                doc: doc_of(p),
            });
        }
    }
    Ok(fields)
}

fn model_of(name: &str, s: &Value) -> Result<Model, String> {
    if let Some(Value::Array(variants)) = s.get("oneOf") {
        let tag = "type";
        let mut out = Vec::new();
        for v in variants {
            let value = v["properties"][tag]["enum"][0]
                .as_str()
                .ok_or_else(|| format!("{name}: a oneOf variant without a `{tag}` tag"))?;
            out.push((
                value.to_string(),
                doc_of(v),
                fields_of(v, &format!("{name}.{value}"), Some(tag))?,
            ));
        }
        return Ok(Model::Tagged {
            doc: doc_of(s),
            tag: tag.into(),
            variants: out,
        });
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        return Ok(Model::Enum {
            doc: doc_of(s),
            values: values
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{name}: non-string enum"))
                })
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(Model::Object {
        doc: doc_of(s),
        fields: fields_of(s, name, None)?,
    })
}

/// Reads the document.
pub fn parse(doc: &Value) -> Result<Spec, String> {
    let mut models = BTreeMap::new();
    for (name, s) in doc["components"]["schemas"]
        .as_object()
        .ok_or("no components.schemas")?
    {
        models.insert(name.clone(), model_of(name, s)?);
    }
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().ok_or("no paths")? {
        for (method, op) in item.as_object().ok_or("bad path item")? {
            let id = op["operationId"]
                .as_str()
                .ok_or_else(|| format!("{method} {path} has no operationId"))?
                .to_string();
            let at = |what: &str| format!("{id}.{what}");
            let mut path_params = Vec::new();
            let mut query_params = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().ok_or("parameter without name")?;
                let (ty, _) = type_of(&p["schema"], &at(name))?;
                let param = Param {
                    name: name.to_string(),
                    ty,
                    doc: doc_of(p),
                };
                match p["in"].as_str() {
                    Some("path") => path_params.push(param),
                    Some("query") => query_params.push(param),
                    other => return Err(format!("{id}: parameter in {other:?}")),
                }
            }
            // Path parameters in the order the path names them.
            path_params.sort_by_key(|p| path.find(&format!("{{{}}}", p.name)));
            let body = match op.get("requestBody") {
                None => None,
                Some(b) => match type_of(&b["content"]["application/json"]["schema"], &at("body"))?
                {
                    (Type::Ref(m), _) => Some(m),
                    other => return Err(format!("{id}: body must be a model, is {other:?}")),
                },
            };
            let mut success = None;
            let mut error_statuses = Vec::new();
            for (status, r) in op["responses"].as_object().ok_or("no responses")? {
                let code: u16 = status
                    .parse()
                    .map_err(|_| format!("{id}: status {status}"))?;
                if !(200..300).contains(&code) {
                    error_statuses.push(code);
                    continue;
                }
                let this = match r.get("content").and_then(Value::as_object) {
                    None => Success::Empty,
                    Some(c) if c.contains_key("application/json") => {
                        Success::Json(type_of(&c["application/json"]["schema"], &at("response"))?.0)
                    }
                    Some(_) => Success::Text,
                };
                match &success {
                    Some(s) if *s != this => {
                        return Err(format!("{id}: 2xx responses of different types"))
                    }
                    _ => success = Some(this),
                }
            }
            let description = doc_of(op);
            let (summary, rest) = match op["summary"].as_str() {
                Some(s) => (s.to_string(), description),
                None => match description.split_once("\n\n") {
                    Some((a, b)) => (a.to_string(), b.to_string()),
                    None => (description, String::new()),
                },
            };
            operations.push(Operation {
                id,
                method: method.to_uppercase(),
                path: path.clone(),
                summary: summary.trim().to_string(),
                description: rest.trim().to_string(),
                path_params,
                query_params,
                body,
                success: success.ok_or_else(|| format!("{path}: no 2xx response"))?,
                error_statuses,
            });
        }
    }
    operations.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Spec {
        version: doc["info"]["version"]
            .as_str()
            .unwrap_or("0.0.0")
            .to_string(),
        models,
        operations,
    })
}

/// `listFunctions` → `list_functions`; `SkyIsland` → `sky_island`.
pub fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `next_cursor` → `nextCursor`.
pub fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `timed_out` → `TimedOut`.
pub fn pascal(s: &str) -> String {
    let c = camel(s);
    let mut chars = c.chars();
    match chars.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake("listFunctions"), "list_functions");
        assert_eq!(snake("runSkyIsland"), "run_sky_island");
        assert_eq!(camel("next_cursor"), "nextCursor");
        assert_eq!(pascal("timed_out"), "TimedOut");
    }
}
