//! Rendering that fits each platform, without platform types: Discord's
//! embed limits and colours by severity, Telegram's HTML escaping and its
//! split at 4096 characters, and the text of a coalesced summary.

use std::collections::BTreeMap;
use switchyard_commands::reply::escape_html;

use switchyard_routing::Severity;

use crate::store::DeliveryRow;

/// Discord: message content, embed title, description, footer, and all embeds together.
pub const DISCORD_CONTENT_MAX: usize = 2000;
pub const DISCORD_TITLE_MAX: usize = 256;
pub const DISCORD_DESCRIPTION_MAX: usize = 4096;
pub const DISCORD_FOOTER_MAX: usize = 2048;
pub const DISCORD_EMBED_TOTAL_MAX: usize = 6000;
/// Telegram: text of one message, counted after entities are parsed.
pub const TELEGRAM_TEXT_MAX: usize = 4096;
/// The longest footer a Telegram part carries (ours, not Telegram's).
const TELEGRAM_FOOTER_MAX: usize = 512;

/// The embed colour for a severity (blue, amber, red).
pub fn severity_colour(severity: Severity) -> u32 {
    match severity {
        Severity::Info => 0x3498DB,
        Severity::Warning => 0xF1A40F,
        Severity::Critical => 0xE74C3C,
    }
}

fn severity_mark(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "",
        Severity::Warning => "⚠️ ",
        Severity::Critical => "🚨 ",
    }
}

/// Cut `text` to at most `max` characters, ending with a visible note when cut.
pub fn truncate(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    let note = format!("… (truncated: {} more characters)", total - max);
    let keep = max.saturating_sub(note.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&note);
    out
}

/// The pieces of a Discord embed, within Discord's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedText {
    pub title: String,
    pub description: String,
    pub footer: String,
    pub colour: u32,
}

/// Title, body and footer fitted to one embed (and to the 6000-character total).
pub fn discord_embed(severity: Severity, title: &str, body: &str, footer: &str) -> EmbedText {
    let title = truncate(
        &format!("{}{title}", severity_mark(severity)),
        DISCORD_TITLE_MAX,
    );
    let footer = truncate(footer, DISCORD_FOOTER_MAX.min(256));
    let room = DISCORD_EMBED_TOTAL_MAX - title.chars().count() - footer.chars().count();
    let description = truncate(body, DISCORD_DESCRIPTION_MAX.min(room));
    EmbedText {
        title,
        description,
        footer,
        colour: severity_colour(severity),
    }
}

/// Length as Telegram counts it (UTF-16 code units, which is never less than characters).
fn tg_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A message as Telegram HTML parts, each at most 4096 characters after
/// entity parsing. Only the first part carries the bold title and only the
/// last the italic footer; the body is split at line breaks where it can, and
/// never inside an escape or a tag (each chunk is escaped on its own).
pub fn telegram_parts(severity: Severity, title: &str, body: &str, footer: &str) -> Vec<String> {
    let title = format!("{}{}", severity_mark(severity), title.trim());
    // The footer is made of what the producer sent (category, source):
    // bounded, so the last part always has room for it.
    let footer = truncate(footer.trim(), TELEGRAM_FOOTER_MAX);
    let footer = footer.as_str();
    // Visible lengths: tags vanish, entities count as one character.
    let head_len = tg_len(&title) + if body.is_empty() { 0 } else { 1 };
    let foot_len = if footer.is_empty() {
        0
    } else {
        tg_len(footer) + 1
    };
    let mut chunks: Vec<&str> = Vec::new();
    let mut rest = body;
    let mut budget = TELEGRAM_TEXT_MAX.saturating_sub(head_len);
    loop {
        // The last chunk must also leave room for the footer.
        if rest.is_empty() || tg_len(rest) + foot_len <= budget {
            chunks.push(rest);
            break;
        }
        let cut = split_point(rest, budget);
        let (a, b) = rest.split_at(cut);
        chunks.push(a);
        rest = b.strip_prefix('\n').unwrap_or(b);
        budget = TELEGRAM_TEXT_MAX;
    }
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut part = String::new();
            if i == 0 {
                part.push_str("<b>");
                part.push_str(&escape_html(&title));
                part.push_str("</b>");
                if !chunk.is_empty() {
                    part.push('\n');
                }
            }
            part.push_str(&escape_html(chunk));
            if i + 1 == n && !footer.is_empty() {
                if !part.is_empty() {
                    part.push('\n');
                }
                part.push_str("<i>");
                part.push_str(&escape_html(footer));
                part.push_str("</i>");
            }
            part
        })
        .collect()
}

/// A byte index to cut `text` at so the first part is at most `max` UTF-16
/// units: the last line break in the second half if any, else a char boundary.
fn split_point(text: &str, max: usize) -> usize {
    let mut units = 0;
    let mut hard = 0;
    let mut newline = None;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            break;
        }
        hard = i + c.len_utf8();
        if c == '\n' && units > max / 2 {
            newline = Some(i);
        }
    }
    newline
        .unwrap_or(hard)
        .max(text.chars().next().map_or(0, char::len_utf8))
}

/// The messages standing for a run of coalesced ones, each with how many
/// rows (in order) it stands for: counts per event type and every title,
/// in as many pages as the titles need.
pub fn coalesced_summaries(rows: &[DeliveryRow]) -> Vec<(usize, String, String, Severity)> {
    let titles: Vec<&str> = rows.iter().map(|r| r.title.as_str()).collect();
    let pages = switchyard_routing::title_pages(&titles, switchyard_routing::TITLES_PAGE_CHARS);
    let n = pages.len();
    let mut start = 0;
    let mut out = Vec::with_capacity(n);
    for (i, page) in pages.into_iter().enumerate() {
        let chunk = &rows[start..start + page.len()];
        start += page.len();
        let (mut title, counts, severity) = coalesced_summary(chunk);
        if n > 1 {
            title.push_str(&format!(" ({}/{n})", i + 1));
        }
        let body = format!("{counts}\nTitles:\n{}", page.join("\n"));
        out.push((chunk.len(), title, body, severity));
    }
    out
}

/// Title, per-type counts and severity of one coalesced message.
fn coalesced_summary(rows: &[DeliveryRow]) -> (String, String, Severity) {
    let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *per_type.entry(r.event_type.as_str()).or_default() += 1;
    }
    let severity = rows.iter().map(|r| r.severity).max().unwrap_or_default();
    let title = format!(
        "{} messages, coalesced while this channel was backed up",
        rows.len()
    );
    let mut body = String::from("By type:\n");
    for (t, n) in &per_type {
        body.push_str(&format!("  {} × {n}\n", truncate(t, 100)));
    }
    (title, body.trim_end().to_string(), severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_footer_ends_and_every_part_fits() {
        // Found by the inbox_item fuzz target: a footer over the limit looped forever.
        let footer = "x".repeat(10_000);
        let parts = telegram_parts(Severity::Info, "t", "body", &footer);
        assert!(!parts.is_empty());
        for p in &parts {
            assert!(p.chars().count() <= TELEGRAM_TEXT_MAX + 20, "{}", p.len());
        }
        let parts = telegram_parts(Severity::Info, "t", "", &footer);
        assert_eq!(parts.len(), 1);
    }

    /// What Telegram counts: the text with tags removed and entities decoded.
    fn visible(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    }

    #[test]
    fn escaping_covers_the_four_entities() {
        assert_eq!(
            escape_html(r#"<b>"a" & b</b>"#),
            "&lt;b&gt;&quot;a&quot; &amp; b&lt;/b&gt;"
        );
    }

    #[test]
    fn long_text_splits_within_the_limit_and_loses_nothing() {
        let body: String = (0..3000).map(|i| format!("line {i} <&>\n")).collect();
        let parts = telegram_parts(Severity::Warning, "T <x>", &body, "src · type");
        assert!(parts.len() >= 3, "{}", parts.len());
        for p in &parts {
            assert!(
                tg_len(&visible(p)) <= TELEGRAM_TEXT_MAX,
                "{}",
                tg_len(&visible(p))
            );
        }
        let joined: String = parts
            .iter()
            .map(|p| visible(p))
            .collect::<Vec<_>>()
            .join("\n");
        for i in [0, 1500, 2999] {
            assert!(joined.contains(&format!("line {i} <&>")), "line {i} lost");
        }
        assert!(parts[0].starts_with("<b>⚠️ T &lt;x&gt;</b>"));
        assert!(parts.last().unwrap().ends_with("<i>src · type</i>"));
    }

    #[test]
    fn a_body_without_newlines_or_with_wide_chars_still_fits() {
        let body = "😀".repeat(5000);
        for p in telegram_parts(Severity::Info, "t", &body, "") {
            assert!(tg_len(&visible(&p)) <= TELEGRAM_TEXT_MAX);
        }
    }

    #[test]
    fn embed_fits_discord_limits() {
        let e = discord_embed(
            Severity::Critical,
            &"t".repeat(300),
            &"b".repeat(9000),
            &"f".repeat(3000),
        );
        assert!(e.title.chars().count() <= DISCORD_TITLE_MAX);
        assert!(e.description.chars().count() <= DISCORD_DESCRIPTION_MAX);
        let total =
            e.title.chars().count() + e.description.chars().count() + e.footer.chars().count();
        assert!(total <= DISCORD_EMBED_TOTAL_MAX);
        assert_eq!(e.colour, 0xE74C3C);
        assert!(e.description.ends_with("characters)"));
    }
}
