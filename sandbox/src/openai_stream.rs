//! A streamed chat completion as OpenAI sends it: server-sent events, each
//! `data: {chat.completion.chunk}` and a blank line — first the role
//! (`delta: {"role": "assistant", "content": ""}`), then the content deltas,
//! then an empty delta with the `finish_reason`, then (with
//! `stream_options.include_usage`) a chunk with no choices and the `usage`, and
//! `data: [DONE]`. With `n` > 1 every step has one chunk per choice. The
//! `slow`, `chunk_ms`, `chunk`, `garbage`, `broken` and `reset` directives
//! ([`crate::openai_script`]) shape it.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::openai_script::{self as script, DEFAULT_CHUNK, Directives};

/// What was decided for one completion, before it is sent.
pub(crate) struct Planned {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub choices: u32,
    pub answer: String,
    pub finish_reason: &'static str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub include_usage: bool,
    pub directives: Directives,
}

impl Planned {
    pub(crate) fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        })
    }
}

/// What a `broken` or `reset` stream sends of the answer before it stops.
fn kept(pieces: &[String]) -> usize {
    pieces.len() / 2
}

fn pieces(p: &Planned) -> Vec<String> {
    script::pieces(&p.answer, p.directives.chunk_chars.unwrap_or(DEFAULT_CHUNK))
}

/// The text a `broken` or `reset` stream delivers.
pub(crate) fn sent_before_cut(p: &Planned) -> String {
    let pieces = pieces(p);
    pieces[..kept(&pieces)].concat()
}

fn chunk(p: &Planned, choices: Value, usage: Option<Value>) -> Bytes {
    let mut c = json!({
        "id": p.id,
        "object": "chat.completion.chunk",
        "created": p.created,
        "model": p.model,
        "system_fingerprint": "fp_sandbox",
        "service_tier": "default",
        "choices": choices,
    });
    // With include_usage every chunk carries `usage`, null until the last.
    if p.include_usage {
        c["usage"] = usage.unwrap_or(Value::Null);
    }
    Bytes::from(format!("data: {c}\n\n"))
}

fn choice(index: u32, delta: Value, finish_reason: Option<&str>) -> Value {
    json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish_reason}])
}

/// The events and the wait before each; `None` aborts the connection.
fn events(p: &Planned) -> Vec<(Duration, Option<Bytes>)> {
    let d = &p.directives;
    let mut out: Vec<(Duration, Option<Bytes>)> = Vec::new();
    let mut push = |bytes: Bytes| {
        let wait = if out.is_empty() { d.slow } else { d.chunk_gap };
        out.push((wait, Some(bytes)));
    };
    for i in 0..p.choices {
        push(chunk(
            p,
            choice(
                i,
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ),
            None,
        ));
    }
    if d.garbage {
        push(Bytes::from_static(
            b"data: {\"id\": \"chatcmpl-garbage\", this is not JSON\n\n",
        ));
    }
    let pieces = pieces(p);
    let sent = if d.broken || d.reset {
        kept(&pieces)
    } else {
        pieces.len()
    };
    for piece in &pieces[..sent] {
        for i in 0..p.choices {
            push(chunk(p, choice(i, json!({"content": piece}), None), None));
        }
    }
    if d.broken {
        return out;
    }
    if d.reset {
        out.push((d.chunk_gap, None));
        return out;
    }
    for i in 0..p.choices {
        push(chunk(p, choice(i, json!({}), Some(p.finish_reason)), None));
    }
    if p.include_usage {
        push(chunk(p, json!([]), Some(p.usage())));
    }
    push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// The streamed answer.
pub(crate) fn response(p: Planned) -> Response {
    event_body(events(&p))
}

/// The events of a stream as a response body, each flushed as it is produced.
fn event_body(events: Vec<(Duration, Option<Bytes>)>) -> Response {
    let stream = futures_util::stream::iter(events).then(|(wait, bytes)| async move {
        tokio::time::sleep(wait).await;
        bytes.ok_or_else(|| std::io::Error::other("sandbox: connection reset mid-stream"))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai_script::Directives;

    fn planned(answer: &str, directives: Directives) -> Planned {
        Planned {
            id: "chatcmpl-1".into(),
            created: 1,
            model: "m".into(),
            choices: 1,
            answer: answer.into(),
            finish_reason: "stop",
            prompt_tokens: 3,
            completion_tokens: 2,
            include_usage: true,
            directives,
        }
    }

    fn texts(p: &Planned) -> Vec<String> {
        events(p)
            .into_iter()
            .map(|(_, b)| {
                b.map_or("<reset>".into(), |b| {
                    String::from_utf8_lossy(&b).into_owned()
                })
            })
            .collect()
    }

    #[test]
    fn a_stream_is_role_deltas_finish_usage_done() {
        let p = planned(
            "abcdefghij",
            Directives {
                chunk_chars: Some(4),
                ..Directives::default()
            },
        );
        let t = texts(&p);
        assert_eq!(t.len(), 1 + 3 + 1 + 1 + 1, "{t:#?}");
        assert!(t[0].contains(r#""role":"assistant""#));
        assert!(t[1].contains(r#""content":"abcd""#) && t[3].contains(r#""content":"ij""#));
        assert!(t[4].contains(r#""finish_reason":"stop""#));
        assert!(t[5].contains(r#""choices":[]"#) && t[5].contains(r#""total_tokens":5"#));
        assert_eq!(t[6], "data: [DONE]\n\n");
        assert!(t.iter().all(|e| e.ends_with("\n\n")));
    }

    #[test]
    fn broken_and_reset_streams_stop_half_way() {
        let broken = planned(
            "abcdefgh",
            Directives {
                chunk_chars: Some(2),
                broken: true,
                ..Directives::default()
            },
        );
        let t = texts(&broken);
        assert_eq!(t.len(), 1 + 2);
        assert!(
            !t.iter()
                .any(|e| e.contains("[DONE]") || e.contains(r#""finish_reason":"stop""#))
        );
        assert_eq!(sent_before_cut(&broken), "abcd");
        let reset = planned(
            "abcdefgh",
            Directives {
                chunk_chars: Some(2),
                reset: true,
                ..Directives::default()
            },
        );
        assert_eq!(texts(&reset).last().unwrap(), "<reset>");
    }
}
