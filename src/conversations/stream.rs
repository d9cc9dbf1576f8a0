//! Streaming an answer into the platform: the typing indicator while
//! nothing has arrived, the first text posted as soon as it arrives, then
//! the same message edited as text streams in (no more often than the edit
//! interval), continued in a new message past the platform's length. What
//! is shown is written to the turn's record as it is shown, so a crash
//! leaves a record of exactly what people saw.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::ports::{ChatPort, PortError};
use super::turn::{Place, TurnId};
use crate::store::Store;

/// What was shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    /// The platform messages, in order.
    pub messages: Vec<String>,
    /// The text of each message as last shown.
    pub pages: Vec<String>,
    pub edits: u32,
}

impl Shown {
    pub fn text(&self) -> String {
        self.pages.concat()
    }
}

/// Cut `text` into pages of at most `max` characters, at a line break or a
/// space in a page's last fifth when there is one.
pub fn pages(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let end = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..end];
        let floor = rest.char_indices().nth(max * 4 / 5).map_or(0, |(i, _)| i);
        let cut = window[floor..]
            .rfind('\n')
            .or_else(|| window[floor..].rfind(' '))
            .map_or(end, |i| floor + i + 1);
        out.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// The key that makes a page's post happen once, also across a crash
/// (Discord's nonce): a restart finds the page posted before it died.
pub fn page_key(turn: &TurnId, page: usize) -> String {
    format!("{turn}#{page}")
}

/// Pacing of one streamed answer.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub edit_interval: Duration,
    pub typing_interval: Duration,
}

/// Show what arrives on `rx` in `place` until the sender is dropped.
/// Returns what was shown (also when a platform call failed: then with the
/// error, and what was shown before it).
pub async fn stream_answer(
    port: &dyn ChatPort,
    place: &Place,
    rx: &mut mpsc::Receiver<String>,
    pace: Pace,
    record: (&Store, &TurnId),
) -> (Shown, Option<PortError>) {
    let mut shown = Shown::default();
    let mut full = String::new();
    let max = port.max_chars();
    // Typing until the first text.
    let mut next_typing = Instant::now();
    loop {
        if Instant::now() >= next_typing {
            if let Err(e) = port.typing(place).await {
                warn!(place = %place, error = %e, "could not show the typing indicator");
            }
            next_typing = Instant::now() + pace.typing_interval;
        }
        tokio::select! {
            piece = rx.recv() => match piece {
                Some(p) => {
                    full.push_str(&p);
                    if !full.trim().is_empty() {
                        break;
                    }
                }
                None => return (shown, None),
            },
            _ = tokio::time::sleep_until(next_typing) => {}
        }
    }
    let mut last_edit;
    let mut open = true;
    loop {
        if let Err(e) = show(port, place, &full, max, &mut shown, !open, record.1).await {
            return (shown, Some(e));
        }
        last_edit = Instant::now();
        if let Err(e) = record
            .0
            .turn_progress(record.1, &shown.text(), &shown.messages)
            .await
        {
            warn!(turn = %record.1, error = format!("{e:#}"), "could not record what was shown");
        }
        if !open {
            return (shown, None);
        }
        // Gather what arrives until the next edit is due (or the stream ends).
        let due = last_edit + pace.edit_interval;
        loop {
            tokio::select! {
                piece = rx.recv() => match piece {
                    Some(p) => full.push_str(&p),
                    None => { open = false; break; }
                },
                _ = tokio::time::sleep_until(due) => break,
            }
        }
    }
}

/// Make the platform show `full`: post pages not posted yet, edit the ones
/// whose text changed. `last`: the final state (edits wait their turn like
/// any message instead of yielding).
async fn show(
    port: &dyn ChatPort,
    place: &Place,
    full: &str,
    max: usize,
    shown: &mut Shown,
    last: bool,
    turn: &TurnId,
) -> Result<(), PortError> {
    let wanted = pages(full, max);
    for (i, page) in wanted.iter().enumerate() {
        if page.trim().is_empty() {
            continue;
        }
        match shown.pages.get(i) {
            None => {
                let id = port.post(place, page, Some(&page_key(turn, i))).await?;
                shown.messages.push(id);
                shown.pages.push(page.clone());
            }
            Some(old) if old != page => {
                // A page that is complete (another follows) takes its final form now.
                let yielding = !last && i + 1 == wanted.len();
                port.edit(place, &shown.messages[i], page, yielding).await?;
                shown.pages[i] = page.clone();
                shown.edits += 1;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_every_character_and_respect_the_limit() {
        let text: String = (0..700).map(|i| format!("word{i} ")).collect();
        let p = pages(&text, 2000);
        assert!(p.len() >= 2);
        assert!(p.iter().all(|x| x.chars().count() <= 2000));
        assert_eq!(p.concat(), text);
        // Cut at a space, not inside a word.
        assert!(p[0].ends_with(' '));
        let one = pages("short", 2000);
        assert_eq!(one, vec!["short".to_string()]);
        let dense = "é".repeat(4500);
        let d = pages(&dense, 2000);
        assert_eq!(
            d.iter().map(|x| x.chars().count()).collect::<Vec<_>>(),
            vec![2000, 2000, 500]
        );
    }
}
