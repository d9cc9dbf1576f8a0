"""One scripted session of the official `openai` package against the sandbox's
OpenAI-compatible Chat Completions (`base_url` = the sandbox's /openai/v1).

Driven by sandbox/tests/it/outside/openai_py.rs. Environment: OPENAI_BASE_URL,
OPENAI_KEY (a key the sandbox knows), OPENAI_MODEL. The sandbox's directives
(`[[sandbox:…]]` in the last user message, see sandbox/src/openai_script.rs)
ask for refusals and broken streams. Any mismatch raises: the script exits
non-zero.
"""

import os
import time

import openai
from openai import OpenAI

BASE = os.environ["OPENAI_BASE_URL"]
KEY = os.environ["OPENAI_KEY"]
MODEL = os.environ["OPENAI_MODEL"]
PERSONA = "You are the fleet's helper.\nAnswer briefly."


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"mismatch: {what}")
    print("ok", what, flush=True)


def ask(text: str) -> list:
    return [{"role": "system", "content": PERSONA}, {"role": "user", "content": text}]


def expect(error: type, call, what: str) -> Exception:
    try:
        call()
    except error as e:
        check(True, f"{what}: {type(e).__name__}")
        return e
    raise SystemExit(f"mismatch: {what} raised nothing")


# No retries unless a step asks: each refusal is seen as the client first sees it.
client = OpenAI(base_url=BASE, api_key=KEY, max_retries=0)

r = client.chat.completions.create(model=MODEL, messages=ask("status of web-1"))
check(r.object == "chat.completion", "a chat.completion")
check(
    r.choices[0].message.content
    == "persona: You are the fleet's helper. · turns: 1 · you said: status of web-1",
    f"the scripted answer: {r.choices[0].message.content}",
)
check(r.choices[0].finish_reason == "stop", "finish_reason stop")
check(
    r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0,
    "usage adds up",
)

stream = client.chat.completions.create(
    model=MODEL,
    messages=ask("deploy [[sandbox:answer=Deploying web-1 now]] [[sandbox:chunk=4]]"),
    stream=True,
    stream_options={"include_usage": True},
)
deltas, finish, usage, objects = [], None, None, set()
for chunk in stream:
    objects.add(chunk.object)
    for choice in chunk.choices:
        if choice.delta.content:
            deltas.append(choice.delta.content)
        finish = choice.finish_reason or finish
    if chunk.usage is not None:
        check(chunk.choices == [], "usage comes in a chunk of its own")
        usage = chunk.usage
check(objects == {"chat.completion.chunk"}, "chunks only")
check("".join(deltas) == "Deploying web-1 now", f"the streamed text: {deltas}")
check(len(deltas) == 5, "four characters per delta")
check(finish == "stop", "the stream ends with stop")
check(usage is not None and usage.completion_tokens > 0, "include_usage gives usage")

# A key the sandbox does not know.
stranger = OpenAI(base_url=BASE, api_key="sk-wrong-key", max_retries=0)
e = expect(
    openai.AuthenticationError,
    lambda: stranger.chat.completions.create(model=MODEL, messages=ask("hi")),
    "a wrong key",
)
check(e.status_code == 401 and e.code == "invalid_api_key", f"401 invalid_api_key: {e.code}")

e = expect(
    openai.RateLimitError,
    lambda: client.chat.completions.create(
        model=MODEL, messages=ask("[[sandbox:429]] [[sandbox:retry_after=2]] hi")
    ),
    "a 429",
)
check(e.status_code == 429 and e.response.headers.get("retry-after") == "2", "retry-after 2")
e = expect(
    openai.RateLimitError,
    lambda: client.chat.completions.create(model=MODEL, messages=ask("[[sandbox:quota]] hi")),
    "an exhausted quota",
)
check(e.code == "insufficient_quota", f"insufficient_quota: {e.code}")

# The client honours retry-after: one retry, after the 1 s asked for.
patient = OpenAI(base_url=BASE, api_key=KEY, max_retries=1)
started = time.monotonic()
expect(
    openai.RateLimitError,
    lambda: patient.chat.completions.create(
        model=MODEL, messages=ask("[[sandbox:429]] [[sandbox:retry_after=1]] again")
    ),
    "a 429 retried once",
)
check(time.monotonic() - started >= 0.9, "the retry waited for retry-after")

expect(
    openai.InternalServerError,
    lambda: client.chat.completions.create(model=MODEL, messages=ask("[[sandbox:status=503]] hi")),
    "a 503",
)
impatient = OpenAI(base_url=BASE, api_key=KEY, max_retries=0, timeout=0.5)
expect(
    openai.APITimeoutError,
    lambda: impatient.chat.completions.create(model=MODEL, messages=ask("[[sandbox:slow=3000]] hi")),
    "a slow answer past the client's timeout",
)

# A stream cut short: no finish_reason reaches the client, only half the text.
deltas, finish = [], None
for chunk in client.chat.completions.create(
    model=MODEL,
    messages=ask("[[sandbox:answer=abcdefgh]] [[sandbox:chunk=2]] [[sandbox:broken]]"),
    stream=True,
):
    for choice in chunk.choices:
        deltas.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
check("".join(deltas) == "abcd" and finish is None, f"a broken stream: {deltas} {finish}")


def read_garbage() -> None:
    for _ in client.chat.completions.create(
        model=MODEL, messages=ask("[[sandbox:garbage]] hi"), stream=True
    ):
        pass


expect(Exception, read_garbage, "a data: line that is not JSON")
print("DONE", flush=True)
