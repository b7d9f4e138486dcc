"""Stable event ids from the ids chat platforms give their updates (the idempotency key).

A gateway that receives the same platform update twice (a webhook retry, a reconnect that
replays the last updates) must store its message once. Pass ``event_id=platform_event_id(...)``
to :meth:`Ledger.append_message`: the second append returns the first one's result and writes
nothing, and an append of DIFFERENT content under the same id raises
:class:`~ledger.errors.IdempotencyConflictError` instead of returning the old result as if it
were this one.

The id is a UUID version 5 of ``platform``, ``scope`` and ``update_id`` under a fixed namespace,
so every process and host derives the same id. Use ``scope`` wherever the platform's ids are
unique only within something: Telegram's ``update_id`` within one bot (scope: the bot id),
Slack's ``ts`` within one channel (scope: the channel id). Discord message ids (snowflakes) are
unique on their own.
"""

from __future__ import annotations

import uuid

from ledger.errors import InvalidArgumentError

__all__ = ["NAMESPACE", "platform_event_id"]

#: The namespace of every platform event id (a fixed, random UUID; never change it).
NAMESPACE = uuid.UUID("5b0c8f0e-6a49-4f3c-9d1e-2f7a4c1b8e53")


def platform_event_id(
    platform: str, update_id: int | str, *, scope: str | None = None
) -> uuid.UUID:
    """The event id of one platform update: the same inputs give the same id, everywhere.

    ``platform`` is case-insensitive (``"Telegram"`` and ``"telegram"`` are one platform).
    """
    if not platform or str(update_id) == "":
        raise InvalidArgumentError(
            "platform_event_id", (platform, update_id), "a platform and an id"
        )
    name = f"{platform.lower()}\x1f{scope or ''}\x1f{update_id}"
    return uuid.uuid5(NAMESPACE, name)
