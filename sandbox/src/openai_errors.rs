//! OpenAI's error answers as the stand-in sends them: the `{"error": {message,
//! type, param, code}}` body, the 400 of a refused body, the 429 of a rate
//! limit (with `retry-after`) or of an exhausted quota, the 401 of a missing or
//! wrong API key (the key masked, never shown whole), the 404 of an unknown
//! model, and the answers of the `status` directive and of injected faults.

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::Reply;
use super::openai_check::Invalid;
use super::openai_script::Directives;

/// OpenAI's error body.
pub(crate) fn error_json(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

pub(crate) fn refused(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Reply {
    Reply::refused(status, error_json(message, kind, None, code), message)
}

pub(crate) fn invalid(e: &Invalid) -> Reply {
    Reply::refused(
        StatusCode::BAD_REQUEST,
        error_json(
            &e.message,
            "invalid_request_error",
            e.param.as_deref(),
            e.code,
        ),
        e.message.clone(),
    )
}

/// A 429 as OpenAI sends it when a limit is reached: `retry-after` in seconds.
pub(crate) fn rate_limited(model: &str, retry_after: u64) -> Reply {
    let message = format!(
        "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after}s."
    );
    refused(
        StatusCode::TOO_MANY_REQUESTS,
        &message,
        "requests",
        Some("rate_limit_exceeded"),
    )
    .header("retry-after", retry_after)
    .header("x-ratelimit-limit-requests", 3)
    .header("x-ratelimit-remaining-requests", 0)
    .header("x-ratelimit-reset-requests", format!("{retry_after}s"))
}

/// The answer to a status directive or an injected server error.
pub(crate) fn status_reply(status: u16, model: &str, d: &Directives) -> Reply {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        429 if d.quota => refused(
            code,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
        429 => rate_limited(model, d.retry_after.unwrap_or(1)),
        401 => refused(
            code,
            "Incorrect API key provided: sk-sandb********************rect. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        404 => model_not_found(model),
        500 => refused(
            code,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        503 => refused(
            code,
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
        ),
        s => {
            let reason = code.canonical_reason().unwrap_or("Error");
            let kind = if s >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            };
            refused(code, &format!("{s} {reason}"), kind, None)
        }
    }
}

pub(crate) fn model_not_found(model: &str) -> Reply {
    refused(
        StatusCode::NOT_FOUND,
        &format!("The model `{model}` does not exist or you do not have access to it."),
        "invalid_request_error",
        Some("model_not_found"),
    )
}

/// The error body of an injected fault (see [`serve_fault`]).
pub(crate) fn fault_body(status: u16, reason: &str, _retry_after: Option<f64>) -> Value {
    let kind = if status >= 500 {
        "server_error"
    } else {
        "invalid_request_error"
    };
    error_json(&format!("{status} {reason}"), kind, None, None)
}

/// A key as the real API shows it in a refusal: never whole.
pub(crate) fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 20 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// 401 unless the request carries one of the configured keys (none configured:
/// no key needed, as a local Ollama or llama.cpp server).
pub(crate) fn authenticate(keys: &[String], headers: &HeaderMap) -> Result<(), Reply> {
    if keys.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|k| !k.is_empty());
    match given {
        Some(key) if keys.iter().any(|k| k == key) => Ok(()),
        Some(key) => Err(refused(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                masked(key)
            ),
            "invalid_request_error",
            Some("invalid_api_key"),
        )),
        None => Err(refused(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_are_never_shown_whole() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123";
        let shown = masked(key);
        assert_eq!(shown.len(), key.len());
        assert!(shown.starts_with("sk-") && shown.ends_with("0123"));
        assert!(!shown.contains("abcdefgh"));
        assert_eq!(masked("short"), "*****");
    }

    #[test]
    fn the_configured_keys_are_required_only_when_there_are_some() {
        assert!(authenticate(&[], &HeaderMap::new()).is_ok());
        let keys = ["sk-right".to_owned()];
        let mut headers = HeaderMap::new();
        assert_eq!(
            authenticate(&keys, &headers).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-wrong"),
        );
        let wrong = authenticate(&keys, &headers).unwrap_err();
        assert_eq!(wrong.body.unwrap()["error"]["code"], "invalid_api_key");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-right"),
        );
        assert!(authenticate(&keys, &headers).is_ok());
    }
}
