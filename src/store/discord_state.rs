//! The Discord adapter's key-value rows (`discord_state`, migration 0005):
//! the registered command set's hash and the status board's message id.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{Store, millis};

impl Store {
    /// The value stored under `key`, if any.
    pub async fn discord_state(&self, key: &str) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM discord_state WHERE key = $1")
                .bind(key)
                .fetch_optional(self.pool())
                .await
                .context("cannot read the Discord state")?;
        Ok(row.map(|(v,)| v))
    }

    /// Store `value` under `key`, replacing what was there.
    pub async fn set_discord_state(
        &self,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO discord_state (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(millis(now))
        .execute(self.pool())
        .await
        .context("cannot store the Discord state")?;
        Ok(())
    }
}
