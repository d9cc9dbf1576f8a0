//! The `openai` responder: any OpenAI-compatible Chat Completions endpoint
//! (OpenAI, Ollama, llama.cpp's server, vLLM, LiteLLM), asked with
//! `stream: true` and read incrementally. The API key comes from the
//! environment variable the configuration names and is never logged.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::sse::{SseEvent, SseReader};
use crate::config::{OpenAiSettings, Secret};
use crate::conversations::{BoxFuture, Prompt, Responder, ResponderError, Usage};

pub struct OpenAiResponder {
    client: reqwest::Client,
    url: String,
    settings: OpenAiSettings,
    key: Option<Secret>,
}

impl std::fmt::Debug for OpenAiResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiResponder")
            .field("url", &self.url)
            .field("model", &self.settings.model)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: WireError,
}

/// A server's words, short and on one line (they reach the thread).
fn clip(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(200).collect()
}

impl OpenAiResponder {
    /// The key is read once, here, from `api_key_env`.
    pub fn new(settings: OpenAiSettings) -> anyhow::Result<OpenAiResponder> {
        let key = match &settings.api_key_env {
            Some(env) => Some(Secret::new(std::env::var(env).map_err(|_| {
                anyhow::anyhow!("the responder's API key is read from {env}, which is not set")
            })?)),
            None => None,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(OpenAiResponder {
            client,
            url: format!("{}/chat/completions", settings.base_url),
            settings,
            key,
        })
    }
}

impl Responder for OpenAiResponder {
    fn respond(
        &self,
        prompt: Prompt,
        out: mpsc::Sender<String>,
    ) -> BoxFuture<'static, Result<Usage, ResponderError>> {
        let client = self.client.clone();
        let url = self.url.clone();
        let settings = self.settings.clone();
        let key = self.key.clone();
        Box::pin(async move {
            let total = settings.timeout;
            match tokio::time::timeout(total, ask(client, url, settings, key, prompt, out)).await {
                Ok(r) => r,
                Err(_) => Err(ResponderError::TimedOut(total)),
            }
        })
    }
}

async fn ask(
    client: reqwest::Client,
    url: String,
    settings: OpenAiSettings,
    key: Option<Secret>,
    prompt: Prompt,
    out: mpsc::Sender<String>,
) -> Result<Usage, ResponderError> {
    let body = Request {
        model: &settings.model,
        messages: prompt
            .messages
            .iter()
            .map(|m| Message {
                role: m.role.as_str(),
                content: &m.content,
            })
            .collect(),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: settings.max_tokens,
        temperature: settings.temperature,
    };
    let mut req = client.post(&url).json(&body);
    if let Some(k) = &key {
        req = req.bearer_auth(k.expose());
    }
    let first_deadline = Instant::now() + settings.first_token_timeout;
    let mut response = match tokio::time::timeout_at(first_deadline, req.send()).await {
        Err(_) => return Err(ResponderError::TimedOut(settings.first_token_timeout)),
        Ok(Err(e)) => {
            return Err(ResponderError::Unreachable(
                crate::delivery::http::describe_reqwest(&e),
            ));
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let text = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| clip(&b.error.message))
            .unwrap_or_else(|_| clip(&text));
        return Err(match status.as_u16() {
            429 => ResponderError::RateLimited { retry_after },
            s @ 500..=599 => ResponderError::ServerError(s),
            s => ResponderError::Refused { status: s, detail },
        });
    }
    let mut reader = SseReader::default();
    let mut usage = Usage::default();
    let mut got_text = false;
    let mut finished = false;
    loop {
        let next = if got_text {
            response.chunk().await
        } else {
            match tokio::time::timeout_at(first_deadline, response.chunk()).await {
                Ok(r) => r,
                Err(_) => return Err(ResponderError::TimedOut(settings.first_token_timeout)),
            }
        };
        let bytes = match next {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                return Err(ResponderError::Broken(
                    crate::delivery::http::describe_reqwest(&e),
                ));
            }
        };
        let events = reader.feed(&bytes).map_err(ResponderError::Garbage)?;
        for event in events {
            match event {
                SseEvent::Done => return Ok(usage),
                SseEvent::Data(d) => {
                    let chunk: Chunk = serde_json::from_str(&d).map_err(|e| {
                        ResponderError::Garbage(format!(
                            "a stream event is not a completion chunk: {e}"
                        ))
                    })?;
                    if let Some(err) = chunk.error {
                        return Err(ResponderError::Broken(clip(&err.message)));
                    }
                    if let Some(u) = chunk.usage {
                        usage = Usage {
                            prompt_tokens: u.prompt_tokens,
                            completion_tokens: u.completion_tokens,
                        };
                    }
                    for choice in chunk.choices {
                        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                            got_text = true;
                            // The receiver gone means the platform side gave up: stop reading.
                            if out.send(text).await.is_err() {
                                return Ok(usage);
                            }
                        }
                        if choice.finish_reason.is_some() {
                            finished = true;
                        }
                    }
                }
            }
        }
    }
    if let Some(SseEvent::Done) = reader.finish() {
        return Ok(usage);
    }
    // Some servers end the body without `[DONE]` after a finish_reason; without either the answer is cut.
    if finished {
        Ok(usage)
    } else {
        Err(ResponderError::Broken(
            "the stream ended before the answer was complete".into(),
        ))
    }
}
