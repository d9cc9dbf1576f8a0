//! The neutral reply every command produces, and the pure string work of
//! rendering it as plain text or Telegram HTML. Discord embeds are built in
//! the Discord adapter from the same fields.

use serde::Serialize;
use switchyard_routing::Severity;

/// Telegram's message limit. Counted here in UTF-16 code units over the HTML
/// source, which is never less than what Telegram counts (characters of the
/// parsed text), so a rendered message always fits.
pub const TELEGRAM_MAX_CHARS: usize = 4096;
/// Telegram's `callback_data` limit; Discord's `custom_id` (100) is larger.
pub const BUTTON_TOKEN_MAX_BYTES: usize = 64;

/// The colour hint for a reply; adapters map it to an embed colour or an emoji.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    #[default]
    Info,
    Success,
    Warning,
    Critical,
}

impl Tone {
    /// An RGB colour for Discord embeds.
    pub fn colour(self) -> u32 {
        match self {
            Tone::Info => 0x5865F2,
            Tone::Success => 0x57F287,
            Tone::Warning => 0xFEE75C,
            Tone::Critical => 0xED4245,
        }
    }
}

impl From<Severity> for Tone {
    fn from(s: Severity) -> Tone {
        match s {
            Severity::Info => Tone::Info,
            Severity::Warning => Tone::Warning,
            Severity::Critical => Tone::Critical,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

/// An opaque token a button carries back (Telegram `callback_data`,
/// Discord `custom_id`). The runtime mints it (unguessable); it must fit
/// both platforms.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ButtonToken(String);

impl ButtonToken {
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.is_empty() || token.len() > BUTTON_TOKEN_MAX_BYTES {
            return Err(format!(
                "a button token is 1 to {BUTTON_TOKEN_MAX_BYTES} bytes, not {}",
                token.len()
            ));
        }
        Ok(ButtonToken(token))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The token decides an approval; keep it out of logs.
impl std::fmt::Debug for ButtonToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ButtonToken(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonAction {
    Approve,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    pub label: String,
    pub action: ButtonAction,
    pub token: ButtonToken,
}

/// What a command answers, before any platform shapes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Reply {
    pub title: String,
    pub lines: Vec<String>,
    pub fields: Vec<Field>,
    pub tone: Tone,
    /// Shown only to the caller where the platform can (Discord).
    pub ephemeral: bool,
    /// Rows of buttons; each row belongs together (Approve and Deny of one request).
    pub buttons: Vec<Vec<Button>>,
}

impl Reply {
    pub fn new(title: impl Into<String>) -> Self {
        Reply {
            title: title.into(),
            ..Default::default()
        }
    }
    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }
    pub fn lines(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.lines.extend(lines);
        self
    }
    pub fn field(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        inline: bool,
    ) -> Self {
        self.fields.push(Field {
            name: name.into(),
            value: value.into(),
            inline,
        });
        self
    }
    pub fn tone(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// Title, lines, then `name: value` fields, one per line. Buttons are
    /// not text; adapters render them.
    pub fn to_plain_text(&self) -> String {
        let mut out = self.title.clone();
        let body: Vec<String> = self
            .body_pieces()
            .map(|(name, value)| match name {
                Some(n) => format!("{n}: {value}"),
                None => value.to_string(),
            })
            .collect();
        if !body.is_empty() {
            out.push_str("\n\n");
            out.push_str(&body.join("\n"));
        }
        out
    }

    /// Telegram HTML (`parse_mode=HTML`): the title bold, field names bold,
    /// every text escaped, at most [`TELEGRAM_MAX_CHARS`]; what does not fit
    /// is cut at a line and a note says how much was left out.
    pub fn to_telegram_html(&self) -> String {
        self.to_telegram_html_within(TELEGRAM_MAX_CHARS)
    }

    fn body_pieces(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.lines.iter().map(|l| (None, l.as_str())).chain(
            self.fields
                .iter()
                .map(|f| (Some(f.name.as_str()), f.value.as_str())),
        )
    }

    pub(crate) fn to_telegram_html_within(&self, max: usize) -> String {
        let pieces: Vec<String> = std::iter::once(format!("<b>{}</b>", escape_html(&self.title)))
            .chain(self.body_pieces().map(|(name, value)| match name {
                Some(n) => format!("<b>{}</b>: {}", escape_html(n), escape_html(value)),
                None => escape_html(value),
            }))
            .collect();
        let total = pieces.len();
        let mut out = String::new();
        let mut used = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let sep = usize::from(i > 0);
            let len = utf16_len(piece);
            let is_last = i + 1 == total;
            // Room for this piece, and for the note if anything follows it.
            let note_room = if is_last {
                0
            } else {
                note(total - i - 1).encode_utf16().count() + 1
            };
            if used + sep + len + note_room <= max {
                if sep == 1 {
                    out.push('\n');
                }
                out.push_str(piece);
                used += sep + len;
                continue;
            }
            // Does not fit: cut here. A piece is HTML, so never split one;
            // a first piece too long even alone (a huge title) is re-cut as text.
            if i == 0 {
                let title = cut_chars(&self.title, max.saturating_sub(note(total).len() + 8) / 6);
                out = format!("<b>{}</b>", escape_html(&title));
                out.push('\n');
                out.push_str(&note(total - 1));
                return out;
            }
            out.push('\n');
            out.push_str(&note(total - i));
            return out;
        }
        out
    }
}

fn note(omitted: usize) -> String {
    format!(
        "… ({omitted} more {} not shown: message too long)",
        if omitted == 1 { "line" } else { "lines" }
    )
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn cut_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Escapes the characters Telegram's HTML mode requires (`<`, `>`, `&`) and
/// `"` so text is safe inside attribute values too.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_telegram_html_needs() {
        assert_eq!(
            escape_html(r#"<b>a & "b"</b>"#),
            "&lt;b&gt;a &amp; &quot;b&quot;&lt;/b&gt;"
        );
        let r = Reply::new("1 < 2")
            .line("x & y")
            .field("k>", "\"v\"", false);
        assert_eq!(
            r.to_telegram_html(),
            "<b>1 &lt; 2</b>\nx &amp; y\n<b>k&gt;</b>: &quot;v&quot;"
        );
    }

    #[test]
    fn plain_text_has_title_lines_and_fields() {
        let r = Reply::new("Muted")
            .line("until 14:00")
            .field("id", "mute_1", true);
        assert_eq!(r.to_plain_text(), "Muted\n\nuntil 14:00\nid: mute_1");
        assert_eq!(Reply::new("Alone").to_plain_text(), "Alone");
    }

    #[test]
    fn long_replies_are_cut_at_a_line_with_a_note() {
        let r = Reply::new("Mutes").lines((0..2_000).map(|i| format!("mute_{i} & <more>")));
        let html = r.to_telegram_html();
        assert!(html.encode_utf16().count() <= TELEGRAM_MAX_CHARS);
        assert!(
            html.ends_with("not shown: message too long)"),
            "{}",
            &html[html.len() - 80..]
        );
        // Cut at a line boundary: no half escape, no half tag.
        let before_note = html.rsplit_once('\n').unwrap().0;
        assert!(before_note.ends_with("&lt;more&gt;"));
        let kept = html.lines().count() - 2; // title and note
        let omitted: usize = html
            .rsplit_once("… (")
            .unwrap()
            .1
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(kept + omitted, 2_000);
    }

    #[test]
    fn counts_utf16_so_emoji_never_overflow() {
        let r = Reply::new("x").lines((0..3_000).map(|_| "🚨".to_string()));
        let html = r.to_telegram_html();
        assert!(html.encode_utf16().count() <= TELEGRAM_MAX_CHARS);
        assert!(html.chars().count() < TELEGRAM_MAX_CHARS);
    }

    #[test]
    fn a_huge_title_alone_is_cut_too() {
        let r = Reply::new("&".repeat(10_000)).line("x");
        let html = r.to_telegram_html();
        assert!(
            html.encode_utf16().count() <= TELEGRAM_MAX_CHARS,
            "{}",
            html.len()
        );
        assert!(html.starts_with("<b>&amp;") && html.contains("</b>\n…"));
    }

    #[test]
    fn a_message_that_fits_is_not_cut() {
        let r = Reply::new("t").lines((0..10).map(|i| i.to_string()));
        assert!(!r.to_telegram_html_within(100).contains("not shown"));
        assert!(r.to_telegram_html_within(30).contains("not shown"));
    }

    #[test]
    fn button_tokens_fit_callback_data() {
        assert!(ButtonToken::new("x".repeat(64)).is_ok());
        assert!(ButtonToken::new("x".repeat(65)).is_err());
        assert!(ButtonToken::new("").is_err());
        assert_eq!(
            format!("{:?}", ButtonToken::new("secret").unwrap()),
            "ButtonToken(..)"
        );
    }
}
