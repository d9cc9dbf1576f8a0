//! Held messages: what mutes and digest windows hold, and their release,
//! with the digests that report them enqueued in the same transaction.

use super::*;

/// The columns a hold is stored in: its kind, and the mute id or the category.
fn hold_key(hold: &Hold) -> (&'static str, &str) {
    match hold {
        Hold::Mute(id) => ("mute", id.as_str()),
        Hold::Digest(category) => ("digest", category.as_str()),
    }
}

impl Store {
    /// The events a mute is holding (not yet released), oldest first.
    pub async fn held_for_mute(&self, mute_id: &str) -> anyhow::Result<Vec<Event>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT e.payload FROM held_messages h JOIN events e ON e.event_id = h.event_id \
             WHERE h.mute_id = $1 AND h.released_at IS NULL ORDER BY h.held_at, h.delivery_id",
        )
        .bind(mute_id)
        .fetch_all(&self.pool)
        .await
        .context("cannot read held messages")?;
        rows.into_iter()
            .map(|(p,)| serde_json::from_str(&p).context("a stored event does not parse"))
            .collect()
    }

    /// Release what a hold held: returns the held events (oldest first) and
    /// marks their deliveries `digested`, in one transaction, so a second call
    /// returns nothing.
    pub async fn release_held(
        &self,
        hold: &Hold,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(Destination, Event)>> {
        self.release_held_with(hold, now, |_| Vec::new()).await
    }

    /// [`Store::release_held`], with the digests that report what was held
    /// (`digest` makes them from the released events) enqueued in the same
    /// transaction: a crash leaves the messages held, or released and
    /// reported, never released and unreported.
    pub async fn release_held_with(
        &self,
        hold: &Hold,
        now: DateTime<Utc>,
        digest: impl FnOnce(&[(Destination, Event)]) -> Vec<HeldDigest>,
    ) -> anyhow::Result<Vec<(Destination, Event)>> {
        let (hold_kind, key) = hold_key(hold);
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT h.delivery_id, h.destination, e.payload FROM held_messages h JOIN events e ON e.event_id = h.event_id \
             WHERE h.hold_kind = $1 AND COALESCE(h.mute_id, h.digest_category) = $2 AND h.released_at IS NULL \
             ORDER BY h.held_at, h.delivery_id",
        )
        .bind(hold_kind)
        .bind(key)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read held messages")?;
        let mut events = Vec::with_capacity(rows.len());
        for (delivery_id, destination, payload) in rows {
            sqlx::query("UPDATE held_messages SET released_at = $1 WHERE delivery_id = $2")
                .bind(millis(now))
                .bind(&delivery_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE deliveries SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
            )
            .bind(DeliveryState::Digested.as_str())
            .bind(millis(now))
            .bind(&delivery_id)
            .bind(DeliveryState::Held.as_str())
            .execute(&mut *tx)
            .await?;
            let destination: Destination = destination
                .parse()
                .context("a stored destination does not parse")?;
            events.push((
                destination,
                serde_json::from_str(&payload).context("a stored event does not parse")?,
            ));
        }
        for d in digest(&events) {
            let content = Content {
                category: d.category.as_str(),
                severity: d.severity,
                source: "switchyard",
                event_type: HELD_DIGEST_EVENT_TYPE,
                title: &d.title,
                body: &d.body,
                occurred_at: now,
            };
            insert_delivery(
                &mut tx,
                self.backend,
                &new_id("dd"),
                None,
                &d.destination,
                "digest",
                DeliveryState::Pending,
                &content,
                None,
                now,
            )
            .await?;
        }
        tx.commit().await.context("cannot release held messages")?;
        Ok(events)
    }

    /// The holds (mutes and digest windows) that still hold messages of this agent.
    pub async fn holds(&self) -> anyhow::Result<Vec<Hold>> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT DISTINCT hold_kind, mute_id, digest_category FROM held_messages \
             WHERE released_at IS NULL ORDER BY hold_kind, mute_id, digest_category",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot list held messages")?;
        rows.into_iter()
            .map(|row| match row {
                (kind, Some(id), None) if kind == "mute" => id
                    .parse::<MuteId>()
                    .map(Hold::Mute)
                    .map_err(|e| anyhow::anyhow!("a stored mute id does not parse: {e}")),
                (kind, None, Some(category)) if kind == "digest" => {
                    let category = category.parse().unwrap_or_else(|never| match never {});
                    Ok(Hold::Digest(category))
                }
                (kind, mute, category) => Err(anyhow::anyhow!(
                    "a held message has an inconsistent hold ({kind}, {mute:?}, {category:?})"
                )),
            })
            .collect()
    }
}
