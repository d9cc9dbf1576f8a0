//! The OpenAI-compatible Chat Completions stand-in, served under `/openai/v1`
//! (a client's `base_url` is `http://ADDR/openai/v1`): `POST /chat/completions`,
//! answered whole (`chat.completion`) or streamed as server-sent events
//! (`chat.completion.chunk` events, the last choice's `finish_reason`, a usage
//! chunk when `stream_options.include_usage`, then `data: [DONE]`), flushed
//! event by event; `GET /models` and `GET /models/{id}`.
//!
//! Honest like the other stand-ins: a body is checked against the rules of
//! OpenAI's description ([`crate::openai_schema`]) and refused with status 400
//! and `{"error": {"message", "type": "invalid_request_error", "param", "code"}}`;
//! an unknown path is 404 and a wrong method 405 in that shape; when
//! [`SandboxOptions::openai_api_keys`](crate::SandboxOptions::openai_api_keys) names
//! keys, a request without one of them is 401 (the key shown masked), and when
//! [`SandboxOptions::openai_models`](crate::SandboxOptions::openai_models) names
//! models, another model is 404 `model_not_found`. Injected [`Fault`]s for
//! [`Platform::Openai`] hit `POST /chat/completions`.
//!
//! What it answers, and the `[[sandbox:…]]` directives that change it, are in
//! [`crate::openai_script`]. Every completion request is recorded
//! ([`OpenaiCompletion`], a bounded ring in [`OpenaiState`]).

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::openai_check::check_request;
use super::openai_errors::{
    authenticate, fault_body, invalid, model_not_found, rate_limited, refused, status_reply,
};
use super::openai_script::{self as script, Turn, estimate_tokens};
use super::openai_stream::Planned;
use super::{Fault, Platform, Reply, SandboxOptions, Seen, Shared, finish, record, serve_fault};

/// How many completion requests the state keeps (the oldest are dropped).
const MAX_COMPLETIONS: usize = 256;
const FINGERPRINT: &str = "fp_sandbox";

/// One message of a recorded request: its role and its text (text parts joined).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenaiMessage {
    pub role: String,
    pub text: String,
}

/// A `POST /chat/completions` as the sandbox saw and answered it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenaiCompletion {
    pub seq: u64,
    /// The requested model (empty when the body did not say).
    pub model: String,
    /// Every message, in order.
    pub messages: Vec<OpenaiMessage>,
    pub user_messages: usize,
    /// The first line of the first system (or developer) message: the persona.
    pub system_first_line: Option<String>,
    /// The last user message's text, directives included.
    pub last_user: Option<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u64>,
    /// The directives recognised in the last user message (`slow=200`, `429`).
    pub directives: Vec<String>,
    /// The text the client was sent (part of it for a `broken` stream); `None` when refused.
    pub answer: Option<String>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The HTTP status answered.
    pub status: u16,
    /// Why it was refused.
    pub error: Option<String>,
}

/// The OpenAI stand-in's part of the sandbox state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenaiState {
    /// Oldest first; the last 256.
    pub completions: Vec<OpenaiCompletion>,
}

pub(crate) struct World {
    completions: VecDeque<OpenaiCompletion>,
    seq: u64,
    keys: Vec<String>,
    models: Vec<String>,
}

impl World {
    pub(crate) fn new(opts: &SandboxOptions) -> Self {
        Self {
            completions: VecDeque::new(),
            seq: 0,
            keys: opts.openai_api_keys.clone(),
            models: opts.openai_models.clone(),
        }
    }

    pub(crate) fn snapshot(&self) -> OpenaiState {
        OpenaiState {
            completions: self.completions.iter().cloned().collect(),
        }
    }

    fn store(&mut self, mut c: OpenaiCompletion) -> u64 {
        self.seq += 1;
        c.seq = self.seq;
        if self.completions.len() >= MAX_COMPLETIONS {
            self.completions.pop_front();
        }
        self.completions.push_back(c);
        self.seq
    }
}

pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/openai").unwrap_or(uri.path());
    let route = path.trim_end_matches('/');
    let (name, allowed) = match route {
        "/v1/chat/completions" => ("create_chat_completion", Method::POST),
        "/v1/models" => ("list_models", Method::GET),
        p if p.starts_with("/v1/models/") => ("retrieve_model", Method::GET),
        _ => ("unknown", Method::POST),
    };
    let seen = Seen {
        platform: Platform::Openai,
        method: method.to_string(),
        path: uri.path().to_owned(),
        route: name.to_owned(),
    };
    if name == "unknown" {
        let message = format!("Invalid URL ({method} {path})");
        let reply = refused(
            StatusCode::NOT_FOUND,
            &message,
            "invalid_request_error",
            None,
        );
        return finish(&shared, seen, reply);
    }
    if method != allowed {
        let message = format!("Invalid method for URL ({method} {path})");
        let reply = refused(
            StatusCode::METHOD_NOT_ALLOWED,
            &message,
            "invalid_request_error",
            None,
        );
        return finish(&shared, seen, reply);
    }
    let keys = shared.lock().openai.keys.clone();
    let auth = authenticate(&keys, &headers);
    if let Err(reply) = auth {
        if name == "create_chat_completion" {
            store_refusal(&shared, &reply);
        }
        return finish(&shared, seen, reply);
    }
    match name {
        "list_models" => {
            let models = shared.lock().openai.models.clone();
            let models = if models.is_empty() {
                vec!["sandbox".to_owned()]
            } else {
                models
            };
            let data: Vec<Value> = models.iter().map(|m| model_json(m)).collect();
            finish(
                &shared,
                seen,
                Reply::ok(json!({"object": "list", "data": data})),
            )
        }
        "retrieve_model" => {
            let id = route.trim_start_matches("/v1/models/");
            let models = shared.lock().openai.models.clone();
            let reply = if models.is_empty() || models.iter().any(|m| m == id) {
                Reply::ok(model_json(id))
            } else {
                model_not_found(id)
            };
            finish(&shared, seen, reply)
        }
        _ => completion(&shared, seen, &body).await,
    }
}

fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "switchyard-sandbox"})
}

/// Records a refused completion request.
fn store_refusal(shared: &Shared, reply: &Reply) {
    let c = OpenaiCompletion {
        status: reply.status.as_u16(),
        error: reply.error.clone(),
        ..OpenaiCompletion::default()
    };
    shared.lock().openai.store(c);
}

/// The parts of a checked request the answer depends on.
#[derive(Deserialize)]
struct Request {
    model: String,
    messages: Vec<RawMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

impl RawMessage {
    fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| p.text.as_deref().or(p.refusal.as_deref()))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

async fn completion(shared: &Arc<Shared>, seen: Seen, body: &[u8]) -> Response {
    let fault = shared.lock().take_fault(Platform::Openai);
    let mut lost = None;
    match fault {
        Some(Fault::LostResponses { delay_ms, .. }) => lost = Some(delay_ms),
        Some(Fault::RateLimitStorm { retry_after_ms, .. }) => {
            let reply =
                rate_limited("the model", retry_after_ms.div_ceil(1000).max(1)).into_fault();
            store_refusal(shared, &reply);
            return finish(shared, seen, reply);
        }
        Some(fault) => {
            if let Some(reply) = serve_fault(&fault, fault_body).await {
                store_refusal(shared, &reply);
                return finish(shared, seen, reply);
            }
        }
        None => {}
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let reply = refused(
                StatusCode::BAD_REQUEST,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
                "invalid_request_error",
                None,
            );
            store_refusal(shared, &reply);
            return finish(shared, seen, reply);
        }
    };
    let checked = check_request(&value).map_err(|e| invalid(&e));
    let request = checked.and_then(|()| {
        serde_json::from_value::<Request>(value).map_err(|e| {
            refused(
                StatusCode::BAD_REQUEST,
                &format!("Invalid request body: {e}"),
                "invalid_request_error",
                None,
            )
        })
    });
    let request = match request {
        Ok(r) => r,
        Err(reply) => {
            store_refusal(shared, &reply);
            return finish(shared, seen, reply);
        }
    };
    let turns: Vec<Turn> = request
        .messages
        .iter()
        .map(|m| Turn {
            role: m.role.clone(),
            text: m.text(),
        })
        .collect();
    let last_user = turns.iter().rev().find(|t| t.role == "user");
    let (directives, said) = script::parse(last_user.map_or("", |t| t.text.as_str()));
    let max_tokens = request.max_completion_tokens.or(request.max_tokens);
    let mut record = OpenaiCompletion {
        model: request.model.clone(),
        messages: turns
            .iter()
            .map(|t| OpenaiMessage {
                role: t.role.clone(),
                text: t.text.clone(),
            })
            .collect(),
        user_messages: turns.iter().filter(|t| t.role == "user").count(),
        system_first_line: turns
            .iter()
            .find(|t| t.role == "system" || t.role == "developer")
            .and_then(|t| t.text.lines().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().to_owned()),
        last_user: last_user.map(|t| t.text.clone()),
        stream: request.stream == Some(true),
        include_usage: request
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        max_tokens,
        directives: directives.seen.clone(),
        prompt_tokens: turns.iter().map(|t| estimate_tokens(&t.text)).sum(),
        ..OpenaiCompletion::default()
    };
    let models_known = shared.lock().openai.models.clone();
    let refusal = if !models_known.is_empty() && !models_known.contains(&request.model) {
        Some(model_not_found(&request.model))
    } else {
        directives
            .status
            .or(directives.quota.then_some(429))
            .map(|s| status_reply(s, &request.model, &directives))
    };
    if let Some(reply) = refusal {
        tokio::time::sleep(directives.slow).await;
        record.status = reply.status.as_u16();
        record.error = reply.error.clone();
        shared.lock().openai.store(record);
        return finish(shared, seen, reply);
    }

    let answer = match (&directives.answer, directives.long) {
        (Some(a), _) => a.clone(),
        (None, Some(n)) => script::long(n),
        (None, None) => script::scripted(&turns, &said),
    };
    let stops = match request.stop {
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
        None => Vec::new(),
    };
    let (answer, _) = script::stop_at(&answer, &stops);
    let (answer, cut) = script::limit(&answer, max_tokens);
    let planned = Planned {
        id: format!("chatcmpl-sandbox{:016x}", rand::random::<u64>()),
        created: super::unix_now() as u64,
        model: request.model.clone(),
        choices: request.n.unwrap_or(1).max(1),
        completion_tokens: estimate_tokens(&answer),
        answer,
        finish_reason: if cut { "length" } else { "stop" },
        prompt_tokens: record.prompt_tokens,
        include_usage: record.include_usage,
        directives,
    };
    record.finish_reason = Some(planned.finish_reason.to_owned());
    record.completion_tokens = planned.completion_tokens;
    record.status = 200;
    let cut_short = planned.directives.broken || planned.directives.reset;
    record.answer = Some(if record.stream && cut_short {
        super::openai_stream::sent_before_cut(&planned)
    } else {
        planned.answer.clone()
    });
    if record.stream && cut_short {
        record.finish_reason = None;
    }
    shared.lock().openai.store(record.clone());

    if let Some(delay_ms) = lost {
        // The work is done; the answer is lost on the way back.
        tokio::time::sleep(planned.directives.slow).await;
        return finish(
            shared,
            seen,
            super::lose_response(delay_ms, fault_body).await,
        );
    }
    if record.stream {
        record_sent(shared, seen);
        return super::openai_stream::response(planned);
    }
    tokio::time::sleep(planned.directives.slow).await;
    non_streamed(shared, seen, &planned)
}

/// Counts a 200 whose body is not a JSON [`Reply`] (a stream, a broken body).
fn record_sent(shared: &Shared, seen: Seen) {
    record(shared, seen, StatusCode::OK, None, false);
}

fn non_streamed(shared: &Shared, seen: Seen, p: &Planned) -> Response {
    let choices: Vec<Value> = (0..p.choices)
        .map(|index| {
            json!({
                "index": index,
                "message": {"role": "assistant", "content": p.answer, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": p.finish_reason,
            })
        })
        .collect();
    let body = json!({
        "id": p.id,
        "object": "chat.completion",
        "created": p.created,
        "model": p.model,
        "choices": choices,
        "usage": p.usage(),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    });
    if p.directives.garbage || p.directives.broken {
        record_sent(shared, seen);
        let text = body.to_string();
        let text = if p.directives.garbage {
            "<html><body>502 Bad Gateway</body></html>".to_owned()
        } else {
            // Half the body, cut on a character boundary (the answer is UTF-8).
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_owned()
        };
        let mut response = Response::new(Body::from(text));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return response;
    }
    finish(shared, seen, Reply::ok(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_a_bounded_ring_numbered_in_order() {
        let mut world = World::new(&SandboxOptions::default());
        for _ in 0..MAX_COMPLETIONS + 3 {
            world.store(OpenaiCompletion::default());
        }
        let kept = world.snapshot().completions;
        assert_eq!(kept.len(), MAX_COMPLETIONS);
        assert_eq!(kept[0].seq, 4);
        assert_eq!(kept.last().unwrap().seq, (MAX_COMPLETIONS + 3) as u64);
    }
}
