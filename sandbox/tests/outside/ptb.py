"""One scripted session of python-telegram-bot against the sandbox's Telegram.

Driven by sandbox/tests/it/outside/telegram_py.rs. Environment: TG_API (the
sandbox's Telegram base, ".../telegram"), TG_TOKEN, TG_BOT_ID, TG_CHAT. A line
"NEED <what> ..." asks the test to play a user (or inject a fault); the test
answers with one line on stdin. Any mismatch raises: the script exits non-zero.
"""

import asyncio
import datetime as dtm
import os
import sys

os.environ["PTB_TIMEDELTA"] = "1"

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter

API = os.environ["TG_API"]
TOKEN = os.environ["TG_TOKEN"]
BOT_ID = int(os.environ["TG_BOT_ID"])
CHAT = int(os.environ["TG_CHAT"])


def need(*what) -> None:
    """Asks the test to act, and waits until it has."""
    print("NEED", *what, flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "OK":
        raise SystemExit(f"the test answered {answer!r} to {what}")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"mismatch: {what}")
    print("ok", what, flush=True)


async def expect_bad_request(call, fragment: str, what: str) -> None:
    try:
        await call
    except BadRequest as e:
        check(fragment.lower() in e.message.lower(), f"{what}: {e.message}")
        return
    raise SystemExit(f"mismatch: {what} was accepted")


async def main() -> None:
    # ptb appends the token to base_url: ".../telegram/bot" + TOKEN + "/method".
    bot = Bot(TOKEN, base_url=f"{API}/bot")
    async with bot:
        me = await bot.get_me()
        check(me.id == BOT_ID and me.is_bot, f"getMe is the bot {me.id}")

        html = await bot.send_message(
            CHAT, "<b>Deploy</b> web-1 &lt;ok&gt;", parse_mode=ParseMode.HTML
        )
        check(html.text == "Deploy web-1 <ok>", "HTML is parsed")
        check(html.entities[0].type == MessageEntity.BOLD, "HTML bold entity")

        md = await bot.send_message(
            CHAT, "*Deploy* web\\-1 _done_\\.", parse_mode=ParseMode.MARKDOWN_V2
        )
        check(md.text == "Deploy web-1 done.", "MarkdownV2 is parsed")
        check(
            [e.type for e in md.entities] == [MessageEntity.BOLD, MessageEntity.ITALIC],
            "MarkdownV2 entities",
        )
        await expect_bad_request(
            bot.send_message(CHAT, "Version 1.0", parse_mode=ParseMode.MARKDOWN_V2),
            "Character '.' is reserved and must be escaped",
            "unescaped MarkdownV2 is refused",
        )

        edited = await bot.edit_message_text(
            "<i>edited</i>", chat_id=CHAT, message_id=html.message_id, parse_mode=ParseMode.HTML
        )
        check(edited.text == "edited" and edited.edit_date is not None, "edit")
        await expect_bad_request(
            bot.edit_message_text(
                "<i>edited</i>", chat_id=CHAT, message_id=html.message_id, parse_mode=ParseMode.HTML
            ),
            "message is not modified",
            "the same edit again",
        )

        keyboard = InlineKeyboardMarkup(
            [[
                InlineKeyboardButton("Approve", callback_data="approve:1"),
                InlineKeyboardButton("Deny", callback_data="deny:1"),
            ]]
        )
        ask = await bot.send_message(CHAT, "Deploy web-1?", reply_markup=keyboard)
        check(
            ask.reply_markup.inline_keyboard[0][1].callback_data == "deny:1",
            "the keyboard comes back",
        )

        # Long polling: messages and button presses.
        check(
            await bot.get_updates(timeout=0, allowed_updates=["message", "callback_query"]) == (),
            "nothing queued yet",
        )
        need("message", "status please")
        updates = await bot.get_updates(timeout=5)
        check(
            len(updates) == 1 and updates[0].message.text == "status please",
            "the user's message arrives",
        )
        offset = updates[-1].update_id + 1
        need("press", ask.message_id, "approve:1")
        updates = await bot.get_updates(offset=offset, timeout=5)
        query = updates[0].callback_query
        check(
            query is not None
            and query.data == "approve:1"
            and query.message.message_id == ask.message_id,
            "the button press arrives",
        )
        offset = updates[-1].update_id + 1
        check(await bot.answer_callback_query(query.id, text="Approved"), "answerCallbackQuery")
        await expect_bad_request(
            bot.answer_callback_query(query.id, text="again"),
            "query is too old",
            "a second answer",
        )

        check(await bot.send_chat_action(CHAT, ChatAction.TYPING), "sendChatAction typing")
        await expect_bad_request(
            bot.send_chat_action(CHAT, "dancing"),
            "wrong parameter action in request",
            "an unknown chat action",
        )

        # A poller that leaves callback_query out never sees presses, not even later.
        check(
            await bot.get_updates(offset=offset, timeout=0, allowed_updates=["message"]) == (),
            "narrowed to messages",
        )
        need("press", ask.message_id, "deny:1")
        check(await bot.get_updates(offset=offset, timeout=1) == (), "the press is not delivered")
        need("message", "after the press")
        updates = await bot.get_updates(offset=offset, timeout=5)
        check(
            [u.message.text for u in updates if u.message] == ["after the press"]
            and all(u.callback_query is None for u in updates),
            "messages still arrive",
        )
        offset = updates[-1].update_id + 1
        check(
            await bot.get_updates(
                offset=offset, timeout=0, allowed_updates=["message", "callback_query"]
            )
            == (),
            "the dropped press does not come back",
        )

        # Flood control, as ptb's RetryAfter with the server's retry_after.
        need("429", 3)
        try:
            await bot.send_message(CHAT, "too fast")
        except RetryAfter as e:
            # A timedelta: PTB_TIMEDELTA=1 opts in to ptb's non-deprecated form.
            check(e.retry_after == dtm.timedelta(seconds=3), f"RetryAfter {e.retry_after}")
        else:
            raise SystemExit("mismatch: the 429 was not raised as RetryAfter")
        again = await bot.send_message(CHAT, "after waiting")
        check(again.text == "after waiting", "the next call goes through")

    # Tokens the sandbox does not know: ptb's InvalidToken (401 and 404).
    for token, what in [(f"{BOT_ID}:not-the-secret", "unknown"), ("garbage", "malformed")]:
        try:
            async with Bot(token, base_url=f"{API}/bot") as stranger:
                await stranger.get_me()
        except InvalidToken as e:
            check(True, f"{what} token refused: {e.message}")
        else:
            raise SystemExit(f"mismatch: the {what} token was accepted")
    print("DONE", flush=True)


asyncio.run(main())
