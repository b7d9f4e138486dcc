"""Adapters to the frameworks and tools gateways use (optional extras, imported on demand).

* :mod:`ledger.integrations.agents`: ``LedgerSession``, an OpenAI Agents SDK ``Session``
  (extra ``session-ledger[agents]``).
* :mod:`ledger.integrations.langchain`: ``LedgerChatMessageHistory``, a LangChain
  ``BaseChatMessageHistory`` (extra ``session-ledger[langchain]``).
* :mod:`ledger.integrations.prometheus`: metrics (extra ``session-ledger[prometheus]``).

This package itself imports nothing optional: each adapter imports its framework, so the core
works without any of them. The helper below is what the history adapters share: the event ids
that make a retried append write its messages once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ledger.idempotency import NAMESPACE

__all__ = ["Memo", "RetryIds"]

#: A remembered batch: the session it went to and the digest of its content.
Memo = tuple[str, str]

#: How many failed batches a history adapter remembers for their retries.
_REMEMBERED = 64


class RetryIds:
    """Event ids for a history adapter's appends, so that a RETRIED append writes once.

    An append whose call raised (a lost connection, a timeout, a cancelled task) may or may not
    have committed. Its ids are remembered under the session and a digest of its batch; the next
    append of the same batch to the same session reuses them, so the ledger returns the first
    write's result (``duplicate=True``) instead of storing the messages twice. An append that
    succeeded is forgotten: the same content appended again later is a new message (a user may
    well say "yes" twice).

    ``key`` gives ids derived from the key alone (:meth:`derived`), the same in every process:
    a retry from another process, after a crash, is then recognised too.
    """

    def __init__(self, adapter: str) -> None:
        self.adapter = adapter
        self._failed: OrderedDict[Memo, list[uuid.UUID]] = OrderedDict()
        self._lock = threading.Lock()

    def derived(self, session_id: str, key: str | uuid.UUID, count: int) -> list[uuid.UUID]:
        """``count`` ids from a caller's idempotency ``key`` within ``session_id``."""
        base = f"{self.adapter}\x1f{session_id}\x1f{key}"
        return [uuid.uuid5(NAMESPACE, f"{base}\x1f{i}") for i in range(count)]

    def take(self, session_id: str, batch: Sequence[Any]) -> tuple[Memo, list[uuid.UUID]]:
        """The ids for appending ``batch`` (JSON-able) to ``session_id``: those of a failed
        append of the same batch, else new ones. Returns the memo key for :meth:`failed`."""
        digest = hashlib.sha256(
            json.dumps(list(batch), sort_keys=True, default=str).encode()
        ).hexdigest()
        memo = (session_id, digest)
        with self._lock:
            ids = self._failed.pop(memo, None)
        return memo, ids or [uuid.uuid4() for _ in batch]

    def failed(self, memo: Memo, ids: list[uuid.UUID]) -> None:
        """Remember the ids of an append that raised, for its retry."""
        with self._lock:
            self._failed[memo] = ids
            while len(self._failed) > _REMEMBERED:
                self._failed.popitem(last=False)

    def forget(self) -> None:
        """Drop every remembered batch (the history was cleared or rewound)."""
        with self._lock:
            self._failed.clear()
