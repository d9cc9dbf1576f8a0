//! Read before speak: what the responder is given. The agent's persona
//! (`agents/<name>/SOUL.md`), its memory (`agents/<name>/MEMORY.md` and the
//! last entries of the fleet's memory log: the `memory_update` events it
//! recorded), the fleet's state as people read it (`STATUS.md`: agents,
//! locks, active tasks, mutes), and the conversation's last turns, within
//! a size budget: the oldest history goes first, then the memory log, the
//! memory and the status; the persona and the question always stay.

use std::path::Path;

use super::ports::{Prompt, PromptMessage, Role};
use super::turn::Exchange;

/// What a prompt is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub agent: String,
    pub persona: Option<String>,
    pub memory: Option<String>,
    pub memory_log: Vec<String>,
    pub status: Option<String>,
    pub history: Vec<Exchange>,
}

/// The files an agent reads before it answers, as they are now (a missing
/// or unreadable file is simply absent; one past `limit` bytes is cut).
pub fn read_files(
    workspace: &Path,
    agent: &str,
    limit: usize,
) -> (Option<String>, Option<String>, Option<String>) {
    let read = |p: &Path| -> Option<String> {
        let text = std::fs::read(p).ok()?;
        let text = String::from_utf8_lossy(&text[..text.len().min(limit)]).into_owned();
        (!text.trim().is_empty()).then_some(text)
    };
    let dir = workspace.join("agents").join(agent);
    (
        read(&dir.join("SOUL.md")),
        read(&dir.join("MEMORY.md")),
        read(&workspace.join("STATUS.md")),
    )
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Build the prompt for `question` (asked by `author`) within `budget` characters.
pub fn build(sources: &Sources, author: &str, question: &str, budget: usize) -> Prompt {
    let head = match &sources.persona {
        Some(p) => p.trim().to_string(),
        None => format!("You are {}, an agent of a chat-ops fleet.", sources.agent),
    };
    let question = format!("{author}: {question}");
    let fixed = chars(&head) + chars(&question);
    let mut left = budget.saturating_sub(fixed);
    // Sections in the order they are given up when the budget is short.
    let mut sections: Vec<String> = Vec::new();
    let take = |title: &str, text: &str, left: &mut usize| -> Option<String> {
        let block = format!("\n\n## {title}\n{}", text.trim());
        (chars(&block) <= *left).then(|| {
            *left -= chars(&block);
            block
        })
    };
    if let Some(s) = sources
        .status
        .as_deref()
        .and_then(|s| take("The fleet now (STATUS.md)", s, &mut left))
    {
        sections.push(s);
    }
    if let Some(m) = sources
        .memory
        .as_deref()
        .and_then(|m| take("Your memory (MEMORY.md)", m, &mut left))
    {
        sections.push(m);
    }
    // The newest log entries matter most: keep as many as fit, newest first.
    let mut log: Vec<&String> = Vec::new();
    let mut log_len = 0;
    for entry in sources.memory_log.iter().rev() {
        let n = chars(entry) + 3;
        if log_len + n + 40 > left {
            break;
        }
        log_len += n;
        log.push(entry);
    }
    if !log.is_empty() {
        log.reverse();
        let text = log
            .iter()
            .map(|e| format!("- {e}"))
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(s) = take("The fleet's memory log (latest)", &text, &mut left) {
            sections.push(s);
        }
    }
    // History: the newest exchanges that fit, in order.
    let mut history: Vec<&Exchange> = Vec::new();
    for ex in sources.history.iter().rev() {
        let n = chars(&ex.author) + chars(&ex.text) + chars(&ex.answer) + 2;
        if n > left {
            break;
        }
        left -= n;
        history.push(ex);
    }
    history.reverse();
    let mut messages = vec![PromptMessage {
        role: Role::System,
        content: format!("{head}{}", sections.concat()),
    }];
    for ex in history {
        messages.push(PromptMessage {
            role: Role::User,
            content: format!("{}: {}", ex.author, ex.text),
        });
        messages.push(PromptMessage {
            role: Role::Assistant,
            content: ex.answer.clone(),
        });
    }
    messages.push(PromptMessage {
        role: Role::User,
        content: question,
    });
    Prompt { messages }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(i: usize) -> Exchange {
        Exchange {
            author: "ana".into(),
            text: format!("question {i} {}", "x".repeat(80)),
            answer: format!("answer {i}"),
        }
    }

    #[test]
    fn the_persona_and_question_stay_and_the_oldest_history_goes_first() {
        let sources = Sources {
            agent: "tech-lead".into(),
            persona: Some("You are Tech-Lead.\nBe brief.".into()),
            memory: Some("We deploy on Fridays.".into()),
            memory_log: vec!["old entry".into(), "new entry".into()],
            status: Some("# Fleet status\n- manager: ready".into()),
            history: (0..50).map(ex).collect(),
        };
        let p = build(&sources, "ana", "what now?", 2_000);
        assert!(p.chars() <= 2_000, "{} chars", p.chars());
        let system = &p.messages[0].content;
        assert!(system.starts_with("You are Tech-Lead."));
        assert!(system.contains("manager: ready"));
        assert!(system.contains("We deploy on Fridays."));
        assert!(system.contains("new entry"));
        assert_eq!(p.messages.last().unwrap().content, "ana: what now?");
        // The newest exchange is there, the oldest is not.
        let all: String = p.messages.iter().map(|m| m.content.as_str()).collect();
        assert!(all.contains("question 49"));
        assert!(!all.contains("question 0 "));
        // Pairs of user/assistant between system and question.
        assert_eq!((p.messages.len() - 2) % 2, 0);
        assert!(p.messages.len() > 4);
    }

    #[test]
    fn a_tiny_budget_keeps_only_the_persona_and_the_question() {
        let sources = Sources {
            agent: "ops".into(),
            persona: None,
            memory: Some("m".repeat(500)),
            memory_log: vec![],
            status: Some("s".repeat(500)),
            history: (0..3).map(ex).collect(),
        };
        let p = build(&sources, "bo", "hi", 100);
        assert_eq!(p.messages.len(), 2);
        assert!(p.messages[0].content.contains("You are ops"));
        assert_eq!(p.messages[1].content, "bo: hi");
    }
}
