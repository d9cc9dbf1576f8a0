//! The outbox's queries: what the delivery worker reads and the state
//! transitions it makes (pending → sending → sent | retry | failed |
//! ambiguous), plus coalescing a run of ambient messages into one.
//! Every transition is a single conditional UPDATE, so a row cannot be
//! claimed twice.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use switchyard_routing::{Category, Destination, Severity};

use super::{
    Content, DeliveryRecord, DeliveryRow, DeliveryState, Store, delivery_columns, insert_delivery,
    millis, new_id,
};

/// Categories that are never coalesced (a human acts on them one by one).
pub const NON_AMBIENT_CATEGORIES: [&str; 2] = ["alert", "action_required"];

/// The event type of a summary made by [`Store::coalesce`].
pub const COALESCED_EVENT_TYPE: &str = "switchyard.coalesced";
/// The event type of a "while muted" (or digest window) report: already a
/// summary, so never coalesced into another.
pub const HELD_DIGEST_EVENT_TYPE: &str = "switchyard.held_digest";

/// One report of held messages, for [`super::Store::release_held_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDigest {
    pub destination: Destination,
    /// The most important category of what it reports (an alert's digest is
    /// an alert, not an ambient notice).
    pub category: Category,
    pub title: String,
    pub body: String,
    pub severity: Severity,
}

/// Ambient = neither an alert, nor something to act on, nor critical (and
/// not already a summary: summaries are not summarised again).
pub fn is_ambient(row: &DeliveryRow) -> bool {
    !NON_AMBIENT_CATEGORIES.contains(&row.category.as_str())
        && row.severity != Severity::Critical
        && row.event_type != COALESCED_EVENT_TYPE
        && row.event_type != HELD_DIGEST_EVENT_TYPE
        // A summary carries no files: a message with files goes out as itself.
        && row.files == 0
}

/// What a crash left in `sending` and what became of it at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Back to `pending`: resending is safe (Discord nonce).
    pub resent: Vec<String>,
    /// Marked `ambiguous`: resending could post twice.
    pub ambiguous: Vec<String>,
}

impl Store {
    /// Rows left in `sending` (by a crash): back to `pending` where
    /// `resend_is_safe` says so, `ambiguous` otherwise.
    pub async fn recover_sending(
        &self,
        now: DateTime<Utc>,
        resend_is_safe: impl Fn(&Destination) -> bool,
    ) -> anyhow::Result<Recovery> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, destination FROM deliveries WHERE state = $1")
                .bind(DeliveryState::Sending.as_str())
                .fetch_all(self.pool())
                .await
                .context("cannot read deliveries left in sending")?;
        let mut out = Recovery::default();
        for (id, dest) in rows {
            let safe = dest
                .parse::<Destination>()
                .map(|d| resend_is_safe(&d))
                .unwrap_or(false);
            if safe {
                self.set_state(
                    &id,
                    DeliveryState::Sending,
                    DeliveryState::Pending,
                    None,
                    now,
                )
                .await?;
                out.resent.push(id);
            } else {
                self.set_state(
                    &id,
                    DeliveryState::Sending,
                    DeliveryState::Ambiguous,
                    Some("the agent stopped while this was being sent; it may or may not have arrived, so it is not resent"),
                    now,
                )
                .await?;
                out.ambiguous.push(id);
            }
        }
        Ok(out)
    }

    async fn set_state(
        &self,
        id: &str,
        from: DeliveryState,
        to: DeliveryState,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE deliveries SET state = $1, last_error = COALESCE($2, last_error), updated_at = $3 WHERE id = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(error)
        .bind(millis(now))
        .bind(id)
        .bind(from.as_str())
        .execute(self.pool())
        .await
        .with_context(|| format!("cannot move delivery {id} to {to}"))?;
        Ok(r.rows_affected() == 1)
    }

    /// How long since this agent last sent (or was sending) to `platform`,
    /// by its outbox: its own previous life's sends, or those of the holder
    /// it took over from. A limiter that starts after a restart or a
    /// takeover waits out only what that send may still hold. `None` when
    /// it cannot tell: it never sent through the outbox (other writers may
    /// have), or the database would not say.
    pub async fn quiet_for(&self, platform: switchyard_routing::Platform) -> Option<Duration> {
        let last: Result<(Option<i64>,), _> = sqlx::query_as(
            "SELECT MAX(updated_at) FROM deliveries WHERE destination LIKE $1 AND state IN ($2, $3)",
        )
        .bind(format!("{}:%", platform.as_str()))
        .bind(DeliveryState::Sending.as_str())
        .bind(DeliveryState::Sent.as_str())
        .fetch_one(self.pool())
        .await;
        match last {
            // A clock that went back counts as just now.
            Ok((Some(ms),)) => Some(
                (Utc::now() - super::from_millis(ms))
                    .to_std()
                    .unwrap_or_default(),
            ),
            Ok((None,)) => None,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot tell when the agent last sent; its rate limiter starts cautious"
                );
                None
            }
        }
    }

    /// Destinations with at least one pending row.
    pub async fn pending_destinations(&self) -> anyhow::Result<Vec<Destination>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT destination FROM deliveries WHERE state = $1 ORDER BY destination",
        )
        .bind(DeliveryState::Pending.as_str())
        .fetch_all(self.pool())
        .await
        .context("cannot list pending destinations")?;
        Ok(rows.into_iter().filter_map(|(d,)| d.parse().ok()).collect())
    }

    /// The first `limit` pending rows for one destination, in outbox order.
    /// The first one is the head: nothing behind it may go out before it.
    pub async fn pending_queue(
        &self,
        destination: &Destination,
        limit: u32,
    ) -> anyhow::Result<Vec<DeliveryRow>> {
        let rows: Vec<DeliveryRecord> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE destination = $1 AND state = $2 ORDER BY seq, id LIMIT $3"
        ))
        .bind(destination.to_string())
        .bind(DeliveryState::Pending.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .context("cannot read the outbox")?;
        rows.into_iter().map(DeliveryRow::try_from).collect()
    }

    /// How many rows wait for one destination.
    pub async fn pending_count(&self, destination: &Destination) -> anyhow::Result<u64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM deliveries WHERE destination = $1 AND state = $2")
                .bind(destination.to_string())
                .bind(DeliveryState::Pending.as_str())
                .fetch_one(self.pool())
                .await
                .context("cannot count the outbox")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// pending → sending. False when someone else changed the row first.
    pub async fn claim(&self, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        self.set_state(
            id,
            DeliveryState::Pending,
            DeliveryState::Sending,
            None,
            now,
        )
        .await
    }

    /// sending → sent, with the platform's message id.
    pub async fn mark_sent(
        &self,
        id: &str,
        message_id: &str,
        parts_sent: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries SET state = $1, platform_message_id = $2, parts_sent = $3, sent_at = $4, updated_at = $4 \
             WHERE id = $5 AND state = $6",
        )
        .bind(DeliveryState::Sent.as_str())
        .bind(message_id)
        .bind(i64::from(parts_sent))
        .bind(millis(now))
        .bind(id)
        .bind(DeliveryState::Sending.as_str())
        .execute(self.pool())
        .await
        .with_context(|| format!("cannot mark delivery {id} sent"))?;
        Ok(())
    }

    /// sending → pending, to be tried again at `next_attempt_at`.
    /// `attempts` is the count after this one; parts already sent are kept.
    pub async fn reschedule(
        &self,
        id: &str,
        attempts: u32,
        parts_sent: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries SET state = $1, attempts = $2, parts_sent = $3, next_attempt_at = $4, last_error = $5, \
             updated_at = $6 WHERE id = $7 AND state = $8",
        )
        .bind(DeliveryState::Pending.as_str())
        .bind(i64::from(attempts))
        .bind(i64::from(parts_sent))
        .bind(millis(next_attempt_at))
        .bind(error)
        .bind(millis(now))
        .bind(id)
        .bind(DeliveryState::Sending.as_str())
        .execute(self.pool())
        .await
        .with_context(|| format!("cannot reschedule delivery {id}"))?;
        Ok(())
    }

    /// sending → failed or ambiguous (terminal), with the reason.
    pub async fn mark_terminal(
        &self,
        id: &str,
        state: DeliveryState,
        attempts: u32,
        parts_sent: u32,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        debug_assert!(matches!(
            state,
            DeliveryState::Failed | DeliveryState::Ambiguous
        ));
        sqlx::query(
            "UPDATE deliveries SET state = $1, attempts = $2, parts_sent = $3, last_error = $4, updated_at = $5 \
             WHERE id = $6 AND state = $7",
        )
        .bind(state.as_str())
        .bind(i64::from(attempts))
        .bind(i64::from(parts_sent))
        .bind(error)
        .bind(millis(now))
        .bind(id)
        .bind(DeliveryState::Sending.as_str())
        .execute(self.pool())
        .await
        .with_context(|| format!("cannot mark delivery {id} {state}"))?;
        Ok(())
    }

    /// Replace a run of pending rows by one summary row that takes the
    /// first one's place in the queue; the merged rows become `digested`
    /// with `coalesced_into` pointing at it. One transaction; rows that are
    /// no longer pending are left alone. Returns the summary's id.
    pub async fn coalesce(
        &self,
        rows: &[DeliveryRow],
        title: &str,
        body: &str,
        severity: Severity,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let head = rows.first().context("nothing to coalesce")?;
        let id = new_id("dc");
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("cannot start a transaction")?;
        let content = Content {
            category: head.category.as_str(),
            severity,
            source: "switchyard",
            event_type: COALESCED_EVENT_TYPE,
            title,
            body,
            occurred_at: now,
        };
        insert_delivery(
            &mut tx,
            self.backend,
            &id,
            None,
            &head.destination,
            "coalesced",
            DeliveryState::Pending,
            &content,
            None,
            now,
        )
        .await?;
        sqlx::query("UPDATE deliveries SET seq = $1 WHERE id = $2")
            .bind(head.seq)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for row in rows {
            sqlx::query(
                "UPDATE deliveries SET state = $1, coalesced_into = $2, updated_at = $3 WHERE id = $4 AND state = $5",
            )
            .bind(DeliveryState::Digested.as_str())
            .bind(&id)
            .bind(millis(now))
            .bind(&row.id)
            .bind(DeliveryState::Pending.as_str())
            .execute(&mut *tx)
            .await
            .context("cannot mark a coalesced delivery")?;
        }
        tx.commit()
            .await
            .context("cannot commit the coalesced message")?;
        Ok(id)
    }

    /// Rows in a state, oldest first (for reports and tests).
    pub async fn deliveries_in_state(
        &self,
        state: DeliveryState,
        limit: u32,
    ) -> anyhow::Result<Vec<DeliveryRow>> {
        let rows: Vec<DeliveryRecord> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE state = $1 ORDER BY seq, id LIMIT $2"
        ))
        .bind(state.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .context("cannot read deliveries")?;
        rows.into_iter().map(DeliveryRow::try_from).collect()
    }
}
