"""The ``search`` asynchronous projection: full-text documents of live chat messages.

Rows go to ``search_documents``; the index over them is the database's own (SQLite FTS5 kept in
step by triggers, PostgreSQL's generated ``tsvector`` with a GIN index; see migration 0002).
User, assistant and tool messages are indexed (tool output is often what a person looks for: the
file that was read, the command's error), with the text parts of multimodal content; system and
developer prompts are not. A retraction removes its messages from the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ledger.codec import content_text
from ledger.events import MessageAppended, MessagesRetracted
from ledger.records import RecordedEvent
from ledger.schema import search_documents
from projections.base import Projection
from projections.checkpoint import lock_checkpoint

__all__ = ["INDEXED_ROLES", "SearchProjection"]

INDEXED_ROLES = frozenset({"user", "assistant", "tool"})


class SearchProjection(Projection):
    """Full-text search over live user, assistant and tool messages."""

    name: ClassVar[str] = "search"
    inline: ClassVar[bool] = False
    default_tables: ClassVar[tuple[sa.Table, ...]] = (search_documents,)
    keys: ClassVar[dict[str, tuple[str, ...]]] = {"search_documents": ("session_id", "message_id")}
    #: Surrogate columns that differ between a live view and a rebuild by construction.
    ignored: ClassVar[dict[str, tuple[str, ...]]] = {"search_documents": ("doc_id",)}

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        t = self.table("search_documents")
        pending: list[dict[str, Any]] = []
        for record in records:
            event = record.event
            if isinstance(event, MessageAppended):
                text = content_text(event.content)
                if event.role in INDEXED_ROLES and text.strip():
                    pending.append(
                        {
                            "session_id": event.session_id,
                            "message_id": event.message_id,
                            "position": record.position,
                            "role": event.role,
                            "content": text,
                        }
                    )
            elif isinstance(event, MessagesRetracted):
                if pending:
                    conn.execute(t.insert(), pending)
                    pending = []
                conn.execute(
                    t.delete().where(
                        t.c.session_id == event.session_id,
                        t.c.message_id.in_(event.message_ids),
                    )
                )
        if pending:
            conn.execute(t.insert(), pending)

    def forget(
        self, conn: sa.Connection, session_id: str, records: Sequence[RecordedEvent]
    ) -> None:
        """Drop a purged session's documents (after any runner batch in flight: see usage)."""
        lock_checkpoint(conn, self.name)
        t = self.table("search_documents")
        conn.execute(t.delete().where(t.c.session_id == session_id))
