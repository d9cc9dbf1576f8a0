//! Wire tests of the sandbox's login with the real clients: serenity reads the
//! bot's user and application from it, and both serenity and teloxide see a
//! token the sandbox does not know refused as the platforms refuse it.

use serenity::all::{Http, HttpBuilder};
use switchyard_sandbox::{self as sandbox, SandboxHandle, SandboxOptions};
use teloxide::prelude::*;
use teloxide::{ApiError, RequestError};

/// "MTAxMjM0" is "101234" in base64: the bot's user id.
const DISCORD_TOKEN: &str = "MTAxMjM0.login.token";
const TELEGRAM_TOKEN: &str = "123456:LOGIN-token";

async fn sandbox() -> SandboxHandle {
    sandbox::start(SandboxOptions {
        discord_tokens: vec![DISCORD_TOKEN.into()],
        telegram_tokens: vec![TELEGRAM_TOKEN.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

fn discord(sb: &SandboxHandle, token: &str) -> Http {
    HttpBuilder::new(token)
        .proxy(sb.discord_proxy())
        .ratelimiter_disabled(true)
        .build()
}

fn telegram(sb: &SandboxHandle, token: &str) -> Bot {
    Bot::new(token).set_api_url(url::Url::parse(&sb.telegram_api_base()).unwrap())
}

fn status_of(e: &serenity::Error) -> u16 {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            r.status_code.as_u16()
        }
        other => panic!("expected an unsuccessful request, got {other:?}"),
    }
}

#[tokio::test]
async fn serenity_reads_the_bots_user_and_application() {
    let sb = sandbox().await;
    let http = discord(&sb, DISCORD_TOKEN);
    let me = http.get_current_user().await.expect("GET /users/@me");
    assert_eq!(me.id.get(), 101_234);
    assert!(me.bot, "{me:?}");
    assert_eq!(me.name, "bot101234");
    let app = http
        .get_current_application_info()
        .await
        .expect("GET /oauth2/applications/@me");
    assert_eq!(app.id.get(), 101_234, "the application is the bot's");
    assert!(app.owner.is_some(), "{app:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn serenity_sees_an_unknown_token_refused_with_401() {
    let sb = sandbox().await;
    for token in ["MTAxMjM0.other.token", "garbage"] {
        let http = discord(&sb, token);
        let err = http.get_current_user().await.unwrap_err();
        assert_eq!(status_of(&err), 401, "{token}");
        let err = http.get_current_application_info().await.unwrap_err();
        assert_eq!(status_of(&err), 401, "{token}");
        let err = http.get_bot_gateway().await.unwrap_err();
        assert_eq!(status_of(&err), 401, "{token}");
    }
    assert_eq!(sb.state().stats.discord.unauthorized, 6);
    sb.shutdown().await;
}

#[tokio::test]
async fn teloxide_sees_a_malformed_or_unknown_token_as_invalid() {
    let sb = sandbox().await;
    let me = telegram(&sb, TELEGRAM_TOKEN).get_me().await.expect("getMe");
    assert_eq!(me.id.0, 123_456);
    for token in ["123456:OTHER-token", "garbage"] {
        let err = telegram(&sb, token).get_me().await.unwrap_err();
        assert!(
            matches!(err, RequestError::Api(ApiError::InvalidToken)),
            "{token}: {err:?}"
        );
    }
    let stats = sb.state().stats.telegram;
    assert_eq!((stats.unauthorized, stats.accepted), (2, 1));
    sb.shutdown().await;
}
