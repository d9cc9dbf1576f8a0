//! OpenAPI 3.1 helpers for the conformance tests: `$ref`s, alternatives, a
//! minimal valid value, and the problems of a value against a schema. Shared by
//! the sandbox's conformance test and the root crate's command-registration
//! conformance test (`tests/it/command_conformance.rs` there includes this file).
#![allow(dead_code)]

use serde_json::{Map, Value, json};

/// The folder of API descriptions: `SWITCHYARD_SPECS_DIR`, or `shared/specs`
/// beside the repository (`default_dir`). `None` (said loudly) when absent;
/// a panic instead under `SWITCHYARD_REQUIRE_SPECS=1`.
pub fn specs(default_dir: std::path::PathBuf) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("SWITCHYARD_SPECS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or(default_dir);
    if dir.join("discord-openapi.json").is_file() && dir.join("telegram-api.json").is_file() {
        return Some(dir);
    }
    let message = format!(
        "CONFORMANCE SKIPPED: no API descriptions at {} (set SWITCHYARD_SPECS_DIR to the specs folder)",
        dir.display()
    );
    if std::env::var("SWITCHYARD_REQUIRE_SPECS").as_deref() == Ok("1") {
        panic!("{message}, and SWITCHYARD_REQUIRE_SPECS=1");
    }
    eprintln!("\n!!!!!!!!!! {message} !!!!!!!!!!\n");
    None
}

/// One description file, parsed.
pub fn load(dir: &std::path::Path, name: &str) -> Value {
    let text =
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

pub struct OpenApi<'a> {
    pub schemas: &'a Map<String, Value>,
}

impl<'a> OpenApi<'a> {
    pub fn deref(&self, mut schema: &'a Value) -> &'a Value {
        while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            schema = &self.schemas[r.rsplit('/').next().unwrap()];
        }
        schema
    }

    /// The non-null alternatives of a property (`oneOf` or the schema itself).
    pub fn alternatives(&self, schema: &'a Value) -> Vec<&'a Value> {
        match schema.get("oneOf").and_then(Value::as_array) {
            Some(alts) => alts
                .iter()
                .filter(|a| a.get("type") != Some(&json!("null")))
                .map(|a| self.deref(a))
                .collect(),
            None => vec![self.deref(schema)],
        }
    }

    pub fn types(schema: &Value) -> Vec<&str> {
        match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => vec![],
        }
    }

    /// A minimal valid value of `schema`, plus the fields Discord's documentation
    /// requires beyond the spec (an embed author's name, a footer's text).
    pub fn minimal(&self, schema: &'a Value) -> Value {
        let schema = self.alternatives(schema)[0];
        if schema.get("properties").is_some() {
            let mut obj = Map::new();
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = name.as_str().unwrap();
                obj.insert(name.to_owned(), self.minimal(&schema["properties"][name]));
            }
            let props = schema["properties"].as_object().unwrap();
            for doc_required in ["name", "text"] {
                if props.len() <= 3
                    && props.contains_key(doc_required)
                    && props.contains_key("icon_url")
                {
                    obj.insert(doc_required.to_owned(), json!("x"));
                }
            }
            return Value::Object(obj);
        }
        let types = Self::types(schema);
        match types.first().copied() {
            Some("string") if schema.get("format") == Some(&json!("snowflake")) => json!("1"),
            Some("string") if schema.get("format") == Some(&json!("uri")) => {
                json!("https://example.com/")
            }
            Some("string") => {
                let min = schema
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .max(1);
                json!("x".repeat(min as usize))
            }
            Some("integer") | Some("number") => json!(
                schema
                    .get("minimum")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .max(0)
            ),
            Some("boolean") => json!(false),
            Some("array") => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                Value::Array((0..min).map(|_| self.minimal(&schema["items"])).collect())
            }
            _ => json!({}),
        }
    }
}

/// Problems of `value` against an OpenAPI 3.1 schema: required fields and declared types.
pub fn conformance_problems(
    api: &OpenApi,
    value: &Value,
    schema: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let schema = api.deref(schema);
    if let Some(alts) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        let fits = alts.iter().any(|a| {
            let mut p = Vec::new();
            conformance_problems(api, value, a, path, &mut p);
            p.is_empty()
        });
        if !fits {
            out.push(format!("{path}: fits none of the alternatives: {value}"));
        }
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            conformance_problems(api, value, s, path, out);
        }
    }
    let types = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !fits {
        out.push(format!("{path}: is {actual}, the spec says {types:?}"));
        return;
    }
    if let Value::Object(obj) = value {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !obj.contains_key(name) {
                out.push(format!("{path}.{name}: required by the spec, missing"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in obj {
                if let Some(p) = props.get(k) {
                    conformance_problems(api, v, p, &format!("{path}.{k}"), out);
                }
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conformance_problems(api, item, item_schema, &format!("{path}[{i}]"), out);
        }
    }
}

pub fn error_at<'v>(errors: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = errors;
    for key in path {
        node = node.get(key)?;
    }
    node.get("_errors")
}
