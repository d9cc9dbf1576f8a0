//! The OpenAI stand-in held against OpenAI's description of `POST
//! /chat/completions` (`openai-extract-chat-completions.json` in
//! `../shared/specs/`; `SWITCHYARD_SPECS_DIR` overrides): the refusal cases are
//! derived from `CreateChatCompletionRequest` and its message variants, not
//! written by hand, and the answers (whole, streamed, errors) are checked for
//! every field the response schemas require. Without the file the test says so
//! loudly and passes, unless `SWITCHYARD_REQUIRE_SPECS=1`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use switchyard_sandbox::SandboxOptions;

use crate::openai::{Sse, post, request, sandbox_with, streamed};
use crate::openapi::{self, OpenApi, conformance_problems, load};

const FILE: &str = "openai-extract-chat-completions.json";

/// The description, with OpenAPI 3.0's `nullable` rewritten to type unions (the
/// file mixes it into a 3.1 document; the specs README says to).
fn spec() -> Option<Value> {
    let dir = openapi::specs(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"))?;
    if !dir.join(FILE).is_file() {
        let message = format!("OPENAI CONFORMANCE SKIPPED: no {FILE} in {}", dir.display());
        assert!(
            std::env::var("SWITCHYARD_REQUIRE_SPECS").as_deref() != Ok("1"),
            "{message}, and SWITCHYARD_REQUIRE_SPECS=1"
        );
        eprintln!("\n!!!!!!!!!! {message} !!!!!!!!!!\n");
        return None;
    }
    let mut spec = load(&dir, FILE);
    unnullable(&mut spec);
    Some(spec)
}

fn unnullable(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            if obj.remove("nullable") == Some(json!(true)) {
                if let Some(Value::String(t)) = obj.get("type").cloned() {
                    obj.insert("type".into(), json!([t, "null"]));
                } else if let Some(key) = ["oneOf", "anyOf"]
                    .into_iter()
                    .find(|k| obj.contains_key(*k))
                {
                    if let Some(Value::Array(alts)) = obj.get_mut(key) {
                        alts.push(json!({"type": "null"}));
                    }
                } else if let Some(r) = obj.remove("$ref") {
                    obj.insert("anyOf".into(), json!([{"$ref": r}, {"type": "null"}]));
                }
            }
            obj.values_mut().for_each(unnullable);
        }
        Value::Array(items) => items.iter_mut().for_each(unnullable),
        _ => {}
    }
}

/// The non-null alternatives of a schema, `$ref`s followed, `anyOf`/`oneOf` flattened.
fn alts<'a>(api: &OpenApi<'a>, schema: &'a Value) -> Vec<&'a Value> {
    let schema = api.deref(schema);
    if let Some(list) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return list.iter().flat_map(|a| alts(api, a)).collect();
    }
    if schema.get("type") == Some(&json!("null")) {
        return Vec::new();
    }
    vec![schema]
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        None if schema.get("properties").is_some() => vec!["object"],
        None if schema.get("enum").is_some() => vec!["string"],
        _ => vec![],
    }
}

/// The JSON types a property allows (`number` allows integers).
fn allowed(api: &OpenApi, schema: &Value) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = alts(api, schema)
        .iter()
        .flat_map(|a| types(a))
        .map(str::to_owned)
        .collect();
    if set.contains("number") {
        set.insert("integer".into());
    }
    set
}

/// A value of none of the allowed types, if there is one.
fn wrong_value(allowed: &BTreeSet<String>) -> Option<Value> {
    [
        ("object", json!({"not": "expected"})),
        ("array", json!(["not", "expected"])),
        ("string", json!("not expected")),
        ("boolean", json!(true)),
        ("integer", json!(12_345)),
    ]
    .into_iter()
    .find(|(t, _)| !allowed.contains(*t))
    .map(|(_, v)| v)
}

/// A minimal valid value: the first alternative, its first choice, its required fields.
fn minimal(api: &OpenApi, schema: &Value) -> Value {
    let Some(alt) = alts(api, schema).into_iter().next() else {
        return Value::Null;
    };
    if let Some(first) = alt.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    let clamp = |v: f64| {
        let lo = alt
            .get("minimum")
            .and_then(Value::as_f64)
            .unwrap_or(f64::MIN);
        let hi = alt
            .get("maximum")
            .and_then(Value::as_f64)
            .unwrap_or(f64::MAX);
        v.max(lo).min(hi)
    };
    match types(alt).first().copied() {
        Some("object") => {
            let mut obj = Map::new();
            for name in alt
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = name.as_str().unwrap();
                obj.insert(name.to_owned(), minimal(api, &alt["properties"][name]));
            }
            Value::Object(obj)
        }
        Some("string") => json!("x"),
        Some("integer") => json!(clamp(1.0) as i64),
        Some("number") => json!(clamp(1.0)),
        Some("boolean") => json!(false),
        Some("array") => {
            let n = alt.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            Value::Array((0..n).map(|_| minimal(api, &alt["items"])).collect())
        }
        _ => json!({}),
    }
}

/// `properties` and `required` of a schema, through `allOf` (later parts win).
fn merged<'a>(
    api: &OpenApi<'a>,
    schema: &'a Value,
    props: &mut Map<String, Value>,
    required: &mut Vec<String>,
) {
    let schema = api.deref(schema);
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        merged(api, part, props, required);
    }
    if let Some(p) = schema.get("properties").and_then(Value::as_object) {
        props.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        required.push(r.as_str().unwrap().to_owned());
    }
}

/// A request the sandbox must refuse, and the `param` its error must name.
struct Case {
    what: String,
    body: Value,
    param: String,
}

/// Where derived cases go: the object's path in the request (`""` for the
/// request itself), a minimal valid value of it, and how that value is put
/// into a whole request.
struct Within<'a> {
    path: &'a str,
    base: &'a Value,
    put: &'a dyn Fn(Value) -> Value,
    /// 0 for the request; objects one level down are derived from too.
    depth: u32,
}

/// Refusal cases for the properties of an object schema.
fn derive(
    api: &OpenApi,
    props: &Map<String, Value>,
    required: &[String],
    within: &Within,
    out: &mut Vec<Case>,
) {
    let Within {
        path,
        base,
        put,
        depth,
    } = *within;
    let at = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let with = |name: &str, v: Value| {
        let mut obj = base.as_object().unwrap().clone();
        obj.insert(name.to_owned(), v);
        put(Value::Object(obj))
    };
    for name in required {
        let mut obj = base.as_object().unwrap().clone();
        obj.remove(name);
        out.push(Case {
            what: format!("{} omitted", at(name)),
            body: put(Value::Object(obj)),
            param: at(name),
        });
    }
    for (name, prop) in props {
        let param = at(name);
        let case = |what: String, v: Value| Case {
            what,
            body: with(name, v),
            param: param.clone(),
        };
        let allowed = allowed(api, prop);
        if let Some(v) = wrong_value(&allowed) {
            out.push(case(format!("{param} of a type not in {allowed:?}"), v));
        }
        let alternatives = alts(api, prop);
        if allowed.contains("integer") && !allowed.contains("number") {
            out.push(case(format!("{param} not an integer"), json!(1.5)));
        }
        if !alternatives.is_empty() && alternatives.iter().all(|a| a.get("enum").is_some()) {
            out.push(case(
                format!("{param} not among its choices"),
                json!("not-a-choice"),
            ));
        }
        for alt in &alternatives {
            for (key, delta) in [("maximum", 1.0), ("minimum", -1.0)] {
                if let Some(bound) = alt
                    .get(key)
                    .and_then(Value::as_f64)
                    .filter(|b| b.abs() < 1e15)
                {
                    let v = if types(alt).contains(&"integer") {
                        json!(bound as i64 + delta as i64)
                    } else {
                        json!(bound + delta)
                    };
                    out.push(case(format!("{param} past its {key} {bound}"), v));
                }
            }
            if let Some(max) = alt.get("maxLength").and_then(Value::as_u64) {
                out.push(case(
                    format!("{param} over maxLength {max}"),
                    json!("x".repeat(max as usize + 1)),
                ));
            }
            if types(alt).contains(&"array") {
                let item = minimal(api, &alt["items"]);
                if let Some(min) = alt
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .filter(|m| *m > 0)
                {
                    out.push(case(
                        format!("{param} under minItems {min}"),
                        Value::Array(vec![item.clone(); min as usize - 1]),
                    ));
                }
                if let Some(max) = alt.get("maxItems").and_then(Value::as_u64) {
                    out.push(case(
                        format!("{param} over maxItems {max}"),
                        Value::Array(vec![item.clone(); max as usize + 1]),
                    ));
                }
                let items = alts(api, &alt["items"]);
                if !items.is_empty() && items.iter().all(|i| i.get("enum").is_some()) {
                    out.push(Case {
                        what: format!("{param}[0] not among its choices"),
                        body: with(name, json!(["not-a-choice"])),
                        param: format!("{param}[0]"),
                    });
                }
            }
        }
        // One level into an object-valued parameter with a single shape.
        if depth == 0 && alternatives.len() == 1 && alternatives[0].get("properties").is_some() {
            let inner = alternatives[0];
            let inner_props = inner["properties"].as_object().unwrap();
            let inner_required: Vec<String> = inner
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            let inner_base = minimal(api, inner);
            let name = name.clone();
            let put_inner = |v: Value| with(&name, v);
            let inner_within = Within {
                path: &param,
                base: &inner_base,
                put: &put_inner,
                depth: depth + 1,
            };
            derive(api, inner_props, &inner_required, &inner_within, out);
        }
    }
}

/// Every case of the message variants: required fields omitted, wrong types,
/// content arrays empty, an unknown role; and the minimal message of each
/// variant and user content part, which must be accepted.
fn message_cases(api: &OpenApi, out: &mut Vec<Case>, accepted: &mut Vec<(String, Value)>) {
    let wrap = |m: Value| json!({"model": "sandbox-model", "messages": [m]});
    let message = &api.schemas["ChatCompletionRequestMessage"];
    for variant in alts(api, message) {
        let role = variant["properties"]["role"]["enum"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let minimal_message = minimal(api, variant);
        accepted.push((
            format!("a minimal {role} message"),
            wrap(minimal_message.clone()),
        ));
        let props = variant["properties"].as_object().unwrap();
        let required: Vec<String> = variant["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        let required: Vec<String> = required.into_iter().filter(|r| r != "role").collect();
        let props: Map<String, Value> = props
            .iter()
            .filter(|(k, _)| *k != "role")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let before = out.len();
        let within = Within {
            path: "messages[0]",
            base: &minimal_message,
            put: &wrap,
            depth: 1,
        };
        derive(api, &props, &required, &within, out);
        for c in &mut out[before..] {
            c.what = format!("{role} message: {}", c.what);
        }
        // The parts of a content array, each minimal one accepted.
        for content_alt in alts(api, &variant["properties"]["content"]) {
            if types(content_alt).contains(&"array") {
                for part in alts(api, &content_alt["items"]) {
                    let kind = part["properties"]["type"]["enum"][0].as_str().unwrap();
                    let mut m = minimal_message.clone();
                    m["content"] = json!([minimal(api, part)]);
                    accepted.push((format!("a {role} message with a {kind} part"), wrap(m)));
                }
            }
        }
    }
    out.push(Case {
        what: "a message of an unknown role".into(),
        body: wrap(json!({"role": "narrator", "content": "x"})),
        param: "messages[0].role".into(),
    });
}

#[tokio::test]
async fn chat_completions_conform_to_openais_description() {
    let Some(spec) = spec() else { return };
    let api = OpenApi {
        schemas: spec["components"]["schemas"].as_object().unwrap(),
    };
    let mut props = Map::new();
    let mut required = Vec::new();
    merged(
        &api,
        &api.schemas["CreateChatCompletionRequest"],
        &mut props,
        &mut required,
    );
    required.sort();
    assert_eq!(
        required,
        ["messages", "model"],
        "the spec's required parameters"
    );

    let base = request("hello");
    let mut cases = Vec::new();
    let top = Within {
        path: "",
        base: &base,
        put: &|v| v,
        depth: 0,
    };
    derive(&api, &props, &required, &top, &mut cases);
    let mut accepted = Vec::new();
    message_cases(&api, &mut cases, &mut accepted);
    assert!(
        cases.len() > 100,
        "the spec yields the expected breadth of cases, got {}",
        cases.len()
    );

    // Accepted: every documented parameter at a minimal valid value at once
    // (streaming, since stream_options needs it), and each message variant.
    let mut full: Map<String, Value> = props
        .iter()
        .map(|(k, v)| (k.clone(), minimal(&api, v)))
        .collect();
    full.insert("messages".into(), base["messages"].clone());
    full.insert("stream".into(), json!(true));
    accepted.push(("every documented parameter".into(), Value::Object(full)));

    let sb = sandbox_with(SandboxOptions::default()).await;
    let mut failures = Vec::new();
    for case in &cases {
        let r = post(&sb, &case.body).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let mut problems = Vec::new();
        conformance_problems(
            &api,
            &body,
            &api.schemas["ErrorResponse"],
            "ErrorResponse",
            &mut problems,
        );
        let e = &body["error"];
        if status != 400
            || !problems.is_empty()
            || e["type"] != "invalid_request_error"
            || e["param"] != case.param
        {
            failures.push(format!("{}: got {status} {body} {problems:?}", case.what));
        }
    }
    for (what, body) in &accepted {
        let r = post(&sb, body).await;
        if r.status() != 200 {
            failures.push(format!(
                "{what} refused: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases not answered as OpenAI would:\n{}",
        failures.len(),
        cases.len() + accepted.len(),
        failures.join("\n")
    );

    // A whole answer has every field CreateChatCompletionResponse requires.
    let r = post(&sb, &request("hello")).await;
    let body: Value = r.json().await.unwrap();
    let mut problems = Vec::new();
    conformance_problems(
        &api,
        &body,
        &api.schemas["CreateChatCompletionResponse"],
        "CreateChatCompletionResponse",
        &mut problems,
    );
    // The choice's message and usage are required by their own schemas.
    conformance_problems(
        &api,
        &body["choices"][0]["message"],
        &api.schemas["ChatCompletionResponseMessage"],
        "message",
        &mut problems,
    );
    conformance_problems(
        &api,
        &body["usage"],
        &api.schemas["CompletionUsage"],
        "usage",
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "the answer does not fit:\n{}\n{body:#}",
        problems.join("\n")
    );

    // Every chunk of a stream fits CreateChatCompletionStreamResponse; [DONE] ends it.
    let sse = Sse::read(post(&sb, &streamed("hello")).await).await;
    assert_eq!(sse.data.last().map(String::as_str), Some("[DONE]"));
    let chunks = sse.chunks();
    assert_eq!(chunks.len() + 1, sse.data.len());
    for (i, chunk) in chunks.iter().enumerate() {
        conformance_problems(
            &api,
            chunk,
            &api.schemas["CreateChatCompletionStreamResponse"],
            &format!("chunk {i}"),
            &mut problems,
        );
        for choice in chunk["choices"].as_array().unwrap() {
            conformance_problems(
                &api,
                &choice["delta"],
                &api.schemas["ChatCompletionStreamResponseDelta"],
                &format!("chunk {i} delta"),
                &mut problems,
            );
        }
    }
    let usage = chunks.last().unwrap();
    assert_eq!(
        usage["choices"],
        json!([]),
        "the usage chunk has no choices"
    );
    conformance_problems(
        &api,
        &usage["usage"],
        &api.schemas["CompletionUsage"],
        "usage chunk",
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "the stream does not fit:\n{}",
        problems.join("\n")
    );
    println!(
        "openai conformance: {} refusal cases and {} valid requests derived from the spec, all answered as documented",
        cases.len(),
        accepted.len()
    );
    sb.shutdown().await;
}
