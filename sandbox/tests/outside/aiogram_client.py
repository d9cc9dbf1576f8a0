"""One scripted session of aiogram against the sandbox's Telegram.

Driven by sandbox/tests/it/outside/telegram_py.rs. Environment: TG_API (the
sandbox's Telegram base, ".../telegram"), TG_TOKEN, TG_BOT_ID, TG_CHAT. A line
"NEED <what> ..." asks the test to play a user (or inject a fault); the test
answers with one line on stdin. Any mismatch raises: the script exits non-zero.
"""

import asyncio
import os
import sys

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.token import TokenValidationError

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


def make_bot(token: str) -> Bot:
    # from_base builds "<base>/bot<token>/<method>", the sandbox's shape.
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(API)))


async def expect_bad_request(call, fragment: str, what: str) -> None:
    try:
        await call
    except TelegramBadRequest as e:
        check(fragment.lower() in e.message.lower(), f"{what}: {e.message}")
        return
    raise SystemExit(f"mismatch: {what} was accepted")


async def session(bot: Bot) -> None:
    me = await bot.get_me()
    check(me.id == BOT_ID and me.is_bot, f"getMe is the bot {me.id}")

    html = await bot.send_message(CHAT, "<b>Deploy</b> web-1 &lt;ok&gt;", parse_mode="HTML")
    check(html.text == "Deploy web-1 <ok>", "HTML is parsed")
    check(html.entities[0].type == "bold", "HTML bold entity")

    md = await bot.send_message(CHAT, "*Deploy* web\\-1 _done_\\.", parse_mode="MarkdownV2")
    check(md.text == "Deploy web-1 done.", "MarkdownV2 is parsed")
    check([e.type for e in md.entities] == ["bold", "italic"], "MarkdownV2 entities")
    await expect_bad_request(
        bot.send_message(CHAT, "a - b", parse_mode="MarkdownV2"),
        "Character '-' is reserved and must be escaped",
        "unescaped MarkdownV2 is refused",
    )
    await expect_bad_request(
        bot.send_message(CHAT, "hello", parse_mode="Markdown3"),
        "unsupported parse_mode",
        "an unknown parse_mode",
    )

    edited = await bot.edit_message_text(
        text="<i>edited</i>", chat_id=CHAT, message_id=html.message_id, parse_mode="HTML"
    )
    check(edited.text == "edited" and edited.edit_date is not None, "edit")
    await expect_bad_request(
        bot.edit_message_text(
            text="<i>edited</i>", chat_id=CHAT, message_id=html.message_id, parse_mode="HTML"
        ),
        "message is not modified",
        "the same edit again",
    )

    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[
            InlineKeyboardButton(text="Approve", callback_data="approve:2"),
            InlineKeyboardButton(text="Deny", callback_data="deny:2"),
        ]]
    )
    ask = await bot.send_message(CHAT, "Deploy web-2?", reply_markup=keyboard)
    check(
        ask.reply_markup.inline_keyboard[0][0].callback_data == "approve:2",
        "the keyboard comes back",
    )

    check(
        await bot.get_updates(timeout=0, allowed_updates=["message", "callback_query"]) == [],
        "nothing queued yet",
    )
    need("message", "status please")
    updates = await bot.get_updates(timeout=5)
    check(
        len(updates) == 1 and updates[0].message.text == "status please",
        "the user's message arrives",
    )
    offset = updates[-1].update_id + 1
    need("press", ask.message_id, "approve:2")
    updates = await bot.get_updates(offset=offset, timeout=5)
    query = updates[0].callback_query
    check(
        query is not None and query.data == "approve:2" and query.message.message_id == ask.message_id,
        "the button press arrives",
    )
    offset = updates[-1].update_id + 1
    check(await bot.answer_callback_query(query.id, text="Approved"), "answerCallbackQuery")

    check(await bot.send_chat_action(CHAT, "typing"), "sendChatAction typing")
    await expect_bad_request(
        bot.send_chat_action(CHAT, "dancing"),
        "wrong parameter action in request",
        "an unknown chat action",
    )

    # A poller that leaves callback_query out never sees presses.
    check(
        await bot.get_updates(offset=offset, timeout=0, allowed_updates=["message"]) == [],
        "narrowed to messages",
    )
    need("press", ask.message_id, "deny:2")
    check(await bot.get_updates(offset=offset, timeout=1) == [], "the press is not delivered")
    need("message", "after the press")
    updates = await bot.get_updates(offset=offset, timeout=5)
    check(
        [u.message.text for u in updates if u.message] == ["after the press"]
        and all(u.callback_query is None for u in updates),
        "messages still arrive",
    )

    need("429", 2)
    try:
        await bot.send_message(CHAT, "too fast")
    except TelegramRetryAfter as e:
        check(e.retry_after == 2, f"TelegramRetryAfter {e.retry_after}")
    else:
        raise SystemExit("mismatch: the 429 was not raised as TelegramRetryAfter")
    again = await bot.send_message(CHAT, "after waiting")
    check(again.text == "after waiting", "the next call goes through")


async def main() -> None:
    bot = make_bot(TOKEN)
    try:
        await session(bot)
    finally:
        await bot.session.close()

    # A well-formed token the sandbox does not know: 401, aiogram's Unauthorized.
    stranger = make_bot(f"{BOT_ID}:not-the-secret")
    try:
        await stranger.get_me()
    except TelegramUnauthorizedError as e:
        check(True, f"unknown token refused: {e.message}")
    else:
        raise SystemExit("mismatch: the unknown token was accepted")
    finally:
        await stranger.session.close()
    # A malformed token never reaches the sandbox: aiogram refuses it itself.
    try:
        make_bot("garbage")
    except TokenValidationError:
        print("NOTE a malformed token is refused by aiogram before any request", flush=True)
    else:
        raise SystemExit("mismatch: aiogram took a malformed token")
    print("DONE", flush=True)


asyncio.run(main())
