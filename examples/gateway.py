"""A small but real asyncio chat gateway on the ledger, using only its public API.

Several chats, the commands a Hermes-style gateway has (/new, /resume, /undo, /retry,
/compress), one expensive agent per chat slot (built in 200 ms, cached by the ledger's
``AsyncAgentCache``), and any number of OS processes on one database::

    python examples/gateway.py --url sqlite:////tmp/gw/ledger.db --name a --chats 4 --turns 30
    python examples/gateway.py --url postgresql://postgres@127.0.0.1/test --name b ...

What the cached agent may hold, and what it may not: an agent is cached per ``session_key``
and REUSED across the sessions of that key (a switch, /resume and /new do not rebuild it). So
it may keep what is the same for every session of the key (the system prompt prefix, the tool
definitions, provider clients), and it must load the transcript per turn, from the session the
turn is for (``transcript_as_messages``). An agent that kept its own history would answer one
session with another's. :class:`Agent` below keeps nothing per session on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
from dataclasses import dataclass, field
from typing import Any

from ledger import AsyncLedger

SIGNATURE = ("demo-model", "tools-v1")
BUILD_SECONDS = 0.2


class Agent:
    """An "expensive" agent: what it holds is the same for every session of its key."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.prompt_prefix = "You are a demo agent."
        self.tools = ("echo",)

    def reply(self, session_id: str, messages: list[dict[str, Any]]) -> str:
        """Answer from the transcript it was handed for this turn (and nothing else)."""
        users = [m["content"] for m in messages if m["role"] == "user"]
        return f"[{session_id}] you said {users[-1]!r} ({len(users)} user turns here)"


@dataclass
class Gateway:
    """One gateway process: routes each chat's text to its session and agent."""

    ledger: AsyncLedger
    name: str
    builds: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cache = self.ledger.cache()

    @staticmethod
    def key(chat: int) -> str:
        return f"agent:main:demo:dm:{chat}"

    async def _build(self, key: str) -> Agent:
        self.builds += 1
        await asyncio.sleep(BUILD_SECONDS)  # loading tools, warming a client, ...
        return Agent(key)

    async def handle(self, chat: int, text: str) -> str | None:
        """One incoming message; returns the reply (None for commands that send none)."""
        key = self.key(chat)
        if text == "/new":
            await self.ledger.open_session(key, source="demo", reason="reset")
            return None
        if text.startswith("/resume "):
            await self.ledger.switch_session(key, text.split(" ", 1)[1], reason="resume")
            return None
        session_id = await self.ledger.ensure_session(key, source="demo")
        if text in ("/undo", "/retry"):
            head = await self.ledger.head(session_id)
            if head is None or head.message_count == 0:
                return None
            transcript = await self.ledger.transcript(session_id)
            last_user = next((m for m in reversed(transcript) if m.role == "user"), None)
            if last_user is None:
                return None
            await self.ledger.retract_turn(session_id, reason=text[1:])
            if text == "/undo":
                return None
            text = str(last_user.content)  # /retry: answer the same message again
        if text == "/compress":
            await self.ledger.open_session(
                key, source="demo", reason="compress", parent_session_id=session_id
            )
            return None
        return await self._turn(key, session_id, text)

    async def _turn(self, key: str, session_id: str, text: str) -> str:
        agent, _ = await self.cache.get_or_build(
            key, session_id, SIGNATURE, lambda: self._build(key)
        )
        await self.ledger.append_message(session_id, "user", text)
        messages = await self.ledger.transcript_as_messages(session_id)
        assert isinstance(messages, list)
        answer = agent.reply(session_id, messages)
        result = await self.ledger.append_message(session_id, "assistant", answer)
        await self.cache.rebaseline(key, session_id, result)
        self.replies.append({"session_id": session_id, "user": text, "reply": answer})
        return answer


async def run(url: str, name: str, chats: int, turns: int, seed: int) -> dict[str, Any]:
    """Play ``turns`` random turns per chat, all chats concurrently; returns a report."""
    rng = random.Random(seed)
    ledger = await AsyncLedger.open(url, writer=f"gateway-{name}")
    gateway = Gateway(ledger, name)
    # Long-lived objects made at start-up (SQLAlchemy, the driver) are left out of the cyclic
    # collector's passes, whose full sweeps otherwise stall the loop for tens of milliseconds.
    gc.freeze()
    try:

        async def chat(number: int) -> None:
            for turn in range(turns):
                roll = rng.random()
                if roll < 0.05:
                    text = "/new"
                elif roll < 0.10:
                    text = "/undo"
                elif roll < 0.15:
                    text = "/retry"
                elif roll < 0.18:
                    text = "/compress"
                else:
                    text = f"{name}-{number}-{turn}"
                await gateway.handle(number, text)

        await asyncio.gather(*(chat(n) for n in range(chats)))
    finally:
        await ledger.close()
    return {"name": name, "builds": gateway.builds, "replies": gateway.replies}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="the ledger's database URL")
    parser.add_argument("--name", default="a", help="this gateway's name (its writer id)")
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.url, args.name, args.chats, args.turns, args.seed))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
