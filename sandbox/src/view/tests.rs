//! The page as a whole: everything shown is escaped, threads sit under their
//! channel, the model's side shows once asked, embeds look as Discord draws
//! them, the notices say what a form played and what the bot answered, and the
//! page refreshes itself without a reload (the meta refresh only in `<noscript>`).

use super::*;
use crate::{
    DiscordChannelState, DiscordMessage, DiscordThreadState, TelegramChatState, TelegramMessage,
};
use serde_json::json;

#[test]
fn user_text_is_escaped_everywhere() {
    let hostile = "<script>alert(1)</script>\"'&";
    let mut state = SandboxState::default();
    state.discord.channels.push(DiscordChannelState {
        id: 1,
        name: hostile.into(),
        messages: vec![DiscordMessage {
            attachments: Vec::new(),
            id: 2,
            content: hostile.into(),
            embeds: vec![json!({"title": hostile, "description": hostile})],
            components: vec![],
            nonce: None,
            edited: false,
            edits: 0,
            webhook_id: None,
            timestamp: "2026-01-01T10:00:00Z".into(),
            edited_timestamp: None,
            author_id: None,
            author_name: None,
            author_bot: true,
        }],
        typing: 0,
    });
    state.telegram.chats.push(TelegramChatState {
        id: 3,
        name: hostile.into(),
        messages: vec![TelegramMessage {
            document: None,
            photo: None,
            message_id: 4,
            text: hostile.into(),
            source_text: hostile.into(),
            parse_mode: None,
            entities: vec![],
            reply_markup: Some(json!({"inline_keyboard": [[
                {"text": hostile, "callback_data": "a\"><script>x</script>"}
            ]]})),
            edited: false,
            edits: 0,
            date: 0,
        }],
        chat_actions: 0,
    });
    let html = render(
        &state,
        &View {
            approver: Some(3),
            played: Some(hostile.into()),
            ..View::default()
        },
    );
    // The page's own script is the only one.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("\"'&<"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
    assert!(html.contains("value=\"a&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
}

fn message(id: u64, content: &str) -> DiscordMessage {
    DiscordMessage {
        attachments: Vec::new(),
        id,
        content: content.into(),
        embeds: vec![],
        components: vec![],
        nonce: None,
        edited: false,
        edits: 0,
        webhook_id: None,
        timestamp: "2026-01-01T10:00:00Z".into(),
        edited_timestamp: None,
        author_id: None,
        author_name: None,
        author_bot: true,
    }
}

#[test]
fn threads_show_under_their_channel_with_authors_and_edit_counts() {
    let mut state = SandboxState::default();
    let mut question = message(10, "<@7> how are the disks?");
    question.author_id = Some(42);
    question.author_name = Some("ops".into());
    question.author_bot = false;
    state.discord.channels.push(DiscordChannelState {
        id: 1,
        name: "chat".into(),
        messages: vec![question],
        typing: 0,
    });
    let mut answer = message(11, "Disks are at 40%.");
    answer.edited = true;
    answer.edits = 3;
    let mut once = message(12, "ok");
    once.edited = true;
    once.edits = 1;
    state.discord.threads.push(DiscordThreadState {
        id: 10,
        parent_id: 1,
        starter_message_id: 10,
        name: "how are the disks?".into(),
        auto_archive_duration: 1440,
        messages: vec![answer, once, message(13, "untouched")],
        owner_id: 7,
        typing: 2,
    });
    let html = render(&state, &View::default());
    let thread = html.find("id=\"discord-thread-10\"").expect("the thread");
    assert!(html[..thread].contains("<span class=\"author\">ops</span>"));
    let section_end = html[thread..].find("</section>").unwrap() + thread;
    let in_thread = &html[thread..section_end];
    assert!(in_thread.contains("Disks are at 40%."), "{in_thread}");
    assert!(
        in_thread.contains("data-edits=\"3\">(edited 3 times)"),
        "{in_thread}"
    );
    assert!(
        in_thread.contains("data-edits=\"1\">(edited)"),
        "{in_thread}"
    );
    assert_eq!(
        in_thread.matches("class=\"edited\"").count(),
        2,
        "{in_thread}"
    );
}

#[test]
fn the_models_side_shows_only_once_it_was_asked() {
    let mut state = SandboxState::default();
    assert!(!render(&state, &View::default()).contains("id=\"openai\""));
    state.openai.completions.push(crate::OpenaiCompletion {
        seq: 1,
        model: "llama3.2".into(),
        system_first_line: Some("You are <tech-lead>.".into()),
        last_user: Some("how are the disks?".into()),
        answer: Some("Disks at 40%.".into()),
        status: 200,
        stream: true,
        ..crate::OpenaiCompletion::default()
    });
    state.openai.completions.push(crate::OpenaiCompletion {
        seq: 2,
        status: 400,
        error: Some("Missing required parameter: 'model'.".into()),
        ..crate::OpenaiCompletion::default()
    });
    let html = render(&state, &View::default());
    let section = &html[html.find("id=\"openai\"").expect("the section")..];
    assert!(section.contains("llama3.2 · 200 · streamed · persona: You are &lt;tech-lead&gt;."));
    assert!(section.contains("<div class=\"content asked\">how are the disks?</div>"));
    assert!(section.contains("<div class=\"content answer\">Disks at 40%.</div>"));
    assert!(section.contains("Missing required parameter: &#39;model&#39;."));
}

#[test]
fn buttons_carry_the_approver_only_when_known() {
    let mut state = SandboxState::default();
    state.telegram.chats.push(TelegramChatState {
        id: 7,
        name: "operator".into(),
        messages: vec![TelegramMessage {
            document: None,
            photo: None,
            message_id: 9,
            text: "Approve?".into(),
            source_text: "Approve?".into(),
            parse_mode: None,
            entities: vec![],
            reply_markup: Some(json!({"inline_keyboard": [[
                {"text": "Approve", "callback_data": "ok"},
                {"text": "Docs", "url": "https://example.invalid"}
            ]]})),
            edited: false,
            edits: 0,
            date: 0,
        }],
        chat_actions: 0,
    });
    let with = render(&state, &approver(42));
    assert!(with.contains("<input type=\"hidden\" name=\"from\" value=\"42\">"));
    assert!(with.contains("<span class=\"link\">Docs</span>"));
    let without = render(&state, &View::default());
    assert!(!without.contains("<input type=\"hidden\" name=\"from\""));
    assert!(without.contains("/?as=USER_ID"));
}

fn approver(id: i64) -> View {
    View {
        approver: Some(id),
        ..View::default()
    }
}

fn channel_with(messages: Vec<DiscordMessage>) -> SandboxState {
    let mut state = SandboxState::default();
    state.discord.channels.push(DiscordChannelState {
        id: 1002,
        name: "alerts".into(),
        messages,
        typing: 0,
    });
    state
}

#[test]
fn embeds_show_their_colour_author_footer_and_timestamp_escaped() {
    let mut alert = message(20, "");
    alert.embeds = vec![
        json!({
            "title": "Disk critical", "color": 0xE7_4C3C,
            "author": {"name": "<monitor & co>"},
            "footer": {"text": "host <web-1>"},
            "timestamp": "2026-01-02T03:04:05.000Z",
        }),
        json!({"title": "plain", "color": 0x100_0000, "footer": {"text": "no colour"}}),
    ];
    let html = render(&channel_with(vec![alert]), &View::default());
    assert!(
        html.contains(
            "<div class=\"embed\" data-color=\"15158332\" style=\"border-left-color:#e74c3c\">\
             <div class=\"embed-author\">&lt;monitor &amp; co&gt;</div><div class=\"title\">Disk critical</div>"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<div class=\"footer\"><span class=\"footer-text\">host &lt;web-1&gt;</span> • \
             <time datetime=\"2026-01-02T03:04:05.000Z\">2026-01-02 03:04 UTC</time></div>"
        ),
        "{html}"
    );
    // Out of range: drawn with the default (the stylesheet's blurple), not a made-up colour.
    assert!(
        html.contains("<div class=\"embed\"><div class=\"title\">plain</div>"),
        "{html}"
    );
    assert!(html.contains(".embed{border-left:4px solid #5865f2"));
    assert!(!html.contains("<monitor"), "{html}");
}

#[test]
fn the_meta_refresh_is_only_for_pages_without_javascript() {
    let html = render(&SandboxState::default(), &View::default());
    let meta = html.find("http-equiv=\"refresh\"").expect("a meta refresh");
    let open = html[..meta].rfind("<noscript>").expect("inside <noscript>");
    assert!(!html[open..meta].contains("</noscript>"), "{html}");
    assert_eq!(html.matches("http-equiv").count(), 1, "{html}");
    // The script keeps it current instead, and counts its swaps.
    assert!(html.contains("<body data-updates=\"0\">"));
    assert!(html.contains("fetch(location.href"));
    assert!(html.contains("<main id=\"live\">"));
}

#[test]
fn the_forms_are_outside_the_parts_the_script_swaps() {
    let mut state = channel_with(vec![]);
    state.telegram.chats.push(TelegramChatState {
        id: 4242,
        name: "operator".into(),
        messages: vec![],
        chat_actions: 0,
    });
    let html = render(
        &state,
        &View {
            approver: Some(4242),
            discord_as: Some(555),
            ..View::default()
        },
    );
    for (live, form) in [
        (
            "id=\"live-discord-1002\"",
            "action=\"/_sandbox/view/command\"",
        ),
        ("id=\"live-telegram-4242\"", "action=\"/_sandbox/view/say\""),
    ] {
        let start = html.find(live).expect(live);
        let end = start + html[start..].find("</section>").unwrap();
        let section = &html[start..end];
        let form = section.find(form).expect(form);
        // The live part (a div) closes before the form opens.
        assert!(
            section[..form].ends_with("</div><form class=\"act say\" method=\"post\" ")
                || section[..form].ends_with("</div><form class=\"act command\" method=\"post\" "),
            "{section}"
        );
    }
    // The say box plays the page's approver unless another id is typed.
    assert!(html.contains("id=\"say-from-4242\" name=\"from\" value=\"4242\""));
    assert!(html.contains("id=\"command-user-1002\" name=\"user_id\" value=\"555\""));
}

#[test]
fn a_press_notice_waits_for_the_bots_answer_then_shows_it() {
    let mut state = SandboxState::default();
    let view = View {
        pressed: Some("cb<1>".into()),
        ..View::default()
    };
    let waiting = render(&state, &view);
    assert!(
        waiting.contains(
            "callback_query cb&lt;1&gt; is queued for the bot; waiting for the bot's answer…"
        ),
        "{waiting}"
    );
    state.telegram.callback_answers.push(crate::CallbackAnswer {
        callback_query_id: "other".into(),
        text: Some("not this one".into()),
        show_alert: false,
    });
    state.telegram.callback_answers.push(crate::CallbackAnswer {
        callback_query_id: "cb<1>".into(),
        text: Some("Approved <ok> ✓".into()),
        show_alert: true,
    });
    let answered = render(&state, &view);
    assert!(
        answered.contains(
            "the bot answered (as an alert): <q class=\"callback-answer\">Approved &lt;ok&gt; ✓</q>"
        ),
        "{answered}"
    );
    assert!(!answered.contains("waiting for the bot"), "{answered}");
    assert!(!answered.contains("not this one"));
}

#[test]
fn a_slash_commands_notice_shows_the_bots_answer_once_it_arrived() {
    let mut state = SandboxState::default();
    let view = View {
        command: Some(77),
        ..View::default()
    };
    assert!(render(&state, &view).contains("Interaction 77 is not known"));
    state.gateway.interactions.push(crate::InteractionState {
        id: 77,
        command: "status".into(),
        user_id: 555,
        channel_id: 1002,
        responses: vec![],
    });
    let waiting = render(&state, &view);
    assert!(
        waiting.contains("/status by user 555 · interaction 77</div><div class=\"waiting\">waiting for the bot's answer…"),
        "{waiting}"
    );
    state.gateway.interactions[0]
        .responses
        .push(crate::InteractionResponse {
            kind: "callback".into(),
            status: 204,
            after_micros: 10,
            body: json!({"type": 4, "data": {"content": "all <green>", "flags": 64,
                "embeds": [{"title": "Fleet", "color": 0x2E_CC71}]}}),
        });
    let answered = render(&state, &view);
    assert!(
        answered.contains("<div class=\"content\">all &lt;green&gt;</div>"),
        "{answered}"
    );
    assert!(answered.contains("border-left-color:#2ecc71\"><div class=\"title\">Fleet</div>"));
    assert!(answered.contains("(ephemeral)"));
    assert!(!answered.contains("waiting for the bot"));
}
