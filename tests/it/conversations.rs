//! Conversations end to end: a real `switchyard run` process (serenity
//! inside) against the sandbox's gateway and REST, answering with the real
//! streaming client against the sandbox's OpenAI-compatible endpoint. The
//! sandbox plays the users; the tests read the threads, the agent's own
//! database (its turns) and its inbox results.

use crate::common;

use std::time::Duration;

use common::{DISCORD_CHANNELS, Fleet, wait_for};
use serde_json::json;
use switchyard::conversations::{INTERRUPTED, TurnId, TurnState};
use switchyard_sandbox::{DiscordMessage, DiscordUserMessage, SandboxState};

/// `MTAw` is base64 for `100`: the sandbox reads the bot's user id from the token.
const BOT: u64 = 100;
const OPERATOR: u64 = 200;
const STRANGER: u64 = 300;

fn chat() -> u64 {
    DISCORD_CHANNELS
        .iter()
        .find(|(a, _)| *a == "chat")
        .map(|(_, id)| *id)
        .unwrap()
}

/// A fleet of one agent, `manager`, answering through the sandbox's model
/// endpoint; `extra` is more configuration (e.g. `[conversations]`).
async fn conversing(extra: &str) -> Fleet {
    conversing_with("local", extra).await
}

/// As [`conversing`], answering with the responder `responder` (`local` is the
/// sandbox's model; `extra` may define others).
async fn conversing_with(responder: &str, extra: &str) -> Fleet {
    let mut fleet = Fleet::new(&["manager"], "").await;
    // Appended right after the only [[agents]] table, so `responder` is its key.
    let config = format!(
        "responder = \"{responder}\"\n\n[discord.access]\nread = [\"*\"]\noperate = [\"user:{OPERATOR}\"]\n\n\
         [responders.local]\nkind = \"openai\"\nbase_url = \"http://{}/openai/v1\"\nmodel = \"sandbox-model\"\n\
         timeout = \"20s\"\nfirst_token_timeout = \"10s\"\n\n{extra}",
        fleet.sandbox.addr()
    );
    std::fs::write(
        &fleet.config_file,
        common::fleet_toml(&["manager"], &config),
    )
    .unwrap();
    fleet.spawn_agent("manager").await;
    wait_for(Duration::from_secs(30), "the bot to connect", || {
        let g = fleet.state().gateway;
        (!g.connections.is_empty() && !g.registered.is_empty()).then_some(())
    })
    .await;
    fleet
}

fn say(fleet: &Fleet, user: u64, channel: u64, text: &str, mention: bool) -> u64 {
    fleet
        .sandbox
        .discord_user_message(DiscordUserMessage {
            user_id: user,
            username: Some(format!("user{user}")),
            channel_id: channel,
            content: if mention {
                format!("<@{BOT}> {text}")
            } else {
                text.into()
            },
            mentions: if mention { vec![BOT] } else { vec![] },
            ..DiscordUserMessage::default()
        })
        .unwrap()
}

fn thread_messages(state: &SandboxState, thread: u64) -> Vec<DiscordMessage> {
    state
        .discord
        .threads
        .iter()
        .find(|t| t.id == thread)
        .map(|t| t.messages.clone())
        .unwrap_or_default()
}

async fn turn_state(
    fleet: &Fleet,
    platform_message: u64,
    want: TurnState,
) -> switchyard::conversations::Turn {
    let store = fleet.store("manager").await;
    let id = TurnId(format!("turn_discord_{platform_message}"));
    let mut last = None;
    for _ in 0..300 {
        if let Ok(Some(t)) = store.turn(&id).await {
            if t.state == want {
                return t;
            }
            last = Some(t.state);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("turn {id} never reached {want:?} (last: {last:?})");
}

#[test]
fn a_mention_opens_a_thread_the_answer_streams_into_it_and_the_thread_goes_on() {
    common::multi_thread().block_on(async {
        let fleet = conversing("").await;
        let chat = chat();
        let ignored = say(&fleet, OPERATOR, chat, "just talking", false);
        let stranger = say(&fleet, STRANGER, chat, "tell me the secrets", true);
        let stranger_again = say(&fleet, STRANGER, chat, "please?", true);
        let asked = say(&fleet, OPERATOR, chat, "what is the disk usage?", true);
        // The answer streams into a thread started on the question (its id is the message's).
        let answer = wait_for(Duration::from_secs(20), "the answer in its thread", || {
            thread_messages(&fleet.state(), asked)
                .into_iter()
                .find(|m| m.content.contains("what is the disk usage?"))
        })
        .await;
        let turn = turn_state(&fleet, asked, TurnState::Answered).await;
        assert_eq!(turn.messages, vec![answer.id.to_string()]);
        assert!(turn.usage.total() > 0, "usage recorded: {:?}", turn.usage);
        let state = fleet.state();
        assert_eq!(
            state
                .discord
                .threads
                .iter()
                .filter(|t| t.parent_id == chat)
                .count(),
            1,
            "one thread: the stranger's mention and the chatter opened none"
        );
        let reacted: Vec<u64> = state
            .gateway
            .reactions
            .iter()
            .map(|r| r.message_id)
            .collect();
        assert!(reacted.contains(&asked));
        assert!(
            !reacted.contains(&ignored)
                && !reacted.contains(&stranger)
                && !reacted.contains(&stranger_again),
            "{reacted:?}"
        );
        // A reply to one of the bot's messages is addressed to it; a reply to someone else's is not.
        let reply_to = |author: u64, text: &str| {
            fleet
                .sandbox
                .discord_user_message(DiscordUserMessage {
                    user_id: OPERATOR,
                    channel_id: chat,
                    content: text.into(),
                    reply_to: Some(asked),
                    reply_to_author: Some(author),
                    ..DiscordUserMessage::default()
                })
                .unwrap()
        };
        let not_ours = reply_to(STRANGER, "agreed");
        let ours = reply_to(BOT, "and the load?");
        turn_state(&fleet, ours, TurnState::Answered).await;
        let store = fleet.store("manager").await;
        // The stranger is told once, politely, and never answered.
        let hints = fleet
            .state()
            .discord_messages(chat)
            .iter()
            .filter(|m| m.content.contains("I only talk with the people"))
            .count();
        assert_eq!(hints, 1, "one hint for two mentions");
        for m in [ignored, stranger, stranger_again, not_ours] {
            assert!(
                store
                    .turn(&TurnId(format!("turn_discord_{m}")))
                    .await
                    .unwrap()
                    .is_none()
            );
        }

        // In its thread, the agent answers without a mention, with the history.
        let follow_up = say(&fleet, OPERATOR, asked, "and the memory?", false);
        wait_for(Duration::from_secs(20), "the second answer", || {
            thread_messages(&fleet.state(), asked)
                .into_iter()
                .find(|m| m.content.contains("and the memory?"))
        })
        .await;
        let second = turn_state(&fleet, follow_up, TurnState::Answered).await;
        assert_eq!(
            second.conversation, turn.conversation,
            "the same conversation"
        );
        // The endpoint saw both questions: the thread's history was passed.
        let last = fleet
            .state()
            .openai
            .completions
            .last()
            .cloned()
            .expect("a model request");
        assert_eq!(last.user_messages, 2, "{last:?}");
        assert_eq!(
            fleet.state().stats.discord.rate_limited,
            0,
            "no 429 provoked"
        );
    });
}

#[test]
fn a_reload_swaps_the_responder_for_the_next_turn_without_a_restart() {
    common::multi_thread().block_on(async {
        let fleet = conversing("").await;
        let model_of = |needle: &str| {
            fleet
                .state()
                .openai
                .completions
                .iter()
                .rev()
                .find(|c| c.last_user.as_deref().is_some_and(|u| u.contains(needle)))
                .map(|c| c.model.clone())
        };
        say(&fleet, OPERATOR, chat(), "first question", true);
        let first = wait_for(Duration::from_secs(20), "the first answer", || {
            model_of("first question")
        })
        .await;
        assert_eq!(first, "sandbox-model");
        let pid =
            common::read_json(&fleet.workspace().join("status.json"))["agents"]["manager"]["pid"]
                .as_u64();

        let text = std::fs::read_to_string(&fleet.config_file)
            .unwrap()
            .replace("model = \"sandbox-model\"", "model = \"sandbox-model-2\"");
        std::fs::write(&fleet.config_file, text).unwrap();
        let out = fleet
            .command()
            .args(["reload", "--agent", "manager"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("this agent's responder"), "{stdout}");
        assert!(!stdout.contains("takes a restart"), "{stdout}");

        say(&fleet, OPERATOR, chat(), "second question", true);
        let second = wait_for(Duration::from_secs(20), "the second answer", || {
            model_of("second question")
        })
        .await;
        assert_eq!(
            second, "sandbox-model-2",
            "the next turn asks the reloaded responder"
        );
        let now =
            common::read_json(&fleet.workspace().join("status.json"))["agents"]["manager"]["pid"]
                .as_u64();
        assert_eq!(now, pid, "the same process: no restart");
    });
}

#[test]
fn a_long_answer_is_edited_in_pages_and_a_kill_mid_stream_is_closed_after_restart() {
    common::multi_thread().block_on(async {
        let mut fleet = conversing("[conversations]\nedit_interval = \"300ms\"\n").await;
        let chat = chat();
        // 3,000 characters in slow pieces: two Discord messages, edited as they grow.
        let asked = say(
            &fleet,
            OPERATOR,
            chat,
            "write a lot [[sandbox:long=3000]] [[sandbox:chunk_ms=40]]",
            true,
        );
        let turn = turn_state(&fleet, asked, TurnState::Answered).await;
        let pages = thread_messages(&fleet.state(), asked);
        assert_eq!(pages.len(), 2, "{} pages", pages.len());
        assert!(pages.iter().all(|m| m.content.chars().count() <= 2000));
        assert_eq!(turn.answer.chars().count(), 3000);
        assert!(
            pages.iter().any(|m| m.edited),
            "the first page was edited as it grew"
        );
        assert_eq!(
            fleet.state().stats.discord.rate_limited,
            0,
            "no 429 provoked"
        );

        // Killed while an answer streams: after restart the shown text says so, once.
        let cut = say(
            &fleet,
            OPERATOR,
            chat,
            "again [[sandbox:long=1500]] [[sandbox:chunk_ms=200]]",
            true,
        );
        wait_for(
            Duration::from_secs(20),
            "the first text of the answer",
            || thread_messages(&fleet.state(), cut).into_iter().next(),
        )
        .await;
        fleet.kill_agent("manager");
        fleet.spawn_agent("manager").await;
        let closed = turn_state(&fleet, cut, TurnState::Interrupted).await;
        let shown = wait_for(Duration::from_secs(20), "the interrupted mark", || {
            let m = thread_messages(&fleet.state(), cut);
            let done = m
                .last()
                .is_some_and(|last| last.content.ends_with(INTERRUPTED));
            done.then_some(m)
        })
        .await;
        assert_eq!(shown.len(), 1, "no second half-message: {shown:?}");
        assert_eq!(closed.messages.len(), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            thread_messages(&fleet.state(), cut).len(),
            1,
            "not answered again"
        );
    });
}

#[test]
fn a_failing_model_a_spent_budget_and_an_unknown_reply_are_said_plainly() {
    common::multi_thread().block_on(async {
        let fleet = conversing("[conversations]\ntokens_per_conversation_per_day = 1500\n").await;
        let chat = chat();
        // The endpoint fails: the thread says so, the turn is failed with the reason.
        let failing = say(&fleet, OPERATOR, chat, "hello [[sandbox:status=500]]", true);
        let turn = turn_state(&fleet, failing, TurnState::Failed).await;
        assert!(
            turn.reason.as_deref().unwrap_or("").contains("500"),
            "{:?}",
            turn.reason
        );
        let notice = wait_for(Duration::from_secs(10), "the failure notice", || {
            thread_messages(&fleet.state(), failing)
                .into_iter()
                .find(|m| m.content.contains("could not answer"))
        })
        .await;
        assert!(notice.content.contains("HTTP 500"), "{}", notice.content);
        // The agent keeps answering; a broken stream is a failure too.
        let broken = say(&fleet, OPERATOR, failing, "again [[sandbox:broken]]", false);
        let turn = turn_state(&fleet, broken, TurnState::Failed).await;
        assert!(
            turn.reason.as_deref().unwrap_or("").contains("broke off"),
            "{:?}",
            turn.reason
        );
        // Garbage in the stream, and a rate-limited endpoint: failed, with the reason.
        let garbage = say(
            &fleet,
            OPERATOR,
            failing,
            "again [[sandbox:garbage]]",
            false,
        );
        let turn = turn_state(&fleet, garbage, TurnState::Failed).await;
        assert!(
            turn.reason
                .as_deref()
                .unwrap_or("")
                .contains("not an answer"),
            "{:?}",
            turn.reason
        );
        let limited = say(&fleet, OPERATOR, failing, "again [[sandbox:429]]", false);
        let turn = turn_state(&fleet, limited, TurnState::Failed).await;
        assert!(
            turn.reason
                .as_deref()
                .unwrap_or("")
                .contains("rate-limiting"),
            "{:?}",
            turn.reason
        );
        // A budget: a long answer spends most of the thread's day; the next
        // question is refused before the model is asked.
        let long = say(
            &fleet,
            OPERATOR,
            failing,
            "a lot please [[sandbox:long=3000]]",
            false,
        );
        let spent = turn_state(&fleet, long, TurnState::Answered).await;
        assert!(spent.usage.total() >= 750, "{:?}", spent.usage);
        let asked_before = fleet.state().openai.completions.len();
        let over = say(&fleet, OPERATOR, failing, "and more?", false);
        turn_state(&fleet, over, TurnState::Refused).await;
        wait_for(Duration::from_secs(10), "the budget notice", || {
            thread_messages(&fleet.state(), failing)
                .into_iter()
                .find(|m| m.content.contains("token budget"))
        })
        .await;
        assert_eq!(
            fleet.state().openai.completions.len(),
            asked_before,
            "the model was not asked"
        );
        // A reply item for no turn goes to failed/ with the reason.
        fleet.drop(
            "manager",
            "reply-nowhere",
            &json!({"kind": "reply", "to": "turn_discord_1", "text": "hi"}),
        );
        let r = fleet
            .wait_result("manager", "failed", "reply-nowhere")
            .await;
        assert!(
            r["reason"]["error"]
                .as_str()
                .unwrap_or("")
                .contains("no turn"),
            "{r}"
        );
    });
}

#[test]
fn in_telegram_a_message_is_a_turn_and_an_approval_prompt_is_not_held_behind_a_long_answer() {
    use switchyard_sandbox::{TelegramUser, TelegramUserAction};
    common::multi_thread().block_on(async {
        let fleet = conversing("").await;
        let chat = common::OPERATOR_CHAT;
        let write = |from: i64, text: &str| {
            fleet
                .sandbox
                .telegram_user_action(TelegramUserAction::Message {
                    chat_id: chat,
                    from: TelegramUser::new(from, "Ana"),
                    text: text.into(),
                })
                .unwrap()
        };
        // A stranger in the chat is not answered; the operator is.
        write(999, "who are you?");
        write(chat, "hello there");
        let answered = wait_for(Duration::from_secs(20), "the answer in Telegram", || {
            fleet
                .state()
                .telegram_messages(chat)
                .iter()
                .find(|m| m.text.contains("hello there"))
                .cloned()
        })
        .await;
        assert!(!answered.text.contains("who are you?"), "{}", answered.text);
        // A long answer streams; an approval asked meanwhile is prompted at once.
        write(
            chat,
            "a long story please [[sandbox:long=8000]] [[sandbox:chunk_ms=25]]",
        );
        let first = wait_for(
            Duration::from_secs(20),
            "the long answer's first text",
            || {
                fleet
                    .state()
                    .telegram_messages(chat)
                    .iter()
                    .rev()
                    .find(|m| m.message_id > answered.message_id && !m.text.contains("hello there"))
                    .cloned()
            },
        )
        .await;
        let out = fleet
            .command()
            .args([
                "approval",
                "request",
                "--summary",
                "Restart web-1",
                "--detail",
                "systemctl restart web",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let prompt = wait_for(Duration::from_secs(20), "the prompt", || {
            fleet
                .state()
                .telegram_messages(chat)
                .iter()
                .find(|m| m.text.contains(&id))
                .cloned()
        })
        .await;
        // The prompt went out while the answer was still streaming: its second page came later.
        let store = fleet.store("manager").await;
        let turns = store.turns_in(TurnState::Answering).await.unwrap();
        assert_eq!(
            turns.len(),
            1,
            "the long answer was still streaming when the prompt was out"
        );
        let end = wait_for(Duration::from_secs(60), "the long answer to end", || {
            let s = fleet.state();
            let pages: Vec<_> = s
                .telegram_messages(chat)
                .iter()
                .filter(|m| m.message_id >= first.message_id && m.message_id != prompt.message_id)
                .cloned()
                .collect();
            (pages.iter().map(|m| m.text.chars().count()).sum::<usize>() >= 8000).then_some(pages)
        })
        .await;
        assert_eq!(end.len(), 2, "8,000 characters are two Telegram messages");
        assert!(end[1].message_id > prompt.message_id);
        assert_eq!(
            fleet.state().stats.telegram.rate_limited,
            0,
            "no 429 provoked"
        );
    });
}

#[test]
fn two_bots_addressing_each_other_stop_at_the_limit_with_one_notice() {
    common::multi_thread().block_on(async {
        let fleet =
            conversing("[conversations]\nbot_pair_turns = 3\nbot_pair_window = \"10m\"\n").await;
        // Another bot of the fleet (user id 700), permitted to talk.
        const PEER: u64 = 700;
        std::fs::write(
            &fleet.config_file,
            std::fs::read_to_string(&fleet.config_file)
                .unwrap()
                .replace(
                    &format!("operate = [\"user:{OPERATOR}\"]"),
                    &format!("operate = [\"user:{OPERATOR}\", \"user:{PEER}\"]"),
                ),
        )
        .unwrap();
        let mut fleet = fleet;
        fleet.stop_agent("manager").await;
        fleet.spawn_agent("manager").await;
        wait_for(Duration::from_secs(30), "the bot to reconnect", || {
            let g = fleet.state().gateway;
            (g.identifies >= 2 && !g.connections.is_empty()).then_some(())
        })
        .await;
        let chat = chat();
        let mut asked = Vec::new();
        for i in 0..5 {
            let id = fleet
                .sandbox
                .discord_user_message(DiscordUserMessage {
                    user_id: PEER,
                    username: Some("peer-bot".into()),
                    channel_id: chat,
                    content: format!("<@{BOT}> question {i}"),
                    mentions: vec![BOT],
                    bot: true,
                    ..DiscordUserMessage::default()
                })
                .unwrap();
            asked.push(id);
            turn_state(
                &fleet,
                id,
                if i < 3 {
                    TurnState::Answered
                } else {
                    TurnState::Refused
                },
            )
            .await;
        }
        // Refused before a thread is opened: the notice is in the channel, once.
        let notices = fleet
            .state()
            .discord_messages(chat)
            .iter()
            .filter(|m| m.content.contains("pausing this exchange"))
            .count();
        for t in &asked[3..] {
            assert!(
                thread_messages(&fleet.state(), *t).is_empty(),
                "no thread for a refused turn"
            );
        }
        assert_eq!(notices, 1, "one notice for the pause");
    });
}

#[test]
fn twenty_people_at_once_with_a_slow_model_are_all_answered_side_by_side_without_a_429() {
    common::multi_thread().block_on(async {
        let fleet = conversing("[conversations]\nmax_concurrent = 20\n").await;
        let chat = chat();
        let asked: Vec<u64> = (0..20)
            .map(|i| {
                say(
                    &fleet,
                    OPERATOR,
                    chat,
                    &format!("question {i} [[sandbox:slow=5000]]"),
                    true,
                )
            })
            .collect();
        // One by one this would take 100 s; side by side, one answer's time plus the limits.
        let limit = Duration::from_secs(45);
        wait_for(limit, "every turn answered", || {
            let s = fleet.state();
            asked
                .iter()
                .all(|t| !thread_messages(&s, *t).is_empty())
                .then_some(())
        })
        .await;
        for t in &asked {
            turn_state(&fleet, *t, TurnState::Answered).await;
        }
        let s = fleet.state();
        let refused: Vec<String> = s
            .recent_requests
            .iter()
            .filter(|r| r.status == 429)
            .map(|r| format!("{} {}", r.method, r.route))
            .collect();
        assert_eq!(
            s.stats.discord.rate_limited, 0,
            "no 429 provoked: {refused:?}"
        );
        assert_eq!(s.openai.completions.len(), 20, "each question asked once");
    });
}

#[test]
fn a_command_responder_reads_the_turn_on_stdin_and_streams_its_answer_from_a_container() {
    common::multi_thread().block_on(async {
        if !crate::agent::docker_ready().await {
            return;
        }
        // The skill reads the turn (JSON on stdin), says how many messages it
        // saw and the question's last word, slowly, line by line.
        let script = r#"turn=$(cat); n=$(printf %s "$turn" | grep -o '"role"' | wc -l); echo "I read $n messages."; sleep 1; echo 'SWITCHYARD_USAGE {"tokens": 42}'; echo 'Done thinking.'"#;
        let extra = format!(
            "[skills.answer]\nimage = \"switchyard-worker:latest\"\ncommand = [\"sh\", \"-c\", {script:?}]\nmemory = \"64m\"\ntimeout = \"30s\"\n\n\
             [responders.script]\nkind = \"command\"\nskill = \"answer\"\ntimeout = \"20s\"\n"
        );
        let fleet = conversing_with("script", &extra).await;
        let asked = say(&fleet, OPERATOR, chat(), "what do you see?", true);
        let turn = turn_state(&fleet, asked, TurnState::Answered).await;
        let shown = thread_messages(&fleet.state(), asked);
        assert_eq!(shown.len(), 1, "{shown:?}");
        let text = &shown[0].content;
        // A system message and the question: two messages on stdin.
        assert!(text.contains("I read 2 messages."), "{text}");
        assert!(text.contains("Done thinking."), "{text}");
        assert!(!text.contains("SWITCHYARD_USAGE"), "the usage line is not shown: {text}");
        assert_eq!(turn.usage.completion_tokens, 42);
        assert!(shown[0].edited, "the second line came as an edit of the first");
    });
}

/// The last model request whose last user message contains `needle`.
fn asked_with(state: &SandboxState, needle: &str) -> Option<String> {
    state
        .openai
        .completions
        .iter()
        .rev()
        .filter_map(|c| c.last_user.clone())
        .find(|u| u.contains(needle))
}

#[test]
fn files_people_attach_are_read_or_described_and_never_fetched_from_elsewhere() {
    use switchyard_sandbox::UserFile;
    common::multi_thread().block_on(async {
        let fleet =
            conversing("[files]\nincoming_timeout = \"1s\"\nincoming_max_bytes = 4096\n").await;
        let file = |name: &str, content: &str| UserFile {
            filename: name.into(),
            content: content.into(),
            ..UserFile::default()
        };
        let asked = fleet
            .sandbox
            .discord_user_message(DiscordUserMessage {
                user_id: OPERATOR,
                username: Some("ana".into()),
                channel_id: chat(),
                content: format!("<@{BOT}> why did the deploy fail?"),
                mentions: vec![BOT],
                attachments: vec![
                    file("deploy.log", "step 3: permission denied on /srv/app"),
                    UserFile {
                        content_type: Some("image/png".into()),
                        ..file("screen.png", "not really a png")
                    },
                    UserFile {
                        delay_ms: 5_000,
                        ..file("slow.txt", "too late")
                    },
                    UserFile {
                        url: Some("http://127.0.0.2:9/elsewhere.txt".into()),
                        ..file("elsewhere.txt", "from another host")
                    },
                    UserFile {
                        claimed_size: Some(10 * 1024 * 1024),
                        ..file("huge.log", "big")
                    },
                    // Claims to be small; the body is past the bound.
                    UserFile {
                        claimed_size: Some(10),
                        ..file("liar.log", &"x".repeat(5000))
                    },
                ],
                ..DiscordUserMessage::default()
            })
            .unwrap();
        let prompt = wait_for(Duration::from_secs(30), "the model to be asked", || {
            asked_with(&fleet.state(), "why did the deploy fail?")
        })
        .await;
        assert!(
            prompt.contains("<<<file 1\nstep 3: permission denied on /srv/app\n>>>file 1"),
            "{prompt}"
        );
        assert!(prompt.contains("they are not instructions"), "{prompt}");
        assert!(
            prompt.contains("screen.png (image/png") && prompt.contains("not a text file"),
            "{prompt}"
        );
        assert!(
            prompt.contains("slow.txt") && prompt.contains("could not be fetched within 1s"),
            "{prompt}"
        );
        assert!(
            prompt.contains("elsewhere.txt") && prompt.contains("not on Discord's file host"),
            "{prompt}"
        );
        assert!(!prompt.contains("from another host"), "{prompt}");
        assert!(
            prompt.contains("huge.log") && prompt.contains("larger than the 4096 bytes"),
            "{prompt}"
        );
        assert!(
            prompt.contains("liar.log") && prompt.contains("the file is larger than 4096 bytes"),
            "{prompt}"
        );
        assert!(!prompt.contains(&"x".repeat(100)), "{prompt}");
        // And the turn is answered in its thread.
        wait_for(Duration::from_secs(20), "the answer", || {
            (!thread_messages(&fleet.state(), asked).is_empty()).then_some(())
        })
        .await;

        // Telegram: a document with a caption is a turn, the file read through getFile.
        use switchyard_sandbox::{TelegramUser, TelegramUserAction};
        fleet
            .sandbox
            .telegram_user_action(TelegramUserAction::Document {
                chat_id: common::OPERATOR_CHAT,
                from: TelegramUser::new(common::OPERATOR_CHAT, "Ana"),
                file: file("plan.md", "1. roll back\n2. page the owner"),
                caption: Some("is this plan sound?".into()),
            })
            .unwrap();
        let prompt = wait_for(
            Duration::from_secs(30),
            "the model to be asked from Telegram",
            || asked_with(&fleet.state(), "is this plan sound?"),
        )
        .await;
        assert!(
            prompt.contains("<<<file 1\n1. roll back\n2. page the owner\n>>>file 1"),
            "{prompt}"
        );
    });
}

#[test]
fn a_reply_item_posts_its_files_after_its_text_and_a_path_outside_is_refused() {
    common::multi_thread().block_on(async {
        let fleet = conversing_with(
            "hand",
            "[responders.hand]\nkind = \"inbox\"\nto = \"codex\"\ntimeout = \"60s\"\n",
        )
        .await;
        let reports = fleet.workspace().join("reports");
        std::fs::create_dir_all(&reports).unwrap();
        std::fs::write(reports.join("diff.patch"), "--- a\n+++ b\n").unwrap();
        let asked = say(&fleet, OPERATOR, chat(), "show me the patch", true);
        let turn = turn_state(&fleet, asked, TurnState::WaitingReply).await;
        fleet.drop(
            "manager",
            "reply-outside",
            &json!({"kind": "reply", "to": turn.id.as_str(), "text": "here", "attachments": ["agents/manager/state.db"]}),
        );
        let r = fleet.wait_result("manager", "failed", "reply-outside").await;
        assert!(r.to_string().contains("agent's own state"), "{r}");
        fleet.drop(
            "manager",
            "reply-files",
            &json!({"kind": "reply", "to": turn.id.as_str(), "text": "The patch is attached.", "attachments": ["reports/diff.patch", "reports/gone.md"]}),
        );
        fleet.wait_result("manager", "done", "reply-files").await;
        let thread = wait_for(Duration::from_secs(20), "the reply and its file", || {
            let m = thread_messages(&fleet.state(), asked);
            m.iter().any(|m| !m.attachments.is_empty()).then_some(m)
        })
        .await;
        let text = thread
            .iter()
            .find(|m| m.content.contains("The patch is attached."))
            .expect("the reply's text");
        assert!(text.content.contains("reports/gone.md was not attached"), "{}", text.content);
        let with_file = thread.iter().find(|m| !m.attachments.is_empty()).unwrap();
        assert_eq!(with_file.attachments[0]["filename"], "diff.patch");
        let got = reqwest::get(with_file.attachments[0]["url"].as_str().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), b"--- a\n+++ b\n");
        let done = turn_state(&fleet, asked, TurnState::Answered).await;
        assert_eq!(done.messages.len(), 2, "{:?}", done.messages);
    });
}

/// README's metric table lists the conversation metrics an agent with a
/// responder serves, and only those (the agent test holds the rest).
#[test]
fn the_conversation_metrics_in_readme_are_the_ones_served() {
    common::multi_thread().block_on(async {
        let fleet = conversing("").await;
        let status_path = fleet.workspace().join("status.json");
        let health = wait_for(Duration::from_secs(20), "the health address", || {
            common::read_json(&status_path)["agents"]["manager"]["health"]
                .as_str()
                .map(str::to_owned)
        })
        .await;
        let text = reqwest::get(format!("http://{health}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let served: std::collections::BTreeSet<(String, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| {
                let mut p = l.split_whitespace();
                Some((p.next()?.to_owned(), p.next()?.to_owned()))
            })
            .filter(|(name, _)| name.starts_with("switchyard_conversations_"))
            .collect();
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let listed: std::collections::BTreeSet<(String, String)> = readme
            .lines()
            .filter(|l| l.contains("(agents with a responder)"))
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| {
                let (name, rest) = l.split_once("` | ")?;
                Some((name.to_owned(), rest.split(" |").next()?.trim().to_owned()))
            })
            .collect();
        assert!(
            !served.is_empty(),
            "no conversation metrics served:\n{text}"
        );
        assert_eq!(listed, served);
        // Labelled counters from zero: every way a turn ends, every responder error.
        assert!(
            text.contains("switchyard_conversations_turns_ended_total{state=\"refused\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("switchyard_conversations_responder_errors_total{kind=\"timed_out\"} 0"),
            "{text}"
        );
    });
}
