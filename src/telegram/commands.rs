//! Chat commands in Telegram (`/status`, `/approvals`, `/mute`, `/unmute`):
//! a thin shell over the neutral handlers of `switchyard-commands`.

use teloxide::types::Message;

use super::TelegramApprovals;
use crate::approvals::ApprovalsContext;

/// A message to the bot: commands are answered, anything else is ignored.
pub async fn on_message(_tg: &TelegramApprovals, _ctx: &ApprovalsContext, _m: &Message) {}
