//! The sandbox held against the official API descriptions in `../shared/specs/`
//! (override with `SWITCHYARD_SPECS_DIR`): cases are derived from the spec files,
//! not written by hand, so a rule the sandbox forgets shows up here. Without the
//! files the test says so loudly and passes, unless `SWITCHYARD_REQUIRE_SPECS=1`.

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use switchyard_sandbox::{
    self as sandbox, DiscordLimits, SandboxHandle, SandboxOptions, TelegramLimits, TelegramUser,
    TelegramUserAction,
};

use crate::openapi::{self, OpenApi, conformance_problems, error_at, load};

const DISCORD_TOKEN: &str = "MTAxMjM0.fake.token";
const TELEGRAM_TOKEN: &str = "123456:TEST-token";
const CHANNEL: u64 = 1004;
const CHAT: i64 = 4242;

fn specs() -> Option<PathBuf> {
    openapi::specs(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"))
}

async fn sandbox() -> SandboxHandle {
    sandbox::start(SandboxOptions {
        discord_rate: DiscordLimits::unlimited(),
        telegram_rate: TelegramLimits::unlimited(),
        discord_tokens: vec![DISCORD_TOKEN.into()],
        telegram_tokens: vec![TELEGRAM_TOKEN.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

/// A request derived from the spec and what the sandbox must answer.
struct Case {
    what: String,
    body: Value,
    /// Where the error must point (`errors.<path>._errors`).
    error_path: Vec<String>,
}

/// Walks an object schema and derives refusal cases for each property. `wrap` puts a
/// value for this object into a whole request body.
fn derive_cases(
    api: &OpenApi,
    schema: &Value,
    path: &[String],
    wrap: &dyn Fn(Value) -> Value,
    out: &mut Vec<Case>,
) {
    let schema = api.deref(schema);
    let minimal = api.minimal(schema);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let with = |name: &str, value: Value| {
        let mut obj = minimal.as_object().unwrap().clone();
        obj.insert(name.to_owned(), value);
        wrap(Value::Object(obj))
    };
    for name in &required {
        let mut obj = minimal.as_object().unwrap().clone();
        obj.remove(*name);
        let field_path: Vec<String> = path.iter().cloned().chain([name.to_string()]).collect();
        out.push(Case {
            what: format!("{} omitted", field_path.join(".")),
            body: wrap(Value::Object(obj)),
            error_path: field_path,
        });
    }
    for (name, prop) in props {
        let field_path: Vec<String> = path.iter().cloned().chain([name.clone()]).collect();
        let label = field_path.join(".");
        let case = |what: String, value: Value| Case {
            what,
            body: with(name, value),
            error_path: field_path.clone(),
        };
        let alternatives = api.alternatives(prop);
        // The nonce alone is an integer OR a string: its limits are per alternative.
        let single = alternatives.len() == 1;
        for alt in &alternatives {
            let types = OpenApi::types(alt);
            if let Some(max) = alt.get("maxLength").and_then(Value::as_u64) {
                let long = if alt.get("format") == Some(&json!("uri")) {
                    format!("https://example.com/{}", "a".repeat(max as usize))
                } else {
                    "x".repeat(max as usize + 1)
                };
                out.push(case(format!("{label} over maxLength {max}"), json!(long)));
            }
            if let Some(min) = alt
                .get("minLength")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0)
            {
                out.push(case(
                    format!("{label} under minLength {min}"),
                    json!("x".repeat(min as usize - 1)),
                ));
            }
            if types.contains(&"integer") && single {
                if let Some(max) = alt
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .filter(|m| *m < i64::MAX)
                {
                    out.push(case(format!("{label} over maximum {max}"), json!(max + 1)));
                }
                if let Some(min) = alt
                    .get("minimum")
                    .and_then(Value::as_i64)
                    .filter(|m| *m > i64::MIN)
                {
                    out.push(case(format!("{label} under minimum {min}"), json!(min - 1)));
                }
            }
            if types.contains(&"array") {
                let item = api.minimal(&alt["items"]);
                if let Some(max) = alt.get("maxItems").and_then(Value::as_u64) {
                    let items = vec![item.clone(); max as usize + 1];
                    out.push(case(
                        format!("{label} over maxItems {max}"),
                        Value::Array(items),
                    ));
                }
                if let Some(min) = alt
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .filter(|m| *m > 0)
                {
                    out.push(case(
                        format!("{label} under minItems {min}"),
                        Value::Array(vec![item; min as usize - 1]),
                    ));
                }
                // Arrays of objects: the items' own rules, in the first item.
                let item_schema = api.deref(&alt["items"]);
                if item_schema.get("properties").is_some() && alt["items"].get("$ref").is_some() {
                    let item_path: Vec<String> =
                        field_path.iter().cloned().chain(["0".to_owned()]).collect();
                    let name = name.clone();
                    let wrap_item = |v: Value| with(&name, json!([v]));
                    derive_cases(api, item_schema, &item_path, &wrap_item, out);
                }
            }
            if alt.get("properties").is_some() {
                let name = name.clone();
                let wrap_obj = |v: Value| with(&name, v);
                derive_cases(api, alt, &field_path, &wrap_obj, out);
            }
        }
        // A value of the wrong type, when the property has one declared type.
        if single {
            let alt = alternatives[0];
            let wrong = match OpenApi::types(alt).first().copied() {
                Some("string") if alt.get("format") == Some(&json!("snowflake")) => {
                    Some(json!("not-a-snowflake"))
                }
                Some("string") => Some(json!({"not": "a string"})),
                Some("integer") | Some("number") => Some(json!("not a number")),
                Some("boolean") => Some(json!("maybe")),
                Some("array") => Some(json!("not an array")),
                Some("object") => Some(json!("not an object")),
                _ if alt.get("properties").is_some() => Some(json!("not an object")),
                _ => None,
            };
            if let Some(wrong) = wrong {
                out.push(case(format!("{label} of the wrong type"), wrong));
            }
        }
    }
}

#[tokio::test]
async fn discord_message_create_request_conforms_to_the_openapi_description() {
    let Some(dir) = specs() else { return };
    let spec = load(&dir, "discord-openapi.json");
    let api = OpenApi {
        schemas: spec["components"]["schemas"].as_object().unwrap(),
    };
    let request_schema = &api.schemas["MessageCreateRequest"];
    let mut cases = Vec::new();
    let top = |v: Value| {
        let mut obj = v.as_object().unwrap().clone();
        obj.entry("content").or_insert(json!("hello"));
        Value::Object(obj)
    };
    derive_cases(&api, request_schema, &[], &top, &mut cases);
    // The documentation wins over the spec for content (specs/README): 2000, not 4000.
    cases.push(Case {
        what: "content over the documented 2000".into(),
        body: json!({"content": "x".repeat(2001)}),
        error_path: vec!["content".into()],
    });
    // The 6000-character total over a message's embeds is in the documentation only.
    cases.push(Case {
        what: "embeds over 6000 characters in all".into(),
        body: json!({"embeds": [{"description": "d".repeat(4000)}, {"description": "d".repeat(2001)}]}),
        error_path: vec!["embeds".into()],
    });
    assert!(
        cases.len() > 60,
        "the spec yields the expected breadth of cases, got {}",
        cases.len()
    );

    let sb = sandbox().await;
    let client = reqwest::Client::new();
    let url = format!("{}/channels/{CHANNEL}/messages", sb.discord_api_base());
    let mut failures = Vec::new();
    for case in &cases {
        let r = client
            .post(&url)
            .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
            .json(&case.body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let pointed = error_at(&body["errors"], &case.error_path).is_some();
        if status != 400 || body["code"] != 50035 || !pointed {
            failures.push(format!("{}: got {status} {body}", case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases not refused as Discord would:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Accepted: a minimal request, and one at every documented limit at once.
    let full = json!({
        "content": "x".repeat(2000), "nonce": "n".repeat(25), "enforce_nonce": true, "tts": false,
        "embeds": [{"title": "t".repeat(256), "description": "d".repeat(1000), "color": 16_777_215,
                    "fields": (0..25).map(|i| json!({"name": format!("f{i}"), "value": "v", "inline": true})).collect::<Vec<_>>(),
                    "footer": {"text": "footer"}, "author": {"name": "author"}, "url": "https://example.com/",
                    "timestamp": "2026-11-21T10:15:00Z"}],
        "allowed_mentions": {"parse": []},
    });
    for body in [json!({"content": "hello"}), full] {
        let r = client
            .post(&url)
            .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let message: Value = r.json().await.unwrap();
        let mut problems = Vec::new();
        conformance_problems(
            &api,
            &message,
            &api.schemas["MessageResponse"],
            "MessageResponse",
            &mut problems,
        );
        assert!(
            problems.is_empty(),
            "the response does not fit MessageResponse:\n{}",
            problems.join("\n")
        );
    }
    let stats = sb.state().stats.discord;
    assert_eq!((stats.rejected, stats.accepted), (cases.len() as u64, 2));
    println!(
        "discord conformance: {} refusal cases derived from the spec, all refused",
        cases.len()
    );
    sb.shutdown().await;
}

/// What a Discord client asks at login (`get_my_user`, `get_my_oauth2_application`)
/// fits the schemas the description gives for the answers.
#[tokio::test]
async fn discord_login_responses_conform_to_the_openapi_description() {
    let Some(dir) = specs() else { return };
    let spec = load(&dir, "discord-openapi.json");
    let api = OpenApi {
        schemas: spec["components"]["schemas"].as_object().unwrap(),
    };
    let sb = sandbox().await;
    let client = reqwest::Client::new();
    for (path, operation) in [
        ("/users/@me", "get_my_user"),
        ("/oauth2/applications/@me", "get_my_oauth2_application"),
    ] {
        let described = &spec["paths"][path]["get"];
        assert_eq!(
            described["operationId"], operation,
            "{path} in the description"
        );
        let schema = &described["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{path}: no 200 schema in the description"
        );
        let r = client
            .get(format!("{}{path}", sb.discord_api_base()))
            .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body: Value = r.json().await.unwrap();
        let mut problems = Vec::new();
        conformance_problems(&api, &body, schema, operation, &mut problems);
        assert!(
            problems.is_empty(),
            "{path} does not fit its description:\n{}",
            problems.join("\n")
        );
        // The bot the token names: "MTAxMjM0" is "101234" in base64.
        assert_eq!(body["id"], "101234", "{path}: {body}");
    }
    sb.shutdown().await;
}

// ---------------------------------------------------------------- Telegram

/// `(min, max, unit)` from a field description such as "1-4096 characters" or "1-64 bytes".
fn described_length(description: &str) -> Option<(usize, usize, String)> {
    let words: Vec<&str> = description.split_whitespace().collect();
    for pair in words.windows(2) {
        let unit = pair[1].trim_end_matches([',', '.', ';']);
        if unit != "characters" && unit != "bytes" {
            continue;
        }
        if let Some((a, b)) = pair[0].split_once('-')
            && let (Ok(min), Ok(max)) = (a.parse(), b.parse())
        {
            return Some((min, max, unit.to_owned()));
        }
    }
    None
}

fn field<'a>(spec: &'a Value, kind: &str, name: &str) -> &'a Value {
    &spec[kind][name]
}

fn fields(spec: &Value, kind: &str, name: &str) -> Vec<Value> {
    field(spec, kind, name)["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Problems of `value` against a Telegram type of telegram-api.json.
fn telegram_problems(
    spec: &Value,
    value: &Value,
    types: &[String],
    path: &str,
    out: &mut Vec<String>,
) {
    let fits = |ty: &str| -> bool {
        match ty {
            "Integer" => value.is_i64(),
            "Float" => value.is_number(),
            "String" => value.is_string(),
            "Boolean" => value.is_boolean(),
            "True" => value == &json!(true),
            t if t.starts_with("Array of ") => value.is_array(),
            _ => value.is_object(),
        }
    };
    let Some(ty) = types.iter().find(|t| fits(t)) else {
        out.push(format!("{path}: {value} is none of {types:?}"));
        return;
    };
    if let Some(inner) = ty.strip_prefix("Array of ") {
        for (i, item) in value.as_array().unwrap().iter().enumerate() {
            telegram_problems(
                spec,
                item,
                &[inner.to_owned()],
                &format!("{path}[{i}]"),
                out,
            );
        }
        return;
    }
    let Some(type_fields) = spec["types"][ty.as_str()]["fields"].as_array() else {
        return;
    };
    let obj = value.as_object().unwrap();
    for f in type_fields {
        let name = f["name"].as_str().unwrap();
        let ftypes: Vec<String> = serde_json::from_value(f["types"].clone()).unwrap();
        match obj.get(name) {
            None if f["required"] == true => {
                out.push(format!("{path}.{name}: required by the spec, missing"))
            }
            None => {}
            Some(v) => telegram_problems(spec, v, &ftypes, &format!("{path}.{name}"), out),
        }
    }
}

struct TgCase {
    what: String,
    method: &'static str,
    body: Value,
}

/// A value of the wrong type for a parameter documented as `types`.
fn wrong_value(types: &[String]) -> Value {
    match types {
        [t] if t == "Integer" || t == "Float" => json!("not a number"),
        [t] if t == "Boolean" || t == "True" => json!("maybe"),
        [t] if t.starts_with("Array of ") => json!(5),
        [t] if t == "String" => json!({"not": "a string"}),
        ts if ts.iter().any(|t| t == "String") => json!({"not": "a string"}),
        _ => json!(5),
    }
}

#[tokio::test]
async fn telegram_methods_conform_to_the_bot_api_description() {
    let Some(dir) = specs() else { return };
    let spec = load(&dir, "telegram-api.json");
    let openapi = dir
        .join("telegram-openapi-ark0f-8.1.json")
        .is_file()
        .then(|| load(&dir, "telegram-openapi-ark0f-8.1.json"));
    let sb = sandbox().await;
    let client = reqwest::Client::new();
    let base = format!("{}/bot{TELEGRAM_TOKEN}", sb.telegram_api_base());
    let call = |method: &str, body: &Value| {
        let request = client.post(format!("{base}/{method}")).json(body).send();
        async move {
            let r = request.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    // A message to edit and a button to press, so that valid requests exist.
    let button = json!({"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]});
    let (_, sent) = call(
        "sendMessage",
        &json!({"chat_id": CHAT, "text": "target", "reply_markup": button}),
    )
    .await;
    let message_id = sent["result"]["message_id"].as_i64().unwrap();
    let press = || {
        sb.telegram_user_action(TelegramUserAction::PressButton {
            chat_id: CHAT,
            message_id: message_id as i32,
            from: TelegramUser::new(7, "Ana"),
            callback_data: "go".into(),
        })
        .unwrap()
        .callback_query_id
        .unwrap()
    };
    let callback_id = press();

    // The value each parameter takes in a minimal valid request.
    let fixture = |method: &str, name: &str| -> Option<Value> {
        Some(match (method, name) {
            (_, "chat_id") => json!(CHAT),
            ("sendMessage", "text") => json!("hello"),
            ("editMessageText", "text") => json!("edited"),
            (_, "message_id") => json!(message_id),
            (_, "callback_query_id") => json!(callback_id),
            (_, "commands") => json!([{"command": "status", "description": "Fleet status"}]),
            _ => return None,
        })
    };
    let methods = [
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "setMyCommands",
    ];
    let mut cases = Vec::new();
    let mut minimal_requests = Vec::new();
    for method in methods {
        let method_fields = fields(&spec, "methods", method);
        // Required, or "Required if <the alternative> is not specified" (for the
        // alternatives the fixture uses: chat_id + message_id, not inline_message_id).
        let needed: Vec<&Value> = method_fields
            .iter()
            .filter(|f| {
                let conditional = f["description"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Required if");
                f["required"] == true
                    || (conditional && fixture(method, f["name"].as_str().unwrap()).is_some())
            })
            .collect();
        let mut minimal = Map::new();
        for f in &needed {
            let name = f["name"].as_str().unwrap();
            let value = fixture(method, name)
                .unwrap_or_else(|| panic!("the spec requires {method}.{name}: add a fixture"));
            minimal.insert(name.to_owned(), value);
        }
        // 8.1 still lists editMessageText's text as required; it is needed either way here.
        if method == "editMessageText" {
            minimal.insert("text".into(), fixture(method, "text").unwrap());
        }
        for f in &needed {
            let mut body = minimal.clone();
            body.remove(f["name"].as_str().unwrap());
            cases.push(TgCase {
                what: format!("{method}.{} omitted", f["name"]),
                method,
                body: Value::Object(body),
            });
        }
        for f in &method_fields {
            let name = f["name"].as_str().unwrap();
            let types: Vec<String> = serde_json::from_value(f["types"].clone()).unwrap();
            let mut body = minimal.clone();
            body.insert(name.to_owned(), wrong_value(&types));
            cases.push(TgCase {
                what: format!("{method}.{name} of the wrong type {types:?}"),
                method,
                body: Value::Object(body),
            });
            if let Some((min, max, unit)) =
                described_length(f["description"].as_str().unwrap_or(""))
            {
                let mut over = minimal.clone();
                over.insert(name.to_owned(), json!("x".repeat(max + 1)));
                cases.push(TgCase {
                    what: format!("{method}.{name} over {max} {unit}"),
                    method,
                    body: Value::Object(over),
                });
                if min > 0 {
                    let mut under = minimal.clone();
                    under.insert(name.to_owned(), json!("x".repeat(min - 1)));
                    cases.push(TgCase {
                        what: format!("{method}.{name} under {min} {unit}"),
                        method,
                        body: Value::Object(under),
                    });
                }
            }
        }
        if let Some(openapi) = &openapi {
            let schema = &openapi["paths"][format!("/{method}")]["post"]["requestBody"]["content"]
                ["application/json"]["schema"];
            for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                if let Some(max) = prop.get("maxLength").and_then(Value::as_u64) {
                    let mut over = minimal.clone();
                    over.insert(name.clone(), json!("x".repeat(max as usize + 1)));
                    cases.push(TgCase {
                        what: format!("{method}.{name} over maxLength {max} (8.1)"),
                        method,
                        body: Value::Object(over),
                    });
                }
                if let Some(min) = prop
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .filter(|m| *m > 0)
                {
                    let mut under = minimal.clone();
                    under.insert(name.clone(), json!("x".repeat(min as usize - 1)));
                    cases.push(TgCase {
                        what: format!("{method}.{name} under minLength {min} (8.1)"),
                        method,
                        body: Value::Object(under),
                    });
                }
            }
        }
        minimal_requests.push((method, Value::Object(minimal)));
    }
    // Limits on nested types: bot commands, inline keyboard buttons.
    for f in fields(&spec, "types", "BotCommand") {
        let name = f["name"].as_str().unwrap();
        if let Some((min, max, unit)) = described_length(f["description"].as_str().unwrap_or("")) {
            for (what, len) in [("over", max + 1), ("under", min.saturating_sub(1))] {
                if what == "under" && min == 0 {
                    continue;
                }
                let mut command = json!({"command": "status", "description": "Fleet status"});
                command[name] = json!("x".repeat(len));
                cases.push(TgCase {
                    what: format!("BotCommand.{name} {what} {min}-{max} {unit}"),
                    method: "setMyCommands",
                    body: json!({"commands": [command]}),
                });
            }
        }
    }
    let set_my_commands = field(&spec, "methods", "setMyCommands")["fields"][0]["description"]
        .as_str()
        .unwrap_or("");
    if let Some(n) = set_my_commands
        .split("At most ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next()?.parse::<usize>().ok())
    {
        let commands: Vec<Value> = (0..=n)
            .map(|i| json!({"command": format!("c{i}"), "description": "d"}))
            .collect();
        cases.push(TgCase {
            what: format!("setMyCommands over {n} commands"),
            method: "setMyCommands",
            body: json!({"commands": commands}),
        });
    }
    for f in fields(&spec, "types", "InlineKeyboardButton") {
        let name = f["name"].as_str().unwrap();
        if let Some((min, max, unit)) = described_length(f["description"].as_str().unwrap_or("")) {
            for len in [max + 1, min.saturating_sub(1)] {
                if len == max + 1 || min > 0 {
                    let mut b = json!({"text": "Go"});
                    b[name] = json!("x".repeat(len));
                    cases.push(TgCase {
                        what: format!("InlineKeyboardButton.{name} of {len} {unit} ({min}-{max})"),
                        method: "sendMessage",
                        body: json!({"chat_id": CHAT, "text": "pick", "reply_markup": {"inline_keyboard": [[b]]}}),
                    });
                }
            }
        }
    }
    assert!(
        cases.len() > 40,
        "the spec yields the expected breadth of cases, got {}",
        cases.len()
    );

    let mut failures = Vec::new();
    for case in &cases {
        let (status, body) = call(case.method, &case.body).await;
        let shaped = body["ok"] == false
            && body["error_code"] == json!(status)
            && body["description"].is_string();
        if status != 400 || !shaped {
            failures.push(format!("{}: got {status} {body}", case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases not refused as Telegram would:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The minimal requests are accepted; Message results fit the spec's Message type.
    for (method, body) in &minimal_requests {
        let (status, reply) = call(method, body).await;
        assert_eq!(status, 200, "{method} {body}: {reply}");
        assert_eq!(reply["ok"], true);
        let returns: Vec<String> =
            serde_json::from_value(field(&spec, "methods", method)["returns"].clone()).unwrap();
        let mut problems = Vec::new();
        telegram_problems(&spec, &reply["result"], &returns, method, &mut problems);
        assert!(
            problems.is_empty(),
            "{method}'s result does not fit {returns:?}:\n{}",
            problems.join("\n")
        );
    }
    // getUpdates results fit Update (the press queued above is still pending).
    let (_, updates) = call("getUpdates", &json!({"timeout": 0})).await;
    let mut problems = Vec::new();
    telegram_problems(
        &spec,
        &updates["result"],
        &["Array of Update".to_owned()],
        "getUpdates",
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "getUpdates' result does not fit:\n{}",
        problems.join("\n")
    );
    let (_, me) = call("getMe", &json!({})).await;
    telegram_problems(
        &spec,
        &me["result"],
        &["User".to_owned()],
        "getMe",
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "getMe's result does not fit:\n{}",
        problems.join("\n")
    );
    println!(
        "telegram conformance: {} refusal cases derived from the spec, all refused",
        cases.len()
    );
    sb.shutdown().await;
}
