//! The sandbox's web view, loaded in headless Chromium: the channels, the
//! messages and the Telegram buttons are in the DOM, and the button's form plays
//! the approver pressing it (the bot then sees the callback query, and the page
//! its answer). The page refreshes itself without a reload, embeds show their
//! colour and footer, the say-form plays a Telegram user writing to the bot and
//! the command form a Discord user running a slash command (the page then shows
//! the bot's answer) or posting a message.
//!
//! Needs Debian's `chromium`; without it the test prints `SKIPPED: chromium not
//! found` and passes, unless `SWITCHYARD_REQUIRE_CHROMIUM=1`, where it fails.
//! With `SWITCHYARD_WEBVIEW_SCREENSHOT=FILE.png` it also saves a screenshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sandbox::{self as sandbox, SandboxHandle, SandboxOptions};

const BRIEFINGS: u64 = 1001;
const ALERTS: u64 = 1002;
const CHAT: u64 = 1006;
const OPERATOR: i64 = 4242;
const DISCORD_TOKEN: &str = "MTAxMjM0.fake.token";
const TELEGRAM_TOKEN: &str = "100000001:AAwebview-test-token-0000000000000";

/// The Chromium binary, or `None` after saying loudly why the test cannot run.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        let required = std::env::var("SWITCHYARD_REQUIRE_CHROMIUM").as_deref() == Ok("1");
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED: chromium not found on PATH (apt-get install -y chromium)\n\
             ********************************************************************\n"
        );
        assert!(
            !required,
            "SWITCHYARD_REQUIRE_CHROMIUM=1 but chromium is not installed"
        );
    }
    found
}

/// Runs headless Chromium with `mode` (`--dump-dom` or `--screenshot=FILE`) on `url`.
async fn headless(chromium: &Path, profile: &Path, mode: &str, url: &str) -> String {
    headless_with(chromium, profile, &[mode], url).await
}

/// Runs headless Chromium with `args` (a mode and its options) on `url`.
async fn headless_with(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mode = args.join(" ");
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chromium did not finish within 60 s")
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium {mode} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// The page at `path` of the sandbox, as Chromium leaves its DOM once loaded.
async fn page_dom(chromium: &Path, sb: &SandboxHandle, path: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://{}{path}", sb.addr());
    headless(chromium, profile.path(), "--dump-dom", &url).await
}

/// The sandbox knows the tokens these tests call with.
fn known_tokens() -> SandboxOptions {
    SandboxOptions {
        discord_tokens: vec![DISCORD_TOKEN.into()],
        telegram_tokens: vec![TELEGRAM_TOKEN.into()],
        ..SandboxOptions::default()
    }
}

async fn sandbox_with_approver() -> SandboxHandle {
    sandbox::start(SandboxOptions {
        telegram_approver: Some(OPERATOR),
        ..known_tokens()
    })
    .await
    .expect("sandbox starts")
}

/// A Discord REST call as the bot; returns the JSON answer (or null for 204).
async fn discord(sb: &SandboxHandle, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.discord_api_base()))
        .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
        .json(&body)
        .send()
        .await
        .expect("discord call");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn post_discord(sb: &SandboxHandle, channel: u64, body: Value) -> Value {
    discord(
        sb,
        reqwest::Method::POST,
        &format!("/channels/{channel}/messages"),
        body,
    )
    .await
}

async fn telegram(sb: &SandboxHandle, method: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!(
            "{}/bot{TELEGRAM_TOKEN}/{method}",
            sb.telegram_api_base()
        ))
        .json(&body)
        .send()
        .await
        .expect("telegram call");
    let v: Value = r.json().await.expect("telegram answers JSON");
    assert_eq!(v["ok"], true, "{method}: {v}");
    v["result"].clone()
}

/// The HTML form around the button labelled `label`: its action and fields.
fn form_with_button(dom: &str, label: &str) -> Option<(String, Vec<(String, String)>)> {
    let button = dom.find(&format!(">{label}</button>"))?;
    let start = dom[..button].rfind("<form")?;
    let end = start + dom[start..].find("</form>")?;
    let form = &dom[start..end];
    let open_tag = &form[..form.find('>')?];
    let action = attr(open_tag, "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = i + rest[i..].find('>')?;
        let tag = &rest[i..tag_end];
        if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((name, value));
        }
        rest = &rest[tag_end..];
    }
    Some((action, fields))
}

/// An attribute's value in a serialized tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(
        tag[start..start + len]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_conversations_and_its_button_presses_as_the_approver() {
    let Some(chromium) = chromium() else { return };
    let sb = sandbox_with_approver().await;

    post_discord(
        &sb,
        BRIEFINGS,
        json!({"embeds": [{"title": "Morning briefing", "description": "3 tasks done overnight."}]}),
    )
    .await;
    // Untrusted text: it must show as text, never become markup.
    post_discord(
        &sb,
        ALERTS,
        json!({"content": "Disk 85% on <b id=\"injected\">web-1</b>"}),
    )
    .await;
    let sent = telegram(
        &sb,
        "sendMessage",
        json!({
            "chat_id": OPERATOR,
            "text": "Approve deploy of web-1?",
            "reply_markup": {"inline_keyboard": [[
                {"text": "Approve", "callback_data": "appr:7:yes"},
                {"text": "Deny", "callback_data": "appr:7:no"},
            ]]},
        }),
    )
    .await;
    let message_id = sent["message_id"].as_i64().expect("message_id");
    // A conversation: a thread on a message in #chat, its answer streamed by edits.
    let question = post_discord(&sb, CHAT, json!({"content": "How are the disks?"})).await;
    let question = question["id"].as_str().unwrap().to_owned();
    let thread = discord(
        &sb,
        reqwest::Method::POST,
        &format!("/channels/{CHAT}/messages/{question}/threads"),
        json!({"name": "disks"}),
    )
    .await;
    let thread = thread["id"].as_str().unwrap().to_owned();
    let answer = post_discord(&sb, thread.parse().unwrap(), json!({"content": "Disks"})).await;
    let answer = answer["id"].as_str().unwrap().to_owned();
    for grown in ["Disks are", "Disks are at", "Disks are at 40%."] {
        discord(
            &sb,
            reqwest::Method::PATCH,
            &format!("/channels/{thread}/messages/{answer}"),
            json!({"content": grown}),
        )
        .await;
    }

    // The model was asked for that answer: its side shows too.
    let asked = reqwest::Client::new()
        .post(format!("{}/chat/completions", sb.openai_base_url()))
        .json(&json!({"model": "llama3.2", "messages": [
            {"role": "system", "content": "You are tech-lead."},
            {"role": "user", "content": "How are the disks?"}]}))
        .send()
        .await
        .expect("completion");
    assert_eq!(asked.status(), 200);

    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://{}/", sb.addr());
    let dom = headless(&chromium, profile.path(), "--dump-dom", &url).await;

    for expected in [
        "Discord #briefings",
        "Discord #alerts",
        "Discord #system",
        "Telegram operator",
        "Morning briefing",
        "3 tasks done overnight.",
        "Approve deploy of web-1?",
        ">Approve</button>",
        ">Deny</button>",
        "Disk 85% on &lt;b id=\"injected\"&gt;web-1&lt;/b&gt;",
        "Thread disks",
        "Disks are at 40%.",
        "(edited 3 times)",
        "llama3.2 · 200 · whole · persona: You are tech-lead.",
        "persona: You are tech-lead. · turns: 1 · you said: How are the disks?",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} not in the DOM:\n{dom}"
        );
    }
    assert!(
        !dom.contains("<b id=\"injected\">"),
        "user text became markup:\n{dom}"
    );
    // The bots' tokens are secrets: the page never shows one (nor its secret part).
    for secret in [
        DISCORD_TOKEN,
        TELEGRAM_TOKEN,
        TELEGRAM_TOKEN.split(':').nth(1).unwrap(),
    ] {
        assert!(!dom.contains(secret), "a token is on the page:\n{dom}");
    }

    if let Some(shot) = std::env::var_os("SWITCHYARD_WEBVIEW_SCREENSHOT") {
        let shot = PathBuf::from(shot);
        let mode = format!("--screenshot={}", shot.display());
        headless(&chromium, profile.path(), &mode, &url).await;
        assert!(shot.is_file(), "no screenshot at {}", shot.display());
    }

    // Submit the Approve button's form as the browser would (a plain form POST).
    let (action, fields) =
        form_with_button(&dom, "Approve").expect("the Approve form is in the DOM");
    assert_eq!(action, switchyard_sandbox::view::PRESS_PATH);
    assert!(
        fields.contains(&("callback_data".into(), "appr:7:yes".into())),
        "{fields:?}"
    );
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    assert_eq!(sb.state().telegram.pending_updates, 0);
    let pressed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{}{action}", sb.addr()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("form post");
    assert_eq!(pressed.status(), 303);
    let location = pressed.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("pressed="), "{location}");

    // The bot sees the approver's callback query for that button of that message.
    assert_eq!(sb.state().telegram.pending_updates, 1);
    let updates = telegram(&sb, "getUpdates", json!({"timeout": 0})).await;
    let query = &updates[0]["callback_query"];
    assert_eq!(query["data"], "appr:7:yes", "{updates}");
    assert_eq!(query["from"]["id"], OPERATOR);
    assert_eq!(query["message"]["message_id"], message_id);

    // The page the browser lands on confirms the press.
    let landed = page_dom(&chromium, &sb, &location).await;
    assert!(landed.contains("is queued for the bot"), "{landed}");
    assert!(landed.contains("waiting for the bot's answer…"), "{landed}");

    // The bot answers the callback query: the page shows what it answered.
    let query_id = query["id"].as_str().expect("callback_query id");
    assert!(
        location.contains(&format!("pressed={query_id}")),
        "{location}"
    );
    telegram(
        &sb,
        "answerCallbackQuery",
        json!({"callback_query_id": query_id, "text": "Approved ✓"}),
    )
    .await;
    let answered = page_dom(&chromium, &sb, &location).await;
    assert!(
        answered.contains("the bot answered: <q class=\"callback-answer\">Approved ✓</q>"),
        "{answered}"
    );
    assert!(
        !answered.contains("waiting for the bot's answer"),
        "{answered}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_press_of_a_button_the_message_does_not_have_is_refused_with_a_reason() {
    let sb = sandbox::start(known_tokens())
        .await
        .expect("sandbox starts");
    let sent = telegram(
        &sb,
        "sendMessage",
        json!({
            "chat_id": OPERATOR, "text": "Approve?",
            "reply_markup": {"inline_keyboard": [[{"text": "Approve", "callback_data": "ok"}]]},
        }),
    )
    .await;
    let id = sent["message_id"].as_i64().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let press = |body: String| {
        client
            .post(format!(
                "http://{}{}",
                sb.addr(),
                switchyard_sandbox::view::PRESS_PATH
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };

    // No approver configured and none in the form.
    let r = press(format!(
        "chat_id={OPERATOR}&message_id={id}&callback_data=ok"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("/?as=USER_ID"));

    let r = press(format!(
        "chat_id={OPERATOR}&message_id={id}&callback_data=forged&from={OPERATOR}"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("has no inline button"));
    assert_eq!(sb.state().telegram.pending_updates, 0);

    let r = press(format!(
        "chat_id={OPERATOR}&message_id={id}&callback_data=ok&from={OPERATOR}"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(sb.state().telegram.pending_updates, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_telegram_answer_streamed_by_edits_is_counted_and_marked_on_the_page() {
    let sb = sandbox::start(known_tokens())
        .await
        .expect("sandbox starts");
    telegram(
        &sb,
        "sendChatAction",
        json!({"chat_id": OPERATOR, "action": "typing"}),
    )
    .await;
    let sent = telegram(
        &sb,
        "sendMessage",
        json!({"chat_id": OPERATOR, "text": "Disks"}),
    )
    .await;
    let id = sent["message_id"].as_i64().unwrap();
    for text in ["Disks are", "Disks are at 40%."] {
        telegram(
            &sb,
            "editMessageText",
            json!({"chat_id": OPERATOR, "message_id": id, "text": text}),
        )
        .await;
    }
    let state = sb.state();
    let chat = &state.telegram.chats[0];
    assert_eq!(chat.chat_actions, 1);
    assert_eq!(
        (chat.messages[0].text.as_str(), chat.messages[0].edits),
        ("Disks are at 40%.", 2)
    );
    let page = reqwest::get(format!("http://{}/", sb.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("(edited 2 times)"), "{page}");
    sb.shutdown().await;
}

#[tokio::test]
async fn files_show_on_the_page_images_inline_and_others_as_links() {
    use crate::uploads::{PNG, multipart};
    let Some(chromium) = chromium() else { return };
    let sb = sandbox_with_approver().await;
    let payload =
        json!({"embeds": [{"title": "Disk chart", "image": {"url": "attachment://disk.png"}}]})
            .to_string();
    let (content_type, body) = multipart(&[
        ("payload_json", None, "application/json", payload.as_bytes()),
        ("files[0]", Some("disk.png"), "image/png", PNG),
        ("files[1]", Some("weekly.md"), "text/markdown", b"# Weekly"),
    ]);
    let posted: Value = reqwest::Client::new()
        .post(format!(
            "{}/channels/{ALERTS}/messages",
            sb.discord_api_base()
        ))
        .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat = OPERATOR.to_string();
    let (content_type, body) = multipart(&[
        ("chat_id", None, "text/plain", chat.as_bytes()),
        ("caption", None, "text/plain", b"the run log"),
        ("document", Some("run.log"), "text/plain", b"ok\n"),
    ]);
    let sent: Value = reqwest::Client::new()
        .post(format!(
            "{}/bot{TELEGRAM_TOKEN}/sendDocument",
            sb.telegram_api_base()
        ))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["ok"], true, "{sent}");

    let dom = page_dom(&chromium, &sb, "/").await;
    let image = posted["attachments"][0]["url"].as_str().unwrap();
    let path = &image[image.find("/attachments/").unwrap()..];
    assert!(
        dom.contains(&format!("<img src=\"{path}\" alt=\"disk.png\"")),
        "{dom}"
    );
    assert!(dom.contains("📎 weekly.md</a> (8 bytes)"), "{dom}");
    assert!(
        dom.contains("📎 run.log</a> (3 bytes)") && dom.contains("the run log"),
        "{dom}"
    );
    // What the page links to is the bytes that were sent.
    let got = reqwest::get(format!("http://{}{path}", sb.addr()))
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
    let file_id = sent["result"]["document"]["file_id"].as_str().unwrap();
    let got = reqwest::get(format!(
        "http://{}/_sandbox/telegram/files/{file_id}",
        sb.addr()
    ))
    .await
    .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"ok\n");
    sb.shutdown().await;
}

/// A client that does not follow the forms' 303, so the test sees it.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts a form's fields as a browser would; the status, `Location` and body.
async fn submit(
    sb: &SandboxHandle,
    action: &str,
    fields: &[(String, String)],
) -> (u16, String, String) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let r = no_redirects()
        .post(format!("http://{}{action}", sb.addr()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("form post");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap_or_default())
}

/// `fields` with `name` set to `value` (what the user typed into it).
fn typed(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = fields.iter().filter(|(k, _)| k != name).cloned().collect();
    out.push((name.into(), value.into()));
    out
}

/// The form with the button `label` inside the section `id` of the page.
fn form_in(dom: &str, id: &str, label: &str) -> (String, Vec<(String, String)>) {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in the DOM:\n{dom}"));
    let end = start + dom[start..].find("</section>").expect("its end");
    form_with_button(&dom[start..end], label)
        .unwrap_or_else(|| panic!("no {label} form in {id}:\n{dom}"))
}

async fn page(sb: &SandboxHandle, path_and_query: &str) -> String {
    reqwest::get(format!("http://{}{path_and_query}", sb.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_refreshes_itself_without_a_reload_and_draws_embeds_as_discord_does() {
    let Some(chromium) = chromium() else { return };
    let sb = sandbox_with_approver().await;
    post_discord(
        &sb,
        ALERTS,
        json!({"embeds": [{
            "title": "Disk critical on web-1", "color": 0xE7_4C3C,
            "author": {"name": "monitor"},
            "footer": {"text": "switchyard · severity critical"},
            "timestamp": "2026-01-02T03:04:05Z",
        }]}),
    )
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    // Virtual time runs the page's 2 s timer (twice) before the DOM is dumped.
    let dom = headless_with(
        &chromium,
        profile.path(),
        &["--virtual-time-budget=5000", "--dump-dom"],
        &format!("http://{}/", sb.addr()),
    )
    .await;
    let updates: u32 = dom
        .split("data-updates=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no data-updates on the body:\n{dom}"));
    assert!(updates >= 1, "the page never swapped in a refresh:\n{dom}");
    assert!(!dom.contains("data-offline"), "{dom}");
    // Swapped, not reloaded: the parts are still there, with the content.
    assert!(dom.contains("id=\"live-discord-1002\""), "{dom}");
    for expected in [
        "style=\"border-left-color:#e74c3c\"",
        "<div class=\"embed-author\">monitor</div>",
        "<span class=\"footer-text\">switchyard · severity critical</span>",
        "2026-01-02 03:04 UTC",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} not in the DOM:\n{dom}"
        );
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_say_form_plays_a_telegram_user_writing_to_the_bot() {
    let Some(chromium) = chromium() else { return };
    let sb = sandbox_with_approver().await;
    let dom = page_dom(&chromium, &sb, "/").await;
    let (action, fields) = form_in(&dom, &format!("telegram-{OPERATOR}"), "Send");
    assert_eq!(action, switchyard_sandbox::view::SAY_PATH);
    // The approver is the default user; the user types the command.
    assert!(
        fields.contains(&("from".into(), OPERATOR.to_string())),
        "{fields:?}"
    );

    // Refused with a reason, nothing queued: no text, a user id that is no number, no such chat.
    let (status, _, body) = submit(&sb, &action, &typed(&fields, "text", "  ")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nothing to send"), "{body}");
    let bad_user = typed(&typed(&fields, "text", "/status"), "from", "ops");
    let (status, _, body) = submit(&sb, &action, &bad_user).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a number"), "{body}");
    let elsewhere = typed(&typed(&fields, "text", "/status"), "chat_id", "999");
    let (status, _, body) = submit(&sb, &action, &elsewhere).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("chat 999 does not exist"), "{body}");
    assert_eq!(sb.state().telegram.pending_updates, 0);

    let (status, location, _) = submit(&sb, &action, &typed(&fields, "text", "/status")).await;
    assert_eq!(status, 303);
    assert!(location.contains("played="), "{location}");
    let updates = telegram(&sb, "getUpdates", json!({"timeout": 0})).await;
    let message = &updates[0]["message"];
    assert_eq!(message["text"], "/status", "{updates}");
    assert_eq!(message["from"]["id"], OPERATOR);
    assert_eq!(message["chat"]["id"], OPERATOR);
    assert_eq!(message["entities"][0]["type"], "bot_command", "{updates}");
    let landed = page(&sb, &location).await;
    assert!(
        landed.contains("Played: Telegram user 4242 wrote “/status” in chat 4242"),
        "{landed}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_form_plays_a_slash_command_and_shows_the_bots_answer() {
    let Some(chromium) = chromium() else { return };
    let sb = sandbox_with_approver().await;
    let dom = page_dom(&chromium, &sb, "/?discord_as=555").await;
    let (action, fields) = form_in(&dom, &format!("discord-{ALERTS}"), "Run");
    assert_eq!(action, switchyard_sandbox::view::COMMAND_PATH);
    assert!(
        fields.contains(&("user_id".into(), "555".into())),
        "{fields:?}"
    );
    let mute = typed(&fields, "text", "/mute target:system for:2h quiet:true");

    // A slash command goes to a connected bot: without one it is refused, and says so.
    let (status, _, body) = submit(&sb, &action, &mute).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("no bot is connected to the gateway"),
        "{body}"
    );

    let (mut ws, _, _) = crate::gateway::identify(&sb, DISCORD_TOKEN).await;
    for (form, code, why) in [
        (
            typed(&mute, "text", "/Mute"),
            400,
            "is not a command or option name",
        ),
        (typed(&mute, "text", "/mute target:"), 400, "has no value"),
        (typed(&mute, "user_id", "ops"), 400, "is not a number"),
        (
            typed(&mute, "channel_id", "777"),
            404,
            "channel 777 does not exist",
        ),
    ] {
        let (status, _, body) = submit(&sb, &action, &form).await;
        assert_eq!(status, code, "{form:?}: {body}");
        assert!(body.contains(why), "{form:?}: {body}");
    }
    assert!(sb.state().gateway.interactions.is_empty());

    let (status, location, _) = submit(&sb, &action, &mute).await;
    assert_eq!(status, 303);
    let id: u64 = location
        .split("command=")
        .nth(1)
        .and_then(|r| r.split(['&', '#']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no interaction id in {location}"));
    let interaction = ws.dispatch("INTERACTION_CREATE").await;
    assert_eq!(interaction["id"], id.to_string());
    assert_eq!(interaction["channel_id"], ALERTS.to_string());
    assert_eq!(interaction["member"]["user"]["id"], "555");
    let data = &interaction["data"];
    assert_eq!(data["name"], "mute", "{interaction}");
    assert_eq!(
        data["options"],
        json!([
            {"type": 3, "name": "target", "value": "system"},
            {"type": 3, "name": "for", "value": "2h"},
            {"type": 5, "name": "quiet", "value": true},
        ])
    );
    let state = sb.discord_interaction(id).expect("the interaction is kept");
    assert_eq!((state.command.as_str(), state.user_id), ("mute", 555));
    assert!(
        page(&sb, &location)
            .await
            .contains("waiting for the bot's answer…"),
        "before the bot answers"
    );

    // The bot answers; the page under the notice shows it.
    let (status, _) = crate::gateway::rest(
        &sb,
        reqwest::Method::POST,
        &format!(
            "/interactions/{id}/{}/callback",
            interaction["token"].as_str().unwrap()
        ),
        Some(
            json!({"type": 4, "data": {"content": "Muted system for 2h.",
            "embeds": [{"title": "Mute", "color": 0xF1_C40F, "footer": {"text": "until 14:00"}}]}}),
        ),
    )
    .await;
    assert_eq!(status, 204);
    let dom = page_dom(&chromium, &sb, &location).await;
    for expected in [
        "Played: Discord user 555 ran /mute target:system for:2h quiet:true",
        "<div class=\"content\">Muted system for 2h.</div>",
        "style=\"border-left-color:#f1c40f\"",
        "until 14:00",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} not in the DOM:\n{dom}"
        );
    }
    assert!(!dom.contains("waiting for the bot's answer"), "{dom}");

    // A plain message is posted as the user; a mention addresses the bot.
    let hello = typed(&fields, "text", "<@101234> how are the disks?");
    let (status, location, body) = submit(&sb, &action, &hello).await;
    assert_eq!(status, 303, "{body}");
    assert!(location.contains("discord_as=555"), "{location}");
    let created = ws.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["content"], "<@101234> how are the disks?");
    assert_eq!(created["mentions"][0]["id"], "101234", "{created}");
    let stored = sb.state();
    let last = stored.discord_messages(ALERTS).last().expect("stored");
    assert_eq!((last.author_id, last.author_bot), (Some(555), false));
    sb.shutdown().await;
}
