//! The URLs in MarkdownV2 and Markdown links: read up to the closing `)`, and
//! checked as Telegram checks them (tdlib's `LinkManager`): a text link keeps only
//! a usable URL, a custom emoji or date needs its `tg://` link.

/// Reads a URL from `start` to the closing `)` (with `\` escapes); returns it and
/// the index of the `)`.
pub(super) fn url_until_paren(b: &[u8], start: usize) -> Result<(String, usize), String> {
    let mut url = Vec::new();
    let mut i = start;
    while i < b.len() && b[i] != b')' {
        if b[i] == b'\\' && b.get(i + 1).is_some_and(|n| (1..=126).contains(n)) {
            url.push(b[i + 1]);
            i += 2;
            continue;
        }
        url.push(b[i]);
        i += 1;
    }
    if i >= b.len() {
        return Err(format!("Can't find end of a URL at byte offset {start}"));
    }
    Ok((String::from_utf8_lossy(&url).into_owned(), i))
}

pub(super) enum TgLink {
    Emoji(i64),
    Time(i64, String),
}

/// `tg://emoji?id=N` or `tg://time?unix=N[&format=F]` (scheme and host in any case).
pub(super) fn tg_link(url: &str) -> Option<TgLink> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("tg://")?;
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    let original = &url["tg://".len() + host_end..];
    let query = original.trim_start_matches('/').strip_prefix('?')?;
    let query = query.split('#').next().unwrap_or("");
    let pairs = || {
        query
            .split('&')
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    };
    match host {
        "emoji" => {
            let (_, id) = pairs().find(|(k, _)| *k == "id")?;
            // tdlib refuses leading zeros and 0 itself.
            let n: i64 = id
                .parse()
                .ok()
                .filter(|n| *n != 0 && !id.starts_with('0'))?;
            Some(TgLink::Emoji(n))
        }
        "time" => {
            let (_, unix) = pairs().find(|(k, _)| *k == "unix")?;
            let n: i64 = unix
                .parse()
                .ok()
                .filter(|n| *n > 0 && !unix.starts_with('0'))?;
            let format = pairs()
                .find(|(k, _)| *k == "format")
                .map_or(String::new(), |(_, f)| f.to_owned());
            Some(TgLink::Time(n, format))
        }
        _ => None,
    }
}

/// A link Telegram keeps on a text link: `http://` is assumed when no scheme is
/// given and the host must look like a domain (tdlib's `get_checked_link`; `tg:`
/// links are kept as given).
pub(super) fn checked_link(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    if url.to_ascii_lowercase().starts_with("tg:") {
        return Some(url.to_owned());
    }
    let full = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let parsed = url::Url::parse(&full).ok()?;
    if !matches!(parsed.scheme(), "http" | "https" | "ftp" | "ton") {
        return None;
    }
    let host = parsed.host_str()?;
    let domain_like = host.contains('.') || host == "localhost";
    domain_like.then(|| parsed.to_string())
}
