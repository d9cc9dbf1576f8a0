//! Approvals benchmark: button pressed → decision stored, prompt edited,
//! requester notified (the `approval_decision` item lands in its inbox).
//! A real agent runs in process with the real teloxide client against the
//! sandbox's Bot API (rate limits off: this measures the answer path, not
//! Telegram's pacing). 500 requests are prompted first; then each button is
//! pressed one at a time and timed until the decision file appears (the
//! agent edits the message before it writes that file).
//!
//! `cargo bench --bench approvals`

use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::approvals::{self, ApprovalRequest, ApprovalStatus};
use switchyard::config::{Config, ConfigSource};
use switchyard::store::Store;
use switchyard_sandbox::{
    self as sandbox, Rate, SandboxOptions, TelegramLimits, TelegramUser, TelegramUserAction,
};

const APPROVALS: usize = 500;
const CHAT: i64 = 4242;
/// The bot's token, for the agent (its environment) and the sandbox (which must know it).
const TOKEN: &str = "100000001:AAbench-token-0000000000000000000";

fn config(dir: &Path, api_base: &str) -> anyhow::Result<Config> {
    let text = format!(
        "[fleet]\nworkspace = \"workspace\"\n\n[telegram]\napi_base = \"{api_base}\"\n[telegram.chats]\noperator = \"{CHAT}\"\n\
         [telegram.access]\napprovers = [{CHAT}]\n\n[routing]\nunmatched = \"telegram:operator\"\n\n\
         [[routes]]\nmatch = {{ category = \"action_required\" }}\nto = [\"telegram:operator\"]\n\n\
         [approvals]\nremind_after = \"59m\"\nescalate_after = \"59m\"\nexpires = \"1h\"\n\n\
         [[agents]]\nname = \"manager\"\ntelegram_token_env = \"BENCH_APPROVALS_TELEGRAM_TOKEN\"\n\n\
         [[agents]]\nname = \"beta\"\n"
    );
    Ok(Config::load(&ConfigSource::Text {
        name: "bench".into(),
        text,
        base_dir: dir.to_path_buf(),
    })?)
}

fn main() -> anyhow::Result<()> {
    // Set before any thread exists: the agent reads its token from the environment.
    unsafe { std::env::set_var("BENCH_APPROVALS_TELEGRAM_TOKEN", TOKEN) };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let sb = sandbox::start(SandboxOptions {
        telegram_chats: vec![(CHAT, "operator".into())],
        telegram_rate: TelegramLimits {
            per_chat: Rate::unlimited(),
            per_group: Rate::unlimited(),
            overall: Rate::unlimited(),
            ..TelegramLimits::default()
        },
        telegram_tokens: vec![TOKEN.into()],
        ..SandboxOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), &sb.telegram_api_base())?;
    let workspace = config.fleet.workspace.clone();
    let manager = config.agent("manager").cloned().expect("manager");
    let db = config.database_url("manager");
    let stop_tx = switchyard::shutdown::ShutdownHandle::new();
    let agent = switchyard::agent::Agent::start(config, manager, stop_tx.clone()).await?;
    let store = Store::open(&db).await?;

    let t_prompt = Instant::now();
    let mut ids = Vec::with_capacity(APPROVALS);
    for i in 0..APPROVALS {
        let mut req = ApprovalRequest::new(format!("Deploy build {i}"), "beta");
        req.detail = format!("scripts/deploy.sh --build {i}");
        req.risk = 70;
        req.reasons = vec!["declared risk high (+60)".into()];
        req.reply_to = Some("beta".into());
        ids.push(approvals::request(&store, req).await?);
    }
    let mut prompts = Vec::with_capacity(APPROVALS);
    for id in &ids {
        let (msg, token) = loop {
            let a = store.approval(id).await?.expect("stored");
            if let Some(m) = a.message_id {
                break (m as i32, store_token(&store, id).await?);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        prompts.push((id.clone(), msg, token));
    }
    println!(
        "{APPROVALS} prompts sent in {:.2} s",
        t_prompt.elapsed().as_secs_f64()
    );

    let inbox = workspace.join("agents").join("beta").join("inbox");
    let operator = TelegramUser {
        id: CHAT,
        first_name: "Op".into(),
        username: Some("operator".into()),
    };
    let mut samples = Vec::with_capacity(APPROVALS);
    for (id, message_id, data) in &prompts {
        let decision_file = inbox.join(format!("dec_{id}.json"));
        let t0 = Instant::now();
        sb.telegram_user_action(TelegramUserAction::PressButton {
            chat_id: CHAT,
            message_id: *message_id,
            from: operator.clone(),
            callback_data: data.clone(),
        })?;
        while !decision_file.exists() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(t0.elapsed());
    }
    // Everything measured did happen.
    let state = sb.state();
    let edited = state
        .telegram_messages(CHAT)
        .iter()
        .filter(|m| m.edited && m.reply_markup.is_none())
        .count();
    let approved = store.approvals(Some(ApprovalStatus::Approved)).await?.len();
    assert_eq!(edited, APPROVALS, "every prompt edited, buttons gone");
    assert_eq!(approved, APPROVALS, "every decision stored");
    assert_eq!(
        state.telegram.callback_answers.len(),
        APPROVALS,
        "every press answered"
    );

    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "button pressed → decision stored, message edited, requester notified, over {APPROVALS} approvals: \
         median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(*samples.last().expect("samples"))
    );
    stop_tx.stop();
    agent.wait().await?;
    sb.shutdown().await;
    Ok(())
}

async fn store_token(store: &Store, id: &str) -> anyhow::Result<String> {
    // The benchmark plays the user, who sees the buttons; read them from the database.
    let (token,): (String,) = sqlx::query_as("SELECT token FROM approvals WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await?;
    Ok(format!("a:{token}"))
}
