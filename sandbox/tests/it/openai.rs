//! The OpenAI stand-in's behaviour over HTTP: the scripted answer that shows the
//! conversation was passed, a stream read event by event, the directives
//! (`long`, `broken`, `reset`, `garbage`, `429`, `status`, `answer`, `slow`),
//! API keys, injected faults, refusals in OpenAI's shape and the record of
//! every request. The spec-derived checks are in `openai_conformance.rs`.

use serde_json::{Value, json};
use switchyard_sandbox::{self as sandbox, Fault, Platform, SandboxHandle, SandboxOptions};

pub const KEY: &str = "sk-sandbox-test-key-0123456789abcdef";

pub async fn sandbox_with(opts: SandboxOptions) -> SandboxHandle {
    sandbox::start(opts).await.expect("the sandbox starts")
}

pub async fn sandbox() -> SandboxHandle {
    sandbox_with(SandboxOptions::default()).await
}

pub async fn post(sb: &SandboxHandle, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", sb.openai_base_url()))
        .json(body)
        .send()
        .await
        .expect("request")
}

pub fn request(text: &str) -> Value {
    json!({"model": "sandbox-model", "messages": [{"role": "user", "content": text}]})
}

pub fn streamed(text: &str) -> Value {
    let mut body = request(text);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

/// A server-sent event stream as the client read it.
pub struct Sse {
    /// How many body frames arrived (a stream flushed per event has one or more per event).
    pub frames: usize,
    /// The `data:` payloads, in order.
    pub data: Vec<String>,
    /// Reading the body failed (the connection was aborted).
    pub aborted: bool,
}

impl Sse {
    pub async fn read(mut r: reqwest::Response) -> Sse {
        let mut raw = Vec::new();
        let mut frames = 0;
        let mut aborted = false;
        loop {
            match r.chunk().await {
                Ok(Some(bytes)) => {
                    frames += 1;
                    raw.extend_from_slice(&bytes);
                }
                Ok(None) => break,
                Err(_) => {
                    aborted = true;
                    break;
                }
            }
        }
        let text = String::from_utf8(raw).expect("UTF-8 events");
        let data = text
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("an event that is not `data: `: {e:?}"))
                    .to_owned()
            })
            .collect();
        Sse {
            frames,
            data,
            aborted,
        }
    }

    /// The events that are JSON chunks.
    pub fn chunks(&self) -> Vec<Value> {
        self.data
            .iter()
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }

    /// The content of choice 0, concatenated.
    pub fn content(&self) -> String {
        self.chunks()
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    pub fn content_events(&self) -> usize {
        self.chunks()
            .iter()
            .filter(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            })
            .count()
    }

    pub fn finish_reasons(&self) -> Vec<String> {
        self.chunks()
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Status 4xx/5xx with OpenAI's error shape; returns the `error` object.
pub async fn refusal(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.expect("an error body is JSON");
    let e = &body["error"];
    assert!(e["message"].is_string(), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(e["param"].is_string() || e["param"].is_null(), "{body}");
    assert!(e["code"].is_string() || e["code"].is_null(), "{body}");
    e.clone()
}

#[tokio::test]
async fn the_answer_shows_the_persona_the_turns_and_the_last_message() {
    let sb = sandbox().await;
    let r = post(
        &sb,
        &json!({
            "model": "llama3.2",
            "max_tokens": 500,
            "messages": [
                {"role": "system", "content": "You are tech-lead.\nLocks: deploy (opsclaw)"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "how are the disks?"}]},
            ],
        }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let expected = "persona: You are tech-lead. · turns: 2 · you said: how are the disks?";
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["model"], "llama3.2");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["content"], expected);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    let prompt = [
        "You are tech-lead.\nLocks: deploy (opsclaw)",
        "first",
        "ok",
        "how are the disks?",
    ]
    .iter()
    .map(|t| sandbox::openai_token_estimate(t))
    .sum::<u64>();
    let completion = sandbox::openai_token_estimate(expected);
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": prompt, "completion_tokens": completion,
               "total_tokens": prompt + completion,
               "prompt_tokens_details": body["usage"]["prompt_tokens_details"],
               "completion_tokens_details": body["usage"]["completion_tokens_details"]})
    );

    let state = sb.state();
    let rec = state.openai.completions.last().expect("recorded");
    assert_eq!(rec.model, "llama3.2");
    assert_eq!((rec.messages.len(), rec.user_messages), (4, 2));
    assert_eq!(rec.system_first_line.as_deref(), Some("You are tech-lead."));
    assert_eq!(rec.last_user.as_deref(), Some("how are the disks?"));
    assert_eq!(
        rec.messages[0].text,
        "You are tech-lead.\nLocks: deploy (opsclaw)"
    );
    assert_eq!((rec.stream, rec.max_tokens), (false, Some(500)));
    assert_eq!(rec.answer.as_deref(), Some(expected));
    assert_eq!((rec.status, rec.prompt_tokens), (200, prompt));
    assert_eq!(state.stats.openai.accepted, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_streamed_answer_arrives_event_by_event_and_ends_with_done() {
    let sb = sandbox().await;
    let r = post(&sb, &streamed("stream it [[sandbox:chunk=5]]")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let sse = Sse::read(r).await;
    assert!(!sse.aborted);
    assert!(
        sse.frames >= sse.data.len(),
        "each event is flushed on its own: {} frames for {} events",
        sse.frames,
        sse.data.len()
    );
    let chunks = sse.chunks();
    assert_eq!(
        chunks.len(),
        sse.data.len() - 1,
        "every event but [DONE] is JSON"
    );
    assert_eq!(sse.data.last().unwrap(), "[DONE]");
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let expected = "persona: none · turns: 1 · you said: stream it";
    assert_eq!(sse.content(), expected);
    assert_eq!(sse.content_events(), expected.chars().count().div_ceil(5));
    assert_eq!(sse.finish_reasons(), ["stop"]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    let completion = sandbox::openai_token_estimate(expected);
    assert_eq!(usage["usage"]["completion_tokens"], completion);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null() && c["object"] == "chat.completion.chunk"),
        "usage is null until the last chunk"
    );
    let rec = sb.state().openai.completions.pop().unwrap();
    assert!(rec.stream && rec.include_usage);
    assert_eq!(rec.directives, ["chunk=5"]);
    assert_eq!(rec.answer.as_deref(), Some(expected));
    sb.shutdown().await;
}

#[tokio::test]
async fn long_answers_are_exact_and_streamed_in_several_chunks() {
    let sb = sandbox().await;
    let sse = Sse::read(post(&sb, &streamed("[[sandbox:long=3000]]")).await).await;
    assert_eq!(sse.content().chars().count(), 3000);
    assert!(
        sse.content_events() > 1,
        "{} content events",
        sse.content_events()
    );
    assert_eq!(sse.data.last().unwrap(), "[DONE]");
    // Not streamed: the same 3000 characters at once.
    let r = post(&sb, &request("[[sandbox:long=3000]]")).await;
    let body: Value = r.json().await.unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.chars().count(), 3000);
    // max_tokens cuts it, as the model would: finish_reason "length".
    let mut limited = request("[[sandbox:long=3000]]");
    limited["max_tokens"] = json!(10);
    let body: Value = post(&sb, &limited).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 10);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_broken_stream_ends_without_finish_reason_or_done_and_a_reset_one_aborts() {
    let sb = sandbox().await;
    let sse = Sse::read(post(&sb, &streamed("cut me [[sandbox:broken]]")).await).await;
    assert!(!sse.aborted, "the body ends cleanly, only too early");
    assert!(!sse.data.iter().any(|d| d == "[DONE]"), "{:?}", sse.data);
    assert!(sse.finish_reasons().is_empty(), "{:?}", sse.data);
    assert!(sse.content_events() >= 1);
    let full = "persona: none · turns: 1 · you said: cut me";
    assert!(full.starts_with(&sse.content()) && sse.content().len() < full.len());
    let rec = sb.state().openai.completions.pop().unwrap();
    assert_eq!(rec.answer.as_deref(), Some(sse.content().as_str()));
    assert_eq!(rec.finish_reason, None);

    let sse = Sse::read(post(&sb, &streamed("[[sandbox:reset]]")).await).await;
    assert!(sse.aborted, "reading the body fails");
    assert!(!sse.data.iter().any(|d| d == "[DONE]"));
    sb.shutdown().await;
}

#[tokio::test]
async fn garbage_is_a_data_line_that_is_not_json() {
    let sb = sandbox().await;
    let sse = Sse::read(post(&sb, &streamed("[[sandbox:garbage]] hi")).await).await;
    let not_json: Vec<&String> = sse
        .data
        .iter()
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .collect();
    assert_eq!(not_json.len(), 1, "{:?}", sse.data);
    assert_eq!(sse.content(), "persona: none · turns: 1 · you said: hi");
    // Not streamed: a 200 whose body does not parse.
    let r = post(&sb, &request("[[sandbox:garbage]]")).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    // A broken answer that is not streamed: JSON cut in the middle.
    let r = post(&sb, &request("[[sandbox:broken]] · über")).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("{\"") && serde_json::from_str::<Value>(&text).is_err(),
        "{text}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn status_directives_answer_in_openais_error_shape() {
    let sb = sandbox().await;
    let r = post(&sb, &streamed("[[sandbox:429]] [[sandbox:retry_after=7]]")).await;
    assert_eq!(r.headers()["retry-after"], "7");
    let e = refusal(r, 429).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("requests"), Some("rate_limit_exceeded"))
    );
    let e = refusal(post(&sb, &request("[[sandbox:quota]]")).await, 429).await;
    assert_eq!(e["code"], "insufficient_quota");
    let e = refusal(post(&sb, &request("[[sandbox:status=500]]")).await, 500).await;
    assert_eq!(e["type"], "server_error");
    refusal(post(&sb, &request("[[sandbox:503]]")).await, 503).await;
    let body: Value = post(
        &sb,
        &request("[[sandbox:answer=Disks at 40%.]] [[sandbox:slow=20]]"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Disks at 40%.");
    let state = sb.state();
    let statuses: Vec<u16> = state.openai.completions.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 500, 503, 200]);
    assert_eq!(
        state.openai.completions[4].directives,
        ["answer=Disks at 40%.", "slow=20"]
    );
    assert_eq!(state.stats.openai.rate_limited, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_checked_when_configured_and_never_echoed() {
    let sb = sandbox_with(SandboxOptions {
        openai_api_keys: vec![KEY.to_owned()],
        ..SandboxOptions::default()
    })
    .await;
    let url = format!("{}/chat/completions", sb.openai_base_url());
    let client = reqwest::Client::new();
    let e = refusal(
        client.post(&url).json(&request("hi")).send().await.unwrap(),
        401,
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("didn't provide an API key")
    );
    let wrong = "sk-wrong-key-that-should-not-leak-9876";
    let r = client
        .post(&url)
        .bearer_auth(wrong)
        .json(&request("hi"))
        .send()
        .await
        .unwrap();
    let e = refusal(r, 401).await;
    assert_eq!(e["code"], "invalid_api_key");
    let shown = e["message"].as_str().unwrap();
    assert!(shown.starts_with("Incorrect API key provided: "), "{shown}");
    assert!(
        !shown.contains(wrong) && !shown.contains("should-not-leak"),
        "{shown}"
    );
    let r = client
        .post(&url)
        .bearer_auth(KEY)
        .json(&request("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stats = sb.state().stats.openai;
    assert_eq!((stats.requests, stats.rejected, stats.accepted), (3, 2, 1));
    sb.shutdown().await;
}

#[tokio::test]
async fn injected_faults_fail_the_next_requests() {
    let sb = sandbox().await;
    sb.inject(Fault::ServerErrors {
        platform: Platform::Openai,
        count: 2,
        status: 502,
    });
    sb.inject(Fault::RateLimitStorm {
        platform: Platform::Openai,
        count: 1,
        retry_after_ms: 2500,
    });
    // Faults hit completions only; listing models is a read.
    let models = reqwest::get(format!("{}/models", sb.openai_base_url()))
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    for _ in 0..2 {
        let e = refusal(post(&sb, &request("hi")).await, 502).await;
        assert_eq!(e["type"], "server_error");
    }
    let r = post(&sb, &request("hi")).await;
    assert_eq!(r.headers()["retry-after"], "3");
    refusal(r, 429).await;
    assert_eq!(post(&sb, &request("hi")).await.status(), 200);
    assert_eq!(sb.state().stats.openai.faults_served, 3);
    sb.shutdown().await;
}

#[tokio::test]
async fn bad_requests_paths_methods_and_models_are_refused_as_openai_would() {
    let sb = sandbox_with(SandboxOptions {
        openai_models: vec!["llama3.2".into()],
        ..SandboxOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", sb.openai_base_url());
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let e = refusal(r, 400).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("could not parse the JSON body")
    );
    let mut body = request("hi");
    body["model"] = json!("llama3.2");
    body["frobnicate"] = json!(true);
    let e = refusal(post(&sb, &body).await, 400).await;
    assert_eq!(
        e["message"],
        "Unrecognized request argument supplied: frobnicate"
    );
    assert_eq!(e["param"], Value::Null);
    let e = refusal(post(&sb, &request("hi")).await, 404).await;
    assert_eq!(e["code"], "model_not_found");
    let e = refusal(client.get(&url).send().await.unwrap(), 405).await;
    assert_eq!(
        e["message"],
        "Invalid method for URL (GET /v1/chat/completions)"
    );
    let e = refusal(
        client
            .post(format!("{}/embeddingz", sb.openai_base_url()))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(e["message"], "Invalid URL (POST /v1/embeddingz)");
    let models: Value = reqwest::get(format!("{}/models", sb.openai_base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "llama3.2");
    let mut two = request("hi");
    two["model"] = json!("llama3.2");
    two["n"] = json!(2);
    let body: Value = post(&sb, &two).await.json().await.unwrap();
    assert_eq!(body["choices"].as_array().unwrap().len(), 2);
    assert_eq!(body["choices"][1]["index"], 1);
    let state = sb.state();
    let refused: Vec<u16> = state.openai.completions.iter().map(|c| c.status).collect();
    assert_eq!(
        refused,
        [400, 400, 404, 200],
        "completion requests are recorded, refused or not"
    );
    assert!(
        state.openai.completions[1]
            .error
            .as_deref()
            .unwrap()
            .contains("frobnicate")
    );
    sb.shutdown().await;
}
