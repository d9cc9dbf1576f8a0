//! Our Discord command set held against the official API description in
//! `../shared/specs/` (override with `SWITCHYARD_SPECS_DIR`), and the sandbox
//! refusing what the spec refuses at command registration. Without the files
//! the test says so loudly and passes, unless `SWITCHYARD_REQUIRE_SPECS=1`.
//!
//! The sandbox's own conformance tests are in the `switchyard-sandbox` crate
//! (`sandbox/tests/it/conformance.rs`); this one needs the agent's poise
//! commands, so it lives with them. The OpenAPI helpers are shared.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_sandbox::{
    self as sandbox, DiscordLimits, SandboxHandle, SandboxOptions, TelegramLimits,
};

#[path = "../../sandbox/tests/it/openapi.rs"]
mod openapi;

use openapi::{OpenApi, conformance_problems, error_at, load};

const DISCORD_TOKEN: &str = "MTAxMjM0.fake.token";

fn specs() -> Option<PathBuf> {
    openapi::specs(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"))
}

async fn sandbox() -> SandboxHandle {
    sandbox::start(SandboxOptions {
        discord_rate: DiscordLimits::unlimited(),
        telegram_rate: TelegramLimits::unlimited(),
        discord_tokens: vec![DISCORD_TOKEN.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

// ---------------------------------------------------------------- Discord command registration

/// String lengths, array sizes and enums of `value` against `schema` (what
/// `conformance_problems` leaves out), following `oneOf` to the alternative
/// the value fits.
fn limit_problems(api: &OpenApi, value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    let schema = api.deref(schema);
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let problems_of = |a: &Value| {
            let mut p = Vec::new();
            conformance_problems(api, value, a, path, &mut p);
            limit_problems(api, value, a, path, &mut p);
            p
        };
        let all: Vec<Vec<String>> = alts.iter().map(problems_of).collect();
        if !all.iter().any(Vec::is_empty) {
            // Report the alternative that came closest.
            let best = all.into_iter().min_by_key(Vec::len).unwrap_or_default();
            out.extend(best);
        }
        return;
    }
    for s in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        limit_problems(api, value, s, path, out);
    }
    let n = |k: &str| schema.get(k).and_then(Value::as_u64);
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if n("minLength").is_some_and(|m| len < m) || n("maxLength").is_some_and(|m| len > m) {
                out.push(format!(
                    "{path}: length {len} outside {:?}..{:?}",
                    n("minLength"),
                    n("maxLength")
                ));
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if n("minItems").is_some_and(|m| len < m) || n("maxItems").is_some_and(|m| len > m) {
                out.push(format!(
                    "{path}: {len} items outside {:?}..{:?}",
                    n("minItems"),
                    n("maxItems")
                ));
            }
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    limit_problems(api, v, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in obj {
                    if let Some(p) = props.get(k) {
                        limit_problems(api, v, p, &format!("{path}.{k}"), out);
                    }
                }
            }
        }
        _ => {}
    }
}

async fn put_commands(sb: &SandboxHandle, guild: u64, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/applications/101234/guilds/{guild}/commands",
            sb.discord_api_base()
        ))
        .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
        .json(body)
        .send()
        .await
        .expect("the sandbox answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discord_command_registration_conforms_to_the_openapi_description() {
    let Some(dir) = specs() else { return };
    let spec = load(&dir, "discord-openapi.json");
    let api = OpenApi {
        schemas: spec["components"]["schemas"].as_object().unwrap(),
    };
    let body_schema = &spec["paths"]["/applications/{application_id}/guilds/{guild_id}/commands"]["put"]
        ["requestBody"]["content"]["application/json"]["schema"];

    // What the agent registers: the poise commands built from the catalog.
    let set =
        poise::builtins::create_application_commands(&switchyard::discord::commands::commands());
    let ours = serde_json::to_value(&set).unwrap();
    assert_eq!(
        ours.as_array().unwrap().len(),
        switchyard_commands::COMMANDS.len()
    );
    let mut problems = Vec::new();
    conformance_problems(&api, &ours, body_schema, "body", &mut problems);
    limit_problems(&api, &ours, body_schema, "body", &mut problems);
    assert!(
        problems.is_empty(),
        "our command set breaks the spec: {problems:#?}"
    );
    let mut bad = Vec::new();
    let too_long = json!([{"name": "x".repeat(33), "description": "d", "options": [{"type": 3, "name": "o", "description": ""}]}]);
    limit_problems(&api, &too_long, body_schema, "body", &mut bad);
    assert_eq!(bad.len(), 2, "the checker sees broken limits: {bad:?}");

    let sb = sandbox().await;
    let (status, stored) = put_commands(&sb, 5, &ours).await;
    assert_eq!(status, 200, "{stored}");
    assert!(
        stored
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"].is_string())
    );
    let creates = sb.state().gateway.creates_today["5"];
    assert_eq!(creates as usize, set.len());
    // The same set again creates nothing.
    assert_eq!(put_commands(&sb, 5, &ours).await.0, 200);
    assert_eq!(sb.state().gateway.creates_today["5"], creates);

    // What the spec refuses, the sandbox refuses, pointing at the field. The limits
    // come from the spec: one past each.
    let item = api.deref(&body_schema["items"]);
    let max = |s: &Value, k: &str| s[k].as_u64().unwrap() as usize;
    let string_option = api.deref(&api.schemas["ApplicationCommandStringOption"]);
    let opt = |name: &str, required: bool| json!({"type": 3, "name": name, "description": "d", "required": required});
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "name past maxLength",
            json!({"name": "x".repeat(max(&item["properties"]["name"], "maxLength") + 1), "description": "d"}),
            vec!["0", "name"],
        ),
        (
            "description past maxLength",
            json!({"name": "ok", "description": "d".repeat(max(&item["properties"]["description"], "maxLength") + 1)}),
            vec!["0", "description"],
        ),
        (
            "more options than maxItems",
            json!({"name": "ok", "description": "d", "options":
                (0..=max(&item["properties"]["options"], "maxItems")).map(|i| opt(&format!("o{i}"), false)).collect::<Vec<_>>()}),
            vec!["0", "options"],
        ),
        (
            "option description past maxLength",
            json!({"name": "ok", "description": "d", "options": [
                {"type": 3, "name": "o", "description": "d".repeat(max(&string_option["properties"]["description"], "maxLength") + 1)}]}),
            vec!["0", "options", "0", "description"],
        ),
        // Documented beyond the spec: lowercase names, required options first.
        (
            "an uppercase name",
            json!({"name": "Status", "description": "d"}),
            vec!["0", "name"],
        ),
        (
            "a required option after an optional one",
            json!({"name": "ok", "description": "d", "options": [opt("a", false), opt("b", true)]}),
            vec!["0", "options", "1", "required"],
        ),
    ];
    for (what, cmd, path) in cases {
        let (status, body) = put_commands(&sb, 6, &json!([cmd])).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["code"], 50035, "{what}: {body}");
        let path: Vec<String> = path.into_iter().map(str::to_string).collect();
        assert!(
            error_at(&body["errors"], &path).is_some(),
            "{what}: no error at {path:?}: {body}"
        );
    }
    assert!(
        !sb.state().gateway.creates_today.contains_key("6"),
        "refused sets create nothing"
    );
}
