//! `[telegram]`: the Bot API endpoint, polling or webhook mode, chat
//! aliases, approvers and who may use which commands.

use std::collections::BTreeMap;

use switchyard_commands::AccessList;

use super::raw::RawTelegram;
use super::validator::Validator;

pub(super) const TELEGRAM_PUBLIC_API: &str = "https://api.telegram.org";

#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub api_base: String,
    /// `None`: long polling.
    pub webhook: Option<TelegramWebhook>,
    pub chats: BTreeMap<String, i64>,
    pub approvers: Vec<i64>,
    pub access: AccessList,
}

/// Webhook mode of the Telegram owner.
#[derive(Debug, Clone)]
pub struct TelegramWebhook {
    pub url: String,
    pub secret_env: String,
}

pub(super) fn telegram(v: &mut Validator, t: RawTelegram) -> TelegramSettings {
    TelegramSettings {
        api_base: v.url("telegram.api_base", t.api_base, TELEGRAM_PUBLIC_API),
        webhook: t.webhook_url.clone().map(|url| {
            let url = v.url(
                "telegram.webhook_url",
                Some(url),
                "https://example.invalid/telegram/webhook",
            );
            let secret_env = t
                .webhook_secret_env
                .clone()
                .unwrap_or_else(|| "TELEGRAM_WEBHOOK_SECRET".into());
            v.env_name("telegram.webhook_secret_env", &secret_env);
            TelegramWebhook { url, secret_env }
        }),
        chats: t
            .chats
            .iter()
            .filter_map(|(alias, id)| {
                v.alias(&format!("telegram.chats.{alias}"), alias);
                match id.trim().parse::<i64>() {
                    Ok(id) if id != 0 => Some((alias.clone(), id)),
                    _ => {
                        v.problem(
                            &format!("telegram.chats.{alias}"),
                            format!("{id:?} is not a numeric chat id"),
                        );
                        None
                    }
                }
            })
            .collect(),
        approvers: t.access.approvers.clone(),
        access: {
            let mut m = BTreeMap::new();
            m.insert("read".to_string(), t.access.read.clone());
            m.insert("operate".to_string(), t.access.operate.clone());
            m.insert("admin".to_string(), t.access.admin.clone());
            if let Some(chat) = &t.access.chat {
                m.insert("chat".to_string(), chat.clone());
            }
            v.access("telegram.access", &m)
        },
    }
}
