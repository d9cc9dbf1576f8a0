//! Mutes in a running agent: the notices when a mute is made and before it
//! ends (the announcer posts them), and the digests of held messages, when a
//! mute ends or a digest window closes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use switchyard_routing::{
    Category, Destination, Event, HeldSummary, Hold, MuteId, TITLES_PAGE_CHARS, title_pages,
};
use tracing::info;

use super::Shared;
use crate::coord::off_worker;
use crate::store::HeldDigest;

/// Announce mutes (the fleet's first agent does that, once per mute) and
/// post the "while muted" digest of this agent's held messages when a mute ends.
pub(super) async fn mute_lifecycle(
    shared: &Shared,
    status: &crate::coord::Status,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let mutes = &status.mutes;
    let lead = shared.routing.get().settings.mute_notice_lead;
    if shared.is_announcer(status) && crate::coord::mutes::any_notice_due(status, now, lead) {
        let due = off_worker(|| crate::coord::mutes::due_notices(&shared.status, now, lead))?;
        for (mute, notice) in due {
            let dest = crate::coord::mutes::notice_destination(&shared.config, &mute.target);
            let (title, body) = notice.text(&mute, now);
            shared
                .store
                .enqueue_notice(
                    &dest,
                    &title,
                    &body,
                    switchyard_routing::Severity::Info,
                    now,
                )
                .await?;
            shared.outbox.wake();
        }
    }
    let active: std::collections::BTreeSet<&MuteId> = mutes
        .iter()
        .filter(|m| m.expires_at > now)
        .map(|m| &m.id)
        .collect();
    for hold in shared.store.holds().await? {
        if let Hold::Mute(id) = &hold
            && !active.contains(id)
        {
            post_held_digest(shared, &hold, "While muted", now).await?;
        }
    }
    Ok(())
}

async fn post_held_digest(
    shared: &Shared,
    hold: &Hold,
    header: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let released = shared
        .store
        .release_held_with(hold, now, |released| held_digests(header, released))
        .await?;
    if !released.is_empty() {
        info!(hold = %hold, count = released.len(), "posted the digest of held messages");
    }
    shared.outbox.wake();
    Ok(())
}

/// The digests of released messages, per destination: the counts, then
/// every title (pages of follow-ups when one message cannot hold them), as
/// the most important category among them, so held alerts come back as an
/// alert, never as an ambient notice that could be coalesced away.
fn held_digests(header: &str, released: &[(Destination, Event)]) -> Vec<HeldDigest> {
    let mut by_dest: BTreeMap<&Destination, Vec<Event>> = BTreeMap::new();
    for (dest, ev) in released {
        by_dest.entry(dest).or_default().push(ev.clone());
    }
    let mut out = Vec::new();
    for (dest, events) in by_dest {
        let total = events.len();
        let counts = HeldSummary {
            last_titles: Vec::new(),
            ..HeldSummary::from_events(&events)
        }
        .render_text("")
        .trim_start()
        .to_string();
        let severity = events.iter().map(|e| e.severity).max().unwrap_or_default();
        let category = most_important(&events);
        let titles: Vec<&str> = events.iter().map(|e| e.title.as_str()).collect();
        // A digest carries no files: it names those the held messages had,
        // which stay in the workspace.
        let files: Vec<String> = events
            .iter()
            .flat_map(|e| e.attachments.iter().map(|p| p.to_string()))
            .collect();
        let files_note = match files.len() {
            0 => String::new(),
            n => {
                let shown: Vec<&str> = files.iter().take(10).map(String::as_str).collect();
                let more = if n > 10 {
                    format!(" and {} more", n - 10)
                } else {
                    String::new()
                };
                format!(
                    "\n📎 Files of these messages, not sent with the digest (they stay in the workspace): {}{more}",
                    shown.join(", ")
                )
            }
        };
        let pages = title_pages(&titles, TITLES_PAGE_CHARS);
        let n = pages.len();
        let mut shown = 0;
        for (i, page) in pages.into_iter().enumerate() {
            let from = shown + 1;
            shown += page.len();
            let part = if n > 1 {
                format!(" ({}/{n})", i + 1)
            } else {
                String::new()
            };
            let head = if i == 0 {
                format!("{counts}\n")
            } else {
                String::new()
            };
            out.push(HeldDigest {
                destination: dest.clone(),
                category: category.clone(),
                title: format!("{header}: {total} message(s) for {dest}{part}"),
                body: format!(
                    "{head}Titles {from}–{shown} of {total}:\n{}{}",
                    page.join("\n"),
                    if i == 0 { files_note.as_str() } else { "" }
                ),
                severity,
            });
        }
    }
    out
}

/// The category a digest of `events` goes out as: what a human must act on
/// first, then alerts, else the first event's.
fn most_important(events: &[Event]) -> Category {
    [Category::ActionRequired, Category::Alert]
        .into_iter()
        .find(|c| events.iter().any(|e| &e.category == c))
        .or_else(|| events.first().map(|e| e.category.clone()))
        .unwrap_or(Category::System)
}

/// Ambient categories configured under `[routing.digest]` are held for their
/// window, then posted as one message.
pub(super) async fn digest_windows(
    shared: &Shared,
    due: &mut BTreeMap<Category, Instant>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    for hold in shared.store.holds().await? {
        let Hold::Digest(category) = &hold else {
            continue;
        };
        let window = shared
            .config
            .routing
            .digest
            .get(category)
            .copied()
            .unwrap_or(Duration::ZERO);
        let at = *due
            .entry(category.clone())
            .or_insert_with(|| Instant::now() + window);
        if Instant::now() >= at {
            due.remove(category);
            post_held_digest(shared, &hold, &format!("Digest of {category}"), now).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_routing::EventDraft;

    fn alert(i: usize) -> Event {
        EventDraft {
            event_id: Some(format!("evt_a{i}")),
            category: Some(
                if i.is_multiple_of(10) {
                    "system"
                } else {
                    "alert"
                }
                .into(),
            ),
            severity: Some("warning".into()),
            title: Some(format!("Disk {i} at 90% on web-{i}")),
            ..Default::default()
        }
        .validate(
            Utc::now(),
            switchyard_routing::EventId::generate(Utc::now(), 0),
        )
        .unwrap()
    }

    #[test]
    fn a_digest_names_the_files_its_messages_had() {
        let dest: Destination = "discord:alerts".parse().unwrap();
        let mut with_file = alert(1);
        with_file.attachments =
            vec![switchyard_routing::AttachmentPath::parse("reports/disk.png").unwrap()];
        let digests = held_digests(
            "While muted",
            &[(dest.clone(), with_file), (dest, alert(2))],
        );
        assert_eq!(digests.len(), 1);
        assert!(
            digests[0].body.contains(
                "not sent with the digest (they stay in the workspace): reports/disk.png"
            ),
            "{}",
            digests[0].body
        );
    }

    #[test]
    fn a_digest_of_held_alerts_names_every_one_and_is_an_alert() {
        let dest: Destination = "discord:alerts".parse().unwrap();
        let released: Vec<(Destination, Event)> =
            (0..150).map(|i| (dest.clone(), alert(i))).collect();
        let digests = held_digests("While muted", &released);
        assert!(digests.len() > 1, "150 titles need follow-ups");
        let all: String = digests
            .iter()
            .map(|d| d.body.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for (_, e) in &released {
            assert!(all.contains(&e.title), "{} is named nowhere", e.title);
        }
        for d in &digests {
            assert_eq!(
                d.category,
                Category::Alert,
                "held alerts come back as an alert"
            );
            assert!(d.body.chars().count() < 4096);
            assert!(
                d.title
                    .starts_with("While muted: 150 message(s) for discord:alerts ("),
                "{}",
                d.title
            );
        }
        assert!(digests[0].body.contains("By type"), "{}", digests[0].body);
    }
}
