//! The store and the outbox: core tests against an in-memory fake sink, each
//! on both backends (`NAME::sqlite`, `NAME::postgres`), and the wire tests
//! against the sandbox.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use switchyard::config::DeliverySettings;
use switchyard::delivery::{
    ChatSink, Outbox, OutgoingMessage, SendError, SendErrorKind, Sent, Sinks,
};
use switchyard::shutdown::ShutdownHandle;
use switchyard::store::{DeliveryState, NewDelivery, NewDeliveryState, Recorded, Store};
use switchyard_routing::{Destination, Event, EventDraft, Hold, Platform};
use tokio::sync::watch;

use crate::common::TestDb;

pub(crate) fn event(id: &str, category: &str, title: &str) -> Event {
    EventDraft {
        event_id: Some(id.into()),
        category: Some(category.into()),
        title: Some(title.into()),
        body: Some(format!("body of {title}")),
        source: Some("test".into()),
        ..Default::default()
    }
    .validate(
        Utc::now(),
        switchyard_routing::EventId::generate(Utc::now(), 0),
    )
    .unwrap()
}

pub(crate) fn to(dest: &str) -> NewDelivery {
    NewDelivery {
        destination: dest.parse().unwrap(),
        rule: "test".into(),
        state: NewDeliveryState::Pending,
        files: Vec::new(),
    }
}

fn settings(max_attempts: u32, coalesce_after: usize) -> DeliverySettings {
    DeliverySettings {
        max_attempts,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        coalesce_after,
        // The count alone decides in these tests; the drain estimate has its own.
        coalesce_backlog: Duration::ZERO,
    }
}

/// A SQLite store in `dir` (the wire tests exercise the platforms, not the backends).
async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&format!(
        "sqlite://{}/agents/a/state.db",
        dir.path().display()
    ))
    .await
    .unwrap()
}

/// One scripted outcome for the next send to a destination.
#[derive(Clone)]
enum Outcome {
    Fail(SendErrorKind, &'static str),
}

/// A fake chat platform: records what arrives, fails on script, and can
/// hold every send at `ready` until opened.
struct FakeSink {
    platform: Platform,
    resend_safe: bool,
    received: Mutex<Vec<(Destination, OutgoingMessage)>>,
    script: Mutex<HashMap<String, VecDeque<Outcome>>>,
    open: watch::Sender<bool>,
}

impl FakeSink {
    fn new(platform: Platform, resend_safe: bool) -> Arc<Self> {
        Arc::new(FakeSink {
            platform,
            resend_safe,
            received: Mutex::new(Vec::new()),
            script: Mutex::new(HashMap::new()),
            open: watch::channel(true).0,
        })
    }
    fn script(&self, dest: &str, outcomes: impl IntoIterator<Item = Outcome>) {
        self.script
            .lock()
            .unwrap()
            .entry(dest.into())
            .or_default()
            .extend(outcomes);
    }
    fn titles(&self, dest: &str) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, _)| d.to_string() == dest)
            .map(|(_, m)| m.title.clone())
            .collect()
    }
}

impl ChatSink for FakeSink {
    fn platform(&self) -> Platform {
        self.platform
    }
    fn knows(&self, _d: &Destination) -> bool {
        true
    }
    fn resend_is_safe(&self, _d: &Destination) -> bool {
        self.resend_safe
    }
    fn ready<'a>(&'a self, _d: &'a Destination) -> BoxFuture<'a, ()> {
        let mut rx = self.open.subscribe();
        async move {
            let _ = rx.wait_for(|open| *open).await;
        }
        .boxed()
    }
    fn send<'a>(
        &'a self,
        d: &'a Destination,
        m: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        async move {
            let next = self
                .script
                .lock()
                .unwrap()
                .get_mut(&d.to_string())
                .and_then(VecDeque::pop_front);
            if let Some(Outcome::Fail(kind, text)) = next {
                return Err(SendError::new(kind, text));
            }
            let mut received = self.received.lock().unwrap();
            received.push((d.clone(), m.clone()));
            Ok(Sent {
                message_id: format!("m{}", received.len()),
                parts_sent: 1,
            })
        }
        .boxed()
    }
}

struct Running {
    stop: ShutdownHandle,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.stop();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn start(store: &Store, sinks: Sinks, s: DeliverySettings) -> Running {
    let outbox = Outbox::new(store.clone(), sinks, s);
    let (stop, rx) = ShutdownHandle::pair();
    Running {
        stop,
        task: tokio::spawn(outbox.run(rx)),
    }
}

/// Wait (bounded, as a deadline for failure only) until nothing is pending or sending.
async fn drained(store: &Store) -> BTreeMap<DeliveryState, u64> {
    for _ in 0..1000 {
        let c = store.delivery_counts().await.unwrap();
        if c[&DeliveryState::Pending] == 0 && c[&DeliveryState::Sending] == 0 {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "outbox did not drain: {:?}",
        store.delivery_counts().await.unwrap()
    );
}

async fn event_and_deliveries_are_stored_once(db: TestDb) {
    let store = db.open().await;
    let ev = event("evt_1", "alert", "disk full");
    let r = store
        .record_event(
            &ev,
            &[to("discord:alerts"), to("telegram:operator")],
            Utc::now(),
        )
        .await
        .unwrap();
    let Recorded::Inserted { delivery_ids } = r else {
        panic!("expected insert")
    };
    assert_eq!(delivery_ids.len(), 2);
    assert_eq!(
        store
            .record_event(&ev, &[to("discord:alerts")], Utc::now())
            .await
            .unwrap(),
        Recorded::Duplicate
    );
    let rows = store.deliveries_for_event("evt_1").await.unwrap();
    assert_eq!(rows.len(), 2, "the duplicate wrote nothing");
    assert!(rows.iter().all(|r| r.state == DeliveryState::Pending));
    assert_eq!(
        store.delivery_counts().await.unwrap()[&DeliveryState::Pending],
        2
    );
}

#[tokio::test]
async fn concurrent_opens_of_a_fresh_file_all_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x/state.db", dir.path().display());
    let opens: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn({
                let url = url.clone();
                async move { Store::open(&url).await.map(|_| ()) }
            })
        })
        .collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
    assert!(dir.path().join("x/state.db.migrate-lock").exists());
}

async fn held_messages_are_released_once(db: TestDb) {
    let store = db.open().await;
    for i in 0..3 {
        let held = NewDelivery {
            destination: Destination::discord("system"),
            rule: "r".into(),
            state: NewDeliveryState::Held {
                hold: Hold::Mute("mute_1".parse().unwrap()),
            },
            files: Vec::new(),
        };
        store
            .record_event(
                &event(&format!("evt_h{i}"), "system", &format!("hb {i}")),
                &[held],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.held_for_mute("mute_1").await.unwrap().len(), 3);
    let released = store
        .release_held(&Hold::Mute("mute_1".parse().unwrap()), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        released
            .iter()
            .map(|(_, e)| e.title.as_str())
            .collect::<Vec<_>>(),
        ["hb 0", "hb 1", "hb 2"]
    );
    assert!(
        store
            .release_held(&Hold::Mute("mute_1".parse().unwrap()), Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let c = store.delivery_counts().await.unwrap();
    assert_eq!(
        (c[&DeliveryState::Digested], c[&DeliveryState::Held]),
        (3, 0)
    );
}

async fn pending_goes_to_sent_with_the_platform_id_and_a_stable_nonce(db: TestDb) {
    let store = db.open().await;
    let fake = FakeSink::new(Platform::Discord, true);
    let run = start(&store, Sinks::new().with(fake.clone()), settings(3, 100));
    store
        .record_event(
            &event("evt_s", "briefing", "morning"),
            &[to("discord:briefings")],
            Utc::now(),
        )
        .await
        .unwrap();
    let notice = store
        .enqueue_notice(
            &Destination::discord("system"),
            "muted",
            "system muted for 1h",
            Default::default(),
            Utc::now(),
        )
        .await
        .unwrap();
    drained(&store).await;
    run.stop().await;
    let row = &store.deliveries_for_event("evt_s").await.unwrap()[0];
    assert_eq!(row.state, DeliveryState::Sent);
    assert!(
        row.platform_message_id
            .as_deref()
            .is_some_and(|m| m.starts_with('m'))
    );
    assert!(row.sent_at.is_some());
    let got = fake.received.lock().unwrap().clone();
    let sent = got.iter().find(|(_, m)| m.delivery_id == row.id).unwrap();
    assert!(
        sent.1.nonce.len() <= 25 && sent.1.nonce == switchyard::delivery::sink::nonce_for(&row.id)
    );
    assert_eq!(
        store.delivery(&notice).await.unwrap().unwrap().state,
        DeliveryState::Sent
    );
}

async fn retries_with_backoff_then_fail_with_the_last_error(db: TestDb) {
    let store = db.open().await;
    let fake = FakeSink::new(Platform::Discord, true);
    fake.script(
        "discord:alerts",
        [
            Outcome::Fail(SendErrorKind::Transient, "HTTP 502 one"),
            Outcome::Fail(SendErrorKind::Transient, "HTTP 502 two"),
            Outcome::Fail(SendErrorKind::Transient, "HTTP 503 three"),
        ],
    );
    let run = start(&store, Sinks::new().with(fake.clone()), settings(3, 100));
    store
        .record_event(
            &event("evt_f", "alert", "doomed"),
            &[to("discord:alerts")],
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .record_event(
            &event("evt_g", "alert", "after"),
            &[to("discord:alerts")],
            Utc::now(),
        )
        .await
        .unwrap();
    drained(&store).await;
    run.stop().await;
    let row = &store.deliveries_for_event("evt_f").await.unwrap()[0];
    assert_eq!(row.state, DeliveryState::Failed);
    assert_eq!(row.attempts, 3);
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 503 three"),
        "{:?}",
        row.last_error
    );
    // A failed head does not block the queue forever.
    assert_eq!(fake.titles("discord:alerts"), ["after"]);
}

async fn a_retrying_head_is_not_overtaken(db: TestDb) {
    let store = db.open().await;
    let fake = FakeSink::new(Platform::Discord, true);
    fake.script(
        "discord:chat",
        [
            Outcome::Fail(SendErrorKind::Transient, "500"),
            Outcome::Fail(SendErrorKind::Unknown, "timed out"),
            Outcome::Fail(
                SendErrorKind::RateLimited {
                    retry_after: Duration::from_millis(30),
                    global: false,
                },
                "429",
            ),
        ],
    );
    let run = start(&store, Sinks::new().with(fake.clone()), settings(8, 100));
    for i in 0..5 {
        store
            .record_event(
                &event(&format!("evt_o{i}"), "chat", &format!("m{i}")),
                &[to("discord:chat")],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    store
        .record_event(
            &event("evt_other", "alert", "other"),
            &[to("discord:alerts")],
            Utc::now(),
        )
        .await
        .unwrap();
    drained(&store).await;
    run.stop().await;
    assert_eq!(fake.titles("discord:chat"), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(fake.titles("discord:alerts"), ["other"]);
    let head = &store.deliveries_for_event("evt_o0").await.unwrap()[0];
    // Two counted attempts; the 429 is not a failure of the message.
    assert_eq!(head.attempts, 2);
}

async fn unknown_outcome_on_telegram_is_ambiguous_and_not_replayed(db: TestDb) {
    let store = db.open().await;
    let tg = FakeSink::new(Platform::Telegram, false);
    tg.script(
        "telegram:operator",
        [Outcome::Fail(
            SendErrorKind::Unknown,
            "the request timed out",
        )],
    );
    let run = start(&store, Sinks::new().with(tg.clone()), settings(5, 100));
    store
        .record_event(
            &event("evt_a", "action_required", "approve?"),
            &[to("telegram:operator")],
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .record_event(
            &event("evt_b", "action_required", "next"),
            &[to("telegram:operator")],
            Utc::now(),
        )
        .await
        .unwrap();
    let counts = drained(&store).await;
    run.stop().await;
    assert_eq!(counts[&DeliveryState::Ambiguous], 1);
    let row = &store.deliveries_for_event("evt_a").await.unwrap()[0];
    assert_eq!(row.state, DeliveryState::Ambiguous);
    assert!(row.last_error.as_deref().unwrap().contains("not resent"));
    assert_eq!(
        tg.titles("telegram:operator"),
        ["next"],
        "the ambiguous one was not replayed"
    );
}

async fn a_restart_resumes_pending_and_recovers_sending_by_platform(db: TestDb) {
    let store = db.open().await;
    for i in 0..20 {
        store
            .record_event(
                &event(&format!("evt_r{i}"), "alert", &format!("r{i}")),
                &[to("discord:alerts"), to("telegram:operator")],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    // A crash mid-send: two rows claimed and never finished.
    let d0 = store.deliveries_for_event("evt_r0").await.unwrap();
    for row in &d0 {
        assert!(store.claim(&row.id, Utc::now()).await.unwrap());
    }
    drop(store);

    let store = db.open().await;
    let discord = FakeSink::new(Platform::Discord, true);
    let telegram = FakeSink::new(Platform::Telegram, false);
    let run = start(
        &store,
        Sinks::new().with(discord.clone()).with(telegram.clone()),
        settings(3, 100),
    );
    let counts = drained(&store).await;
    run.stop().await;
    let expected: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    assert_eq!(
        discord.titles("discord:alerts"),
        expected,
        "Discord resends the interrupted one (nonce makes it safe)"
    );
    assert_eq!(
        telegram.titles("telegram:operator"),
        expected[1..],
        "Telegram does not replay it"
    );
    assert_eq!(
        (
            counts[&DeliveryState::Sent],
            counts[&DeliveryState::Ambiguous]
        ),
        (39, 1)
    );
}

async fn an_ambient_backlog_is_coalesced_into_one_message(db: TestDb) {
    let store = db.open().await;
    let fake = FakeSink::new(Platform::Discord, true);
    fake.open.send_replace(false);
    let run = start(&store, Sinks::new().with(fake.clone()), settings(3, 5));
    // The first one reaches the lane, which waits at `ready` (the channel is
    // backed up) while 29 more pile up behind it.
    for i in 0..30 {
        store
            .record_event(
                &event(&format!("evt_c{i}"), "system", &format!("hb {i}")),
                &[to("discord:system")],
                Utc::now(),
            )
            .await
            .unwrap();
    }
    store
        .record_event(
            &event("evt_alert", "alert", "real alert"),
            &[to("discord:system")],
            Utc::now(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.open.send_replace(true);
    drained(&store).await;
    // Coalescing is decided when the channel frees up, so everything that
    // piled up while it waited is one summary; the alert goes out alone.
    run.stop().await;
    let titles = fake.titles("discord:system");
    assert_eq!(
        titles,
        [
            "30 messages, coalesced while this channel was backed up",
            "real alert"
        ],
    );
    let merged = 30;
    let c = store.delivery_counts().await.unwrap();
    assert_eq!(c[&DeliveryState::Digested] as usize, merged);
    let row = &store.deliveries_for_event("evt_c10").await.unwrap()[0];
    assert_eq!(row.state, DeliveryState::Digested);
    assert!(row.coalesced_into.is_some());
}

/// `n` ambient messages wait for a closed channel; the channel opens.
async fn backlog_of(
    db: TestDb,
    n: usize,
    settings: DeliverySettings,
) -> (Vec<String>, Vec<String>) {
    let store = db.open().await;
    let fake = FakeSink::new(Platform::Discord, true);
    fake.open.send_replace(false);
    let run = start(&store, Sinks::new().with(fake.clone()), settings);
    let mut titles = Vec::new();
    for i in 0..n {
        let title = format!("Briefing {i:03} for the team");
        store
            .record_event(
                &event(&format!("evt_b{i}"), "briefing", &title),
                &[to("discord:briefings")],
                Utc::now(),
            )
            .await
            .unwrap();
        titles.push(title);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.open.send_replace(true);
    drained(&store).await;
    run.stop().await;
    let received = fake
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| format!("{}\n{}", m.title, m.body))
        .collect();
    (titles, received)
}

async fn a_backlog_that_drains_in_seconds_is_not_coalesced(db: TestDb) {
    // 40 briefings at one message a second drain in ~40 s: under two minutes.
    let mut s = settings(3, 5);
    s.coalesce_backlog = Duration::from_secs(120);
    let (titles, received) = backlog_of(db, 40, s).await;
    assert_eq!(received.len(), 40, "each briefing is its own message");
    for (t, r) in titles.iter().zip(&received) {
        assert!(r.starts_with(t.as_str()), "{r}");
    }
}

async fn a_coalesced_backlog_names_every_message_it_stands_for(db: TestDb) {
    let (titles, received) = backlog_of(db, 300, settings(3, 5)).await;
    assert!(
        received.len() >= 2,
        "300 titles need more than one summary: {}",
        received.len()
    );
    let all = received.join("\n");
    for t in &titles {
        assert!(all.contains(t.as_str()), "{t} appears nowhere");
    }
    assert!(received[0].contains("(1/"), "{}", received[0]);
    for r in &received {
        assert!(
            r.chars().count() < 4096,
            "within the platforms' limits: {}",
            r.chars().count()
        );
    }
}

async fn a_destination_without_a_sink_fails_with_a_reason(db: TestDb) {
    let store = db.open().await;
    let run = start(
        &store,
        Sinks::new().with(FakeSink::new(Platform::Discord, true)),
        settings(3, 100),
    );
    store
        .record_event(
            &event("evt_n", "action_required", "x"),
            &[to("telegram:operator")],
            Utc::now(),
        )
        .await
        .unwrap();
    drained(&store).await;
    run.stop().await;
    let row = &store.deliveries_for_event("evt_n").await.unwrap()[0];
    assert_eq!(row.state, DeliveryState::Failed);
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("no telegram sink"),
        "{:?}",
        row.last_error
    );
}

async fn audit_rows_are_written(db: TestDb) {
    let store = db.open().await;
    store
        .audit(switchyard::store::AuditEntry {
            actor: "user:1".into(),
            action: "mute".into(),
            target: "system".into(),
            outcome: "refused".into(),
            detail: "not an operator".into(),
            at: Utc::now(),
        })
        .await
        .unwrap();
    let rows = store.recent_audit(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "refused");
}

// ---------------------------------------------------------------------------
// Wire tests: the real serenity and teloxide clients against the sandbox.

crate::on_both_backends!(
    event_and_deliveries_are_stored_once,
    held_messages_are_released_once,
    pending_goes_to_sent_with_the_platform_id_and_a_stable_nonce,
    retries_with_backoff_then_fail_with_the_last_error,
    a_retrying_head_is_not_overtaken,
    unknown_outcome_on_telegram_is_ambiguous_and_not_replayed,
    a_restart_resumes_pending_and_recovers_sending_by_platform,
    an_ambient_backlog_is_coalesced_into_one_message,
    a_destination_without_a_sink_fails_with_a_reason,
    audit_rows_are_written,
    a_backlog_that_drains_in_seconds_is_not_coalesced,
    a_coalesced_backlog_names_every_message_it_stands_for,
);

mod wire {
    use super::*;
    use switchyard::config::{DiscordSettings, Secret, TelegramSettings};
    use switchyard::delivery::{DiscordOptions, DiscordSink, TelegramOptions, TelegramSink};
    use switchyard_commands::AccessList;
    use switchyard_sandbox::{
        self as sandbox, DiscordLimits, Fault, Rate, SandboxHandle, SandboxOptions,
    };

    const ALERTS: u64 = 900_000_000_000_000_001;
    const SYSTEM: u64 = 900_000_000_000_000_002;
    const OPERATOR: i64 = 4242;
    const GROUP: i64 = -100_777;
    const DISCORD_TOKEN: &str = "MTAxMjM0.sandbox.token";
    const TELEGRAM_TOKEN: &str = "123456:TEST-token";

    /// Discord's shape of limits, faster: 5 per 500 ms per channel (the
    /// ratio of per-channel to global stays below one, as on Discord).
    fn fast_discord() -> DiscordLimits {
        DiscordLimits {
            channel_messages: Rate::new(5, Duration::from_millis(500)),
            ..DiscordLimits::default()
        }
    }

    async fn sandbox(discord: DiscordLimits) -> SandboxHandle {
        sandbox::start(SandboxOptions {
            discord_channels: vec![(ALERTS, "alerts".into()), (SYSTEM, "system".into())],
            telegram_chats: vec![(OPERATOR, "operator".into()), (GROUP, "ops-group".into())],
            discord_rate: discord,
            discord_tokens: vec![DISCORD_TOKEN.into()],
            telegram_tokens: vec![TELEGRAM_TOKEN.into()],
            ..SandboxOptions::default()
        })
        .await
        .unwrap()
    }

    fn discord(h: &SandboxHandle) -> Arc<DiscordSink> {
        let settings = DiscordSettings {
            api_base: h.discord_api_base(),
            guild_id: None,
            channels: [
                ("alerts".to_string(), ALERTS),
                ("system".to_string(), SYSTEM),
            ]
            .into(),
            webhooks: BTreeMap::new(),
            access: AccessList::default(),
        };
        assert!(settings.is_proxied());
        Arc::new(
            DiscordSink::new(
                &settings,
                Some(Secret::new(DISCORD_TOKEN)),
                DiscordOptions {
                    request_timeout: Duration::from_secs(2),
                    ..DiscordOptions::default()
                },
            )
            .unwrap(),
        )
    }

    fn telegram(h: &SandboxHandle, request_timeout: Duration) -> Arc<TelegramSink> {
        let settings = TelegramSettings {
            api_base: h.telegram_api_base(),
            webhook: None,
            chats: [
                ("operator".to_string(), OPERATOR),
                ("ops-group".to_string(), GROUP),
            ]
            .into(),
            approvers: vec![],
            access: AccessList::default(),
        };
        Arc::new(
            TelegramSink::new(
                &settings,
                Secret::new(TELEGRAM_TOKEN),
                TelegramOptions {
                    request_timeout,
                    ..TelegramOptions::default()
                },
            )
            .unwrap(),
        )
    }

    fn wire_settings() -> DeliverySettings {
        DeliverySettings {
            max_attempts: 12,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            coalesce_after: 10_000,
            coalesce_backlog: Duration::ZERO,
        }
    }

    fn embed_titles(h: &SandboxHandle, channel: u64) -> Vec<String> {
        h.state()
            .discord_messages(channel)
            .iter()
            .map(|m| {
                m.embeds[0]["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    async fn record_many(
        store: &Store,
        prefix: &str,
        category: &str,
        dest: &str,
        n: usize,
    ) -> Vec<String> {
        let mut titles = Vec::new();
        for i in 0..n {
            let title = format!("{prefix} {i}");
            store
                .record_event(
                    &event(&format!("evt_{prefix}_{i}"), category, &title),
                    &[to(dest)],
                    Utc::now(),
                )
                .await
                .unwrap();
            titles.push(title);
        }
        titles
    }

    #[tokio::test]
    async fn discord_500s_for_a_while_then_everything_arrives_in_order_once() {
        let h = sandbox(fast_discord()).await;
        h.inject(Fault::ServerErrors {
            platform: sandbox::Platform::Discord,
            count: 8,
            status: 500,
        });
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let a = record_many(&store, "alert", "alert", "discord:alerts", 12).await;
        let s = record_many(&store, "sys", "alert", "discord:system", 12).await;
        let run = start(&store, Sinks::new().with(discord(&h)), wire_settings());
        let counts = drained(&store).await;
        run.stop().await;
        assert_eq!(counts[&DeliveryState::Sent], 24, "{counts:?}");
        assert_eq!(
            embed_titles(&h, ALERTS),
            a,
            "in order, none lost, none doubled"
        );
        assert_eq!(embed_titles(&h, SYSTEM), s);
        let st = h.state().stats;
        assert_eq!(st.discord.faults_served, 8);
        assert_eq!(
            st.discord.rejected, 0,
            "the sandbox accepted every request we made"
        );
        // Colour by severity and a nonce on every message.
        for m in h.state().discord_messages(ALERTS) {
            assert!(m.nonce.is_some());
            assert!(m.embeds[0]["color"].as_u64().is_some());
        }
        h.shutdown().await;
    }

    #[tokio::test]
    async fn a_lost_discord_response_is_resent_with_its_nonce_and_posted_once() {
        let h = sandbox(fast_discord()).await;
        h.inject(Fault::LostResponses {
            platform: sandbox::Platform::Discord,
            count: 2,
            delay_ms: 50,
        });
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let a = record_many(&store, "lost", "alert", "discord:alerts", 4).await;
        let run = start(&store, Sinks::new().with(discord(&h)), wire_settings());
        drained(&store).await;
        run.stop().await;
        assert_eq!(
            embed_titles(&h, ALERTS),
            a,
            "the nonce kept the resend from posting twice"
        );
        h.shutdown().await;
    }

    #[tokio::test]
    async fn a_429_storm_is_obeyed_and_the_limiter_provokes_none_of_its_own() {
        let h = sandbox(fast_discord()).await;
        h.inject(Fault::RateLimitStorm {
            platform: sandbox::Platform::Discord,
            count: 4,
            retry_after_ms: 150,
        });
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let a = record_many(&store, "storm", "alert", "discord:alerts", 15).await;
        let outbox = Outbox::new(
            store.clone(),
            Sinks::new().with(discord(&h)),
            wire_settings(),
        );
        let stats = outbox.stats();
        let (stop, rx) = ShutdownHandle::pair();
        let task = tokio::spawn(outbox.run(rx));
        drained(&store).await;
        stop.stop();
        task.await.unwrap().unwrap();
        assert_eq!(embed_titles(&h, ALERTS), a);
        let provoked = h.state().stats.discord.rate_limited;
        eprintln!("429 storm: {provoked} 429s served (4 injected)");
        assert_eq!(
            provoked, 4,
            "beyond the injected storm, the sender stayed inside the advertised limit"
        );
        assert_eq!(
            stats.rate_limited_429(Platform::Discord),
            provoked,
            "every 429 was counted"
        );
        h.shutdown().await;
    }

    #[tokio::test]
    async fn telegram_splits_long_html_and_the_sandbox_accepts_every_part() {
        let h = sandbox(fast_discord()).await;
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let body: String = (0..600)
            .map(|i| format!("line {i}: a < b && c > \"d\"\n"))
            .collect();
        assert!(body.chars().count() > 4096 * 3 / 2);
        let mut ev = event("evt_long", "action_required", "Deploy <web-1> & more?");
        ev.body = body.clone();
        store
            .record_event(&ev, &[to("telegram:operator")], Utc::now())
            .await
            .unwrap();
        let run = start(
            &store,
            Sinks::new().with(telegram(&h, Duration::from_secs(5))),
            wire_settings(),
        );
        drained(&store).await;
        run.stop().await;
        let row = &store.deliveries_for_event("evt_long").await.unwrap()[0];
        assert_eq!(row.state, DeliveryState::Sent, "{:?}", row.last_error);
        let state = h.state();
        let msgs = state.telegram_messages(OPERATOR);
        assert!(msgs.len() >= 2, "split into {} parts", msgs.len());
        assert!(
            msgs.iter()
                .all(|m| m.parse_mode.as_deref() == Some("HTML") && m.text.chars().count() <= 4096)
        );
        let text: String = msgs
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.starts_with("Deploy <web-1> & more?"),
            "{}",
            &text[..60]
        );
        for i in [0, 299, 599] {
            assert!(
                text.contains(&format!("line {i}: a < b && c > \"d\"")),
                "line {i} missing"
            );
        }
        assert_eq!(state.stats.telegram.rejected, 0);
        assert_eq!(
            state.stats.telegram.rate_limited, 0,
            "parts were paced at 1/s per chat"
        );
        h.shutdown().await;
    }

    #[tokio::test]
    async fn a_telegram_send_with_a_lost_answer_is_ambiguous_and_not_replayed() {
        let h = sandbox(fast_discord()).await;
        // The message takes effect but the answer comes after our timeout.
        h.inject(Fault::LostResponses {
            platform: sandbox::Platform::Telegram,
            count: 1,
            delay_ms: 1500,
        });
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        record_many(&store, "ask", "action_required", "telegram:operator", 2).await;
        let run = start(
            &store,
            Sinks::new().with(telegram(&h, Duration::from_millis(500))),
            wire_settings(),
        );
        let counts = drained(&store).await;
        run.stop().await;
        assert_eq!(
            (
                counts[&DeliveryState::Ambiguous],
                counts[&DeliveryState::Sent]
            ),
            (1, 1),
            "{counts:?}"
        );
        let row = &store.deliveries_for_event("evt_ask_0").await.unwrap()[0];
        assert!(
            row.last_error.as_deref().unwrap().contains("timed out"),
            "{:?}",
            row.last_error
        );
        let texts: Vec<String> = h
            .state()
            .telegram_messages(OPERATOR)
            .iter()
            .map(|m| m.text.clone())
            .collect();
        assert_eq!(
            texts.iter().filter(|t| t.starts_with("ask 0")).count(),
            1,
            "not replayed: {texts:?}"
        );
        assert_eq!(texts.iter().filter(|t| t.starts_with("ask 1")).count(), 1);
        h.shutdown().await;
    }

    #[tokio::test]
    async fn a_crash_mid_burst_then_a_restart_delivers_everything_exactly_once() {
        let h = sandbox(fast_discord()).await;
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let a = record_many(&store, "c", "alert", "discord:alerts", 25).await;
        let s = record_many(&store, "d", "alert", "discord:system", 25).await;
        // Slow answers, so that the crash lands while requests are in flight.
        h.inject(Fault::LostResponses {
            platform: sandbox::Platform::Discord,
            count: 2,
            delay_ms: 300,
        });
        let outbox = Outbox::new(
            store.clone(),
            Sinks::new().with(discord(&h)),
            wire_settings(),
        );
        let (_stop, rx) = ShutdownHandle::pair();
        let task = tokio::spawn(outbox.run(rx));
        for _ in 0..500 {
            if h.state().discord_messages(ALERTS).len() >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort(); // the process dies: no graceful stop
        let _ = task.await;
        drop(store);

        let store = open(&dir).await;
        let run = start(&store, Sinks::new().with(discord(&h)), wire_settings());
        let counts = drained(&store).await;
        run.stop().await;
        assert_eq!(counts[&DeliveryState::Sent], 50, "{counts:?}");
        assert_eq!(
            embed_titles(&h, ALERTS),
            a,
            "none lost, none doubled, in order"
        );
        assert_eq!(embed_titles(&h, SYSTEM), s);
        assert_eq!(
            h.state().stats.discord.rate_limited,
            0,
            "the restarted limiter starts cautious: the crash provokes no 429"
        );
        h.shutdown().await;
    }
}
