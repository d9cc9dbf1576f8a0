//! What both platforms' HTTP clients share: a transport error (reqwest, under
//! serenity and teloxide alike) said as one sentence, without the URL (which
//! can carry a bot token in Telegram's case).

/// A transport error as a sentence, without the URL.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "the request failed"
    };
    let mut out = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Download `url` with `client`, refusing more than `max_bytes` (counted as
/// the body arrives, whatever the headers claim) and any redirect (the
/// caller checked the host; a redirect could lead anywhere).
pub async fn fetch_bounded(
    client: &reqwest::Client,
    url: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the file host answered HTTP {}", status.as_u16()));
    }
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(format!("the file is larger than {max_bytes} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest(&e))? {
        if out.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(format!("the file is larger than {max_bytes} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A client for downloads: no redirects, bounded connect time.
pub fn download_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}
