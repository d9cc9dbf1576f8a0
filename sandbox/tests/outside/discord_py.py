"""One scripted session of discord.py against the sandbox's Discord.

Driven by sandbox/tests/it/outside/discord_py.rs. Environment: DC_API (the
sandbox's REST base, ".../api/v10"), DC_GATEWAY (its "ws://.../gateway"),
DC_TOKEN, DC_GUILD, DC_CHANNEL. A line "NEED <what> ..." asks the test to play
a user (or inject a fault); the test answers "OK" on stdin. Any mismatch
raises: the script exits non-zero.

discord.py takes no API address: its REST base is the class attribute
`discord.http.Route.BASE` and its gateway `DiscordWebSocket.DEFAULT_GATEWAY`
(it never asks `GET /gateway`), both set here before the client is made.
"""

import asyncio
import base64
import os
import sys

import discord
import yarl
from discord import app_commands

API = os.environ["DC_API"]
GATEWAY = os.environ["DC_GATEWAY"]
TOKEN = os.environ["DC_TOKEN"]
GUILD = int(os.environ["DC_GUILD"])
CHANNEL = int(os.environ["DC_CHANNEL"])

discord.http.Route.BASE = API
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(GATEWAY)

# A Discord token's first part is the bot's user id in base64.
first = TOKEN.split(".")[0]
BOT_ID = int(base64.b64decode(first + "=" * (-len(first) % 4)))


async def need(*what) -> None:
    """Asks the test to act, and waits (off the event loop) until it has."""
    print("NEED", *what, flush=True)
    answer = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if answer.strip() != "OK":
        raise SystemExit(f"the test answered {answer!r} to {what}")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"mismatch: {what}")
    print("ok", what, flush=True)


async def expect_http(call, status: int, code: int, what: str) -> None:
    try:
        await call
    except discord.HTTPException as e:
        check(e.status == status and e.code == code, f"{what}: {e.status} {e.code} {e.text}")
        return
    raise SystemExit(f"mismatch: {what} was accepted")


async def refused_token() -> None:
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login("MTAw.garbage.token")
    except discord.LoginFailure:
        check(True, "an unknown token is refused at login")
        return
    finally:
        await client.close()
    raise SystemExit("mismatch: an unknown token logged in")


class Session:
    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        self.client = discord.Client(intents=intents)
        self.tree = app_commands.CommandTree(self.client)
        self.pinged = asyncio.Event()
        self.mention = asyncio.Event()
        self.callback = None
        self.failure = None
        guild = discord.Object(GUILD)

        @self.tree.command(name="ping", description="Answers pong", guild=guild)
        async def ping(interaction: discord.Interaction) -> None:
            check(interaction.channel_id == CHANNEL, "the interaction names its channel")
            check(interaction.channel is not None, "the interaction carries its channel")
            self.callback = await interaction.response.send_message("pong")
            self.pinged.set()

        @self.client.event
        async def on_message(message: discord.Message) -> None:
            if message.author.id != BOT_ID and self.client.user in message.mentions:
                self.mention_text = message.content
                self.mention.set()

        @self.client.event
        async def on_ready() -> None:
            try:
                await self.run()
            except BaseException as e:  # noqa: BLE001 - reported, then re-raised in main
                self.failure = e
            finally:
                await self.client.close()

    async def run(self) -> None:
        client = self.client
        check(client.user.id == BOT_ID and client.user.bot, f"READY is the bot {client.user.id}")
        guild = client.get_guild(GUILD)
        check(guild is not None, "GUILD_CREATE filled the guild cache")
        channel = guild.get_channel(CHANNEL)
        check(channel is not None and channel.name == "general", "the guild's channels")
        fetched = await client.fetch_channel(CHANNEL)
        check(fetched.id == CHANNEL, "GET /channels/{id}")
        app = await client.application_info()
        check(app.id == client.application_id, "GET /oauth2/applications/@me")

        sent = await channel.send("hello from discord.py")
        check(sent.content == "hello from discord.py", "send")
        edited = await sent.edit(content="edited by discord.py")
        check(edited.content == "edited by discord.py" and edited.edited_at is not None, "edit")

        await sent.add_reaction("👀")
        check(True, "react")
        await expect_http(sent.add_reaction("eyes"), 400, 10014, "an unknown emoji")
        await expect_http(
            channel.get_partial_message(123456789012345678).add_reaction("👀"),
            404,
            10008,
            "a reaction on an unknown message",
        )
        await expect_http(
            client.http.add_reaction(987654321098765432, sent.id, "👀"),
            404,
            10003,
            "a reaction in an unknown channel",
        )

        thread = await sent.create_thread(name="discord.py thread")
        in_thread = await thread.send("in the thread")
        check(in_thread.channel.id == thread.id, "thread and a post in it")

        doomed = await channel.send("to be deleted")
        await doomed.delete()
        await expect_http(doomed.delete(), 404, 10008, "a second delete")

        synced = await self.tree.sync(guild=discord.Object(GUILD))
        check([c.name for c in synced] == ["ping"], "guild commands registered")

        await need("command", "ping")
        await asyncio.wait_for(self.pinged.wait(), 10)
        check(
            self.callback is not None
            and self.callback.type == discord.InteractionResponseType.channel_message
            and self.callback.resource is not None
            and self.callback.resource.content == "pong",
            "the callback's response (with_response) and the message it made",
        )

        await need("message", str(BOT_ID), "hello")
        await asyncio.wait_for(self.mention.wait(), 10)
        check(self.mention_text.endswith("hello"), "MESSAGE_CREATE of a user's mention")

        await need("429", "1")
        waited = await channel.send("after waiting")
        check(waited.content == "after waiting", "a 429 waited out, then sent")
        print("DONE", flush=True)


async def main() -> None:
    await refused_token()
    session = Session()
    async with session.client:
        await session.client.start(TOKEN)
    if session.failure is not None:
        raise session.failure
    if not session.pinged.is_set():
        raise SystemExit("mismatch: the session ended before it ran")


asyncio.run(main())
