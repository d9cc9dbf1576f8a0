//! Uploads as the platforms take them: Discord's `multipart/form-data` with
//! `payload_json` and `files[0]`..`files[9]` (10 MiB in all, 413 code 40005
//! past it; `attachments[].id` must name an uploaded part), served back at
//! each attachment's `url`; Telegram's `sendDocument` / `sendPhoto` with an
//! `InputFile` part (by its parameter's name or `attach://NAME`; 50 MB for a
//! document, 10 MB for a photo, a photo must be an image, a caption at most
//! 1024 characters), fetched back through `getFile` and the file URL. Shapes
//! of the answers are held against the API descriptions where present.

use serde_json::{Value, json};
use switchyard_sandbox::{self as sandbox, DiscordLimits, SandboxOptions, TelegramLimits};

use crate::gateway::{CHAT, TOKEN};

const BOT: &str = "111111:bot-A-token";
const TG_CHAT: i64 = 4242;

/// A 1×1 PNG.
pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\xdac\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82";

/// One part of a multipart body: name, file name, content type, bytes.
pub(crate) type FormPart<'a> = (&'a str, Option<&'a str>, &'a str, &'a [u8]);

/// A multipart body, its parts in order.
pub(crate) fn multipart(parts: &[FormPart<'_>]) -> (String, Vec<u8>) {
    let boundary = "----switchyard-test-boundary";
    let mut body = Vec::new();
    for (name, filename, content_type, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match filename {
            Some(f) => {
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n")
            }
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn discord_sandbox() -> sandbox::SandboxHandle {
    let limits = DiscordLimits {
        channel_messages: sandbox::Rate::new(100, std::time::Duration::from_secs(1)),
        ..DiscordLimits::default()
    };
    sandbox::start(SandboxOptions {
        discord_rate: limits,
        discord_tokens: vec![TOKEN.into()],
        discord_channels: vec![(CHAT, "chat".into())],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

async fn post_message(sb: &sandbox::SandboxHandle, parts: &[FormPart<'_>]) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    let r = reqwest::Client::new()
        .post(format!(
            "{}/channels/{CHAT}/messages",
            sb.discord_api_base()
        ))
        .header("Authorization", format!("Bot {TOKEN}"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discord_takes_files_with_payload_json_and_serves_the_bytes_back() {
    let sb = discord_sandbox().await;
    let payload = json!({"content": "report", "attachments": [{"id": 0, "filename": "r.md", "description": "the report"}, {"id": 1, "filename": "p.png"}]});
    let (status, message) = post_message(
        &sb,
        &[
            (
                "payload_json",
                None,
                "application/json",
                payload.to_string().as_bytes(),
            ),
            ("files[0]", Some("r.md"), "text/markdown", b"# report"),
            ("files[1]", Some("p.png"), "image/png", PNG),
        ],
    )
    .await;
    assert_eq!(status, 200, "{message}");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0]["filename"], "r.md");
    assert_eq!(attachments[0]["description"], "the report");
    assert_eq!(attachments[0]["size"], 8);
    assert_eq!(attachments[1]["content_type"], "image/png");
    for (a, bytes) in attachments.iter().zip([b"# report".as_slice(), PNG]) {
        let got = reqwest::get(a["url"].as_str().unwrap()).await.unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes);
    }
    // The attachment objects have what Discord's description requires.
    if let Some(dir) = crate::openapi::specs(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"),
    ) {
        let spec = crate::openapi::load(&dir, "discord-openapi.json");
        let required = spec["components"]["schemas"]["AttachmentResponse"]["required"]
            .as_array()
            .expect("AttachmentResponse lists its required fields")
            .clone();
        for field in required {
            let field = field.as_str().unwrap();
            assert!(
                attachments[0].get(field).is_some(),
                "attachment lacks {field}: {}",
                attachments[0]
            );
        }
    }
}

#[tokio::test]
async fn discord_refuses_what_it_would_refuse() {
    let sb = discord_sandbox().await;
    let payload = json!({"content": "x"}).to_string();
    // Over 10 MiB of files in one message.
    let big = vec![0u8; 10 * 1024 * 1024 + 1];
    let (status, body) = post_message(
        &sb,
        &[
            ("payload_json", None, "application/json", payload.as_bytes()),
            (
                "files[0]",
                Some("big.bin"),
                "application/octet-stream",
                &big,
            ),
        ],
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (413, json!(40005)),
        "{body}"
    );
    // files[10]: one past the most a message carries.
    let (status, body) = post_message(
        &sb,
        &[
            ("payload_json", None, "application/json", payload.as_bytes()),
            ("files[10]", Some("a.txt"), "text/plain", b"a"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!(50035)),
        "{body}"
    );
    // The same part twice, and a part without a file name.
    let (status, _) = post_message(
        &sb,
        &[
            ("files[0]", Some("a.txt"), "text/plain", b"a"),
            ("files[0]", Some("b.txt"), "text/plain", b"b"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_message(&sb, &[("files[0]", None, "text/plain", b"a")]).await;
    assert_eq!(status, 400);
    // `attachments` naming a part that was not uploaded.
    let listed =
        json!({"content": "x", "attachments": [{"id": 3, "filename": "c.txt"}]}).to_string();
    let (status, body) = post_message(
        &sb,
        &[
            ("payload_json", None, "application/json", listed.as_bytes()),
            ("files[0]", Some("a.txt"), "text/plain", b"a"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("attachments"), "{body}");
    // Nothing refused was posted.
    assert!(sb.state().discord_messages(CHAT).is_empty());
}

async fn telegram_sandbox() -> sandbox::SandboxHandle {
    sandbox::start(SandboxOptions {
        telegram_rate: TelegramLimits::unlimited(),
        telegram_tokens: vec![BOT.into()],
        telegram_chats: vec![(TG_CHAT, "ops".into())],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

async fn tg_upload(
    sb: &sandbox::SandboxHandle,
    method: &str,
    parts: &[FormPart<'_>],
) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    let r = reqwest::Client::new()
        .post(format!("{}/bot{BOT}/{method}", sb.telegram_api_base()))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn telegram_takes_documents_and_photos_and_serves_them_through_get_file() {
    let sb = telegram_sandbox().await;
    let chat = TG_CHAT.to_string();
    let (status, sent) = tg_upload(
        &sb,
        "sendDocument",
        &[
            ("chat_id", None, "text/plain", chat.as_bytes()),
            ("caption", None, "text/plain", "the log".as_bytes()),
            (
                "document",
                Some("run.log"),
                "text/plain",
                b"line 1\nline 2\n",
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let doc = &sent["result"]["document"];
    assert_eq!(doc["file_name"], "run.log");
    assert_eq!(doc["file_size"], 14);
    assert_eq!(sent["result"]["caption"], "the log");
    assert!(sent["result"].get("text").is_none(), "{sent}");
    let file: Value = reqwest::Client::new()
        .post(format!("{}/bot{BOT}/getFile", sb.telegram_api_base()))
        .json(&json!({"file_id": doc["file_id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = file["result"]["file_path"].as_str().unwrap();
    let got = reqwest::get(format!("{}/file/bot{BOT}/{path}", sb.telegram_api_base()))
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"line 1\nline 2\n");
    // An unknown token gets nothing.
    let refused = reqwest::get(format!(
        "{}/file/bot999:nope/{path}",
        sb.telegram_api_base()
    ))
    .await
    .unwrap();
    assert_ne!(refused.status(), 200);

    // A photo by attach://, with its size read from the PNG.
    let (status, sent) = tg_upload(
        &sb,
        "sendPhoto",
        &[
            ("chat_id", None, "text/plain", chat.as_bytes()),
            ("photo", None, "text/plain", b"attach://pic"),
            ("pic", Some("p.png"), "image/png", PNG),
        ],
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let sizes = sent["result"]["photo"].as_array().unwrap();
    assert_eq!(
        (sizes[0]["width"].clone(), sizes[0]["height"].clone()),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn telegram_refuses_uploads_it_would_refuse() {
    let sb = telegram_sandbox().await;
    let chat = TG_CHAT.to_string();
    let cid = ("chat_id", None, "text/plain", chat.as_bytes());
    let cases: Vec<(&str, Vec<FormPart<'_>>, u16, &str)> = vec![
        (
            "sendPhoto",
            vec![cid, ("photo", Some("x.png"), "image/png", b"not an image")],
            400,
            "IMAGE_PROCESS_FAILED",
        ),
        (
            "sendDocument",
            vec![cid, ("document", Some("e.txt"), "text/plain", b"")],
            400,
            "file must be non-empty",
        ),
        (
            "sendDocument",
            vec![
                cid,
                ("document", None, "text/plain", b"https://example.com/x"),
            ],
            400,
            "wrong file identifier",
        ),
        ("sendDocument", vec![cid], 400, "there is no document"),
    ];
    for (method, parts, status, text) in cases {
        let (got, body) = tg_upload(&sb, method, &parts).await;
        assert_eq!(got, status, "{method}: {body}");
        assert!(
            body["description"].as_str().unwrap().contains(text),
            "{method}: {body}"
        );
        assert_eq!(body["ok"], false);
    }
    let long = "c".repeat(1025);
    let (got, body) = tg_upload(
        &sb,
        "sendDocument",
        &[
            cid,
            ("caption", None, "text/plain", long.as_bytes()),
            ("document", Some("a.txt"), "text/plain", b"a"),
        ],
    )
    .await;
    assert_eq!(got, 400, "{body}");
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("caption is too long")
    );
    let big = vec![0u8; 50 * 1000 * 1000 + 1];
    let (got, body) = tg_upload(
        &sb,
        "sendDocument",
        &[
            cid,
            (
                "document",
                Some("big.bin"),
                "application/octet-stream",
                &big,
            ),
        ],
    )
    .await;
    assert_eq!(got, 413, "{body}");
    assert!(sb.state().telegram_messages(TG_CHAT).is_empty());
}
