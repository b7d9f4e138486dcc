"""Import a Hermes Agent ``state.db`` into the ledger, exactly and incrementally.

The source is opened without writing beside it and read in one snapshot (``_source``), and
streamed: only a small index of the sessions and per-session row ids are held in memory; each
session's messages are read with a cursor, and at most ``batch_size`` events are built before
they are written. Whatever Hermes schema version wrote the file, the columns present are read
and absent ones tolerated. What each column becomes is ``_mapping``'s business:

* ``sessions`` row → ``SessionOpened`` (source, user, model, title, lineage with its reason:
  ``branch``, ``reset``, ``delegate`` for a subagent's child, else ``compress``; Hermes'
  ``started_at``; the system prompt, inline or from ``system_prompts`` by hash; ``model_config``)
  then ``SessionSwitched`` on its key, sessions in start order (parents first);
  ``SessionClosed`` with ``end_reason`` and ``ended_at``; the token and cost counters as
  ``UsageRecorded`` on ``usage-<id>``. Other columns go unchanged into ``metadata``.
* ``messages`` row → ``MessageAppended`` with the row id as ``message_id``, ``timestamp`` as
  ``created_at``, content (NULL stays None, ``"\\x00json:" + JSON`` becomes content parts), tool
  fields, reasoning fields; ``compacted``/``active = 0`` rows are followed by a retraction.
* Reported, not imported: rows of other roles, orphan rows, and a row the ledger cannot take
  (``bad_rows``: id and reason); the rest of its session is imported.

A re-import compares content (``_reconcile``): each session's row ids and live flags against
the ledger's transcript, its title, end and usage. An unchanged session is skipped without
reading its messages; a changed one gets exactly the events that bring it in line (new rows,
retractions of deleted or rewound ones, a reopen, a new title, prompt or usage). A key whose
active session on the ledger started later than the imported one is never switched back.
Every event id is a UUIDv5 in :data:`NAMESPACE`, so re-running an import writes nothing twice.
Each session is written in ONE transaction (small sessions share one), so a killed import never
leaves half a session.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from ledger.codec import check_text
from ledger.errors import (
    DuplicateEventError,
    InvalidArgumentError,
    InvalidEventError,
    WrongExpectedVersionError,
)
from ledger.events import (
    Event,
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionOpened,
    SessionReopened,
    SessionSwitched,
    SwitchReason,
    UsageRecorded,
)
from ledger.facade import Ledger
from ledger.hermes._mapping import (
    MESSAGE_FIELDS,
    NAMESPACE,
    SESSION_FIELDS,
    Planned,
    RowMapper,
    event_id,
)
from ledger.hermes._reconcile import (
    LedgerSide,
    ledger_sides,
    reconcile,
    retracted,
    unchanged,
    usage_delta,
)
from ledger.hermes._source import (
    HermesSource,
    foreign_file,
    session_key_of,
)
from ledger.hermes._summary import ImportSummary
from ledger.records import StreamAppend
from ledger.schema import session_heads, session_keys
from ledger.streams import key_stream, session_stream, usage_stream
from ledger.views import SessionUsage

__all__ = [
    "NAMESPACE",
    "ImportSummary",
    "count_hermes_messages",
    "event_id",
    "import_hermes",
]

#: What fails one session (or group, retried one by one) instead of the whole import: an
#: InvalidArgumentError is text no backend can store (a NUL in a key, say).
_RECOVERABLE = (
    InvalidArgumentError,
    InvalidEventError,
    WrongExpectedVersionError,
    DuplicateEventError,
)
T = TypeVar("T")


def _older(active: tuple[str, Any] | None, started_at: dt.datetime | None) -> bool:
    """Whether an imported session started at ``started_at`` may become the key's active one:
    the key has none, or its active session started no later (a newer one stays active)."""
    if active is None or active[1] is None or started_at is None:
        return True
    return bool(active[1] <= started_at)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def count_hermes_messages(path: str | Path) -> int:
    """The number of message rows :func:`import_hermes` reports progress for."""
    source = HermesSource(path)
    try:
        return source.count_rows()
    except sqlite3.DatabaseError as exc:
        raise foreign_file(path, str(exc)) from exc
    finally:
        source.close()


def import_hermes(
    ledger: Ledger,
    path: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 500,
) -> ImportSummary:
    """Import the sessions and messages of the Hermes ``state.db`` at ``path`` (see the module).

    ``progress(n)`` is called as message rows are done; their total is
    :func:`count_hermes_messages`. A missing file, a file that is not SQLite, or one without the
    Hermes tables raises :class:`InvalidArgumentError` (argument ``state.db``) and writes nothing.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError("batch_size", batch_size, "an integer >= 1")
    source = HermesSource(path)
    try:
        return _Importer(ledger, source, progress, batch_size).run()
    except sqlite3.DatabaseError as exc:
        raise foreign_file(path, f"reading failed mid-import ({exc})") from exc
    finally:
        source.close()


class _Item(msgspec.Struct, kw_only=True):
    """One session's events waiting to be written, and where they go."""

    session_id: str
    key: str
    reason: SwitchReason
    started_at: dt.datetime | None
    events: Iterable[Planned]
    #: The session's usage growth, for its usage stream.
    usage: Planned | None
    expected: int
    new: bool
    rows: int


class _Importer:
    """One run: plans each session's events, groups small sessions, writes, tallies."""

    def __init__(
        self,
        ledger: Ledger,
        source: HermesSource,
        progress: Callable[[int], None] | None,
        batch_size: int,
    ) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.source = source
        self.progress = progress
        self.batch_size = batch_size
        self.summary = ImportSummary(path=str(source.path))
        self.group: list[_Item] = []
        self.group_events = 0
        self.touched: set[str] = set()
        self.mapper = RowMapper(source, self.summary, self.store.codec.max_event_bytes)

    def run(self) -> ImportSummary:
        started = time.perf_counter()
        s = self.summary
        s.unknown_columns = {
            "sessions": [c for c in self.source.sessions if c not in SESSION_FIELDS],
            "messages": [c for c in self.source.messages if c not in MESSAGE_FIELDS],
        }
        index = self._storable(self.source.index())
        counts = self.source.counts()
        end_reasons = {row["id"]: row.get("end_reason") for row in index}
        s.orphan_rows = sum(c[0] for sid, c in counts.items() if sid not in end_reasons)
        for window in _chunks(index, 500):
            sides = ledger_sides(self.store.engine, [str(row["id"]) for row in window])
            hermes_rows = self.source.message_ids(
                [row["id"] for row in window if str(row["id"]) in sides]
            )
            for row in window:
                parent = row.get("parent_session_id")
                s.missing_parents += bool(parent) and parent not in end_reasons
                rows, live, gone, meta = counts.get(row["id"], (0, 0, 0, 0))
                s.skipped_meta_rows += meta
                s.unknown_role_rows += rows - live - meta
                planned = 1 + live + gone + (row.get("ended_at") is not None)
                sid = str(row["id"])
                seen = hermes_rows.get(sid, {})
                self._session(row, end_reasons.get(parent), sides.get(sid), seen, planned, rows)
        self._flush()
        self._activate_latest(index)
        s.keys = len(self.touched)
        s.seconds = round(time.perf_counter() - started, 3)
        return s

    def _storable(self, index: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The index without the sessions no ledger can hold, each reported, never fatal.

        A row with a NULL id is a bad row (no session to fail); an id holding NUL or a lone
        surrogate (PostgreSQL cannot store either; both backends refuse it alike) fails its
        session. A key like that fails its session when written (InvalidArgumentError).
        """
        kept: list[dict[str, Any]] = []
        for number, row in enumerate(index):
            if row["id"] is None:
                self.summary.bad_rows[f"<NULL>/session-{number}"] = "sessions row with a NULL id"
                continue
            try:
                check_text("session_id", str(row["id"]))
            except InvalidArgumentError as exc:
                self.summary.failed_sessions[str(row["id"])] = str(exc)
                continue
            kept.append(row)
        return kept

    # -- planning ----------------------------------------------------------------------------

    def _session(
        self,
        index_row: dict[str, Any],
        parent_end: Any,
        side: LedgerSide | None,
        hermes_rows: dict[str, bool],
        planned: int,
        rows: int,
    ) -> None:
        """Queue a new session whole, queue what an imported one lacks, skip, or refuse it."""
        sid = str(index_row["id"])
        key = session_key_of(index_row)
        usage = usage_delta(sid, index_row, side.usage if side else SessionUsage(session_id=sid))
        if side is None:
            opened = self.mapper.opened(index_row["id"], parent_end)
            item = _Item(
                session_id=sid,
                key=key,
                reason=opened.reason,
                started_at=opened.started_at,
                events=self._fresh(index_row, opened),
                usage=usage,
                expected=0,
                new=True,
                rows=rows,
            )
            return self._queue(item, planned)
        if side.state == "purged" or unchanged(index_row, side, hermes_rows):
            self.summary.skipped_sessions += 1
            return self._advance(rows)
        # Archived events too: a session `ledger compact archive` moved is still Hermes'.
        stored_ids = {r.event_id for r in self.store.read_stream(session_stream(sid))}
        if event_id(sid, "", "opened") not in stored_ids:
            return self._fail(sid, rows, "the ledger holds a session with this id not from Hermes")
        missing = reconcile(self.mapper, index_row, side, stored_ids)
        if usage is not None and usage[0] in stored_ids:
            usage = None
        if not missing and usage is None:
            self.summary.skipped_sessions += 1
            return self._advance(rows)
        item = _Item(
            session_id=sid,
            key=key,
            reason="new",
            started_at=side.started_at,
            events=missing,
            usage=usage,
            expected=side.sequence,
            new=False,
            rows=rows,
        )
        return self._queue(item, len(missing) + 1)

    def _fresh(self, row: dict[str, Any], opened: SessionOpened) -> Iterator[Planned]:
        """A new session's events: opened, its rows (retracted where Hermes undid them), closed."""
        sid = opened.session_id
        yield event_id(sid, "", "opened"), opened
        for mid, message, live, why in self.mapper.messages(row["id"]):
            yield event_id(sid, mid, "message"), message
            if not live:
                yield event_id(sid, mid, "retracted"), retracted(sid, [mid], why)
        closed = self.mapper.closed(row)
        if closed is not None:
            yield event_id(sid, "", "closed"), closed

    # -- writing -----------------------------------------------------------------------------

    def _queue(self, item: _Item, count: int) -> None:
        """Write a large session alone (streamed); group small ones up to ``batch_size``."""
        if count > self.batch_size:
            self._flush()
            return self._commit([item], alone=True)
        if self.group_events + count > self.batch_size:
            self._flush()
        item.events = list(item.events)
        self.group.append(item)
        self.group_events += count
        return None

    def _flush(self) -> None:
        group, self.group, self.group_events = self.group, [], 0
        if group:
            self._commit(group, alone=len(group) == 1)

    def _commit(self, items: list[_Item], *, alone: bool) -> None:
        """Write ``items`` in one transaction; if the ledger refuses, retry them one by one."""
        try:
            self._write(items)
        except _RECOVERABLE as exc:
            if alone:
                return self._fail(items[0].session_id, items[0].rows, str(exc))
            for item in items:
                self._commit([item], alone=True)
            return None
        return self._advance(sum(item.rows for item in items))

    def _write(self, items: list[_Item]) -> None:
        """Append the items' events in one transaction, at most ``batch_size`` per statement."""
        tally: dict[type[Event], int] = {}
        keys = sorted({item.key for item in items if item.new})
        locked = [*map(key_stream, keys), *(session_stream(item.session_id) for item in items)]
        locked += [usage_stream(item.session_id) for item in items if item.usage is not None]
        with self.store.transaction(streams=locked) as conn:
            active = self._active(conn, keys)
            parts: list[StreamAppend] = []
            for item in items:
                for number, chunk in enumerate(_chunks(item.events, self.batch_size)):
                    parts.append(
                        StreamAppend(
                            stream=session_stream(item.session_id),
                            events=[e for _, e in chunk],
                            event_ids=[i for i, _ in chunk],
                            expected_sequence=None if number else item.expected,
                        )
                    )
                    if item.new and not number and _older(active.get(item.key), item.started_at):
                        previous = active.get(item.key)
                        parts.append(self._switch(item, previous[0] if previous else None))
                        active[item.key] = (item.session_id, item.started_at)
                    if sum(len(part.events) for part in parts) >= self.batch_size:
                        self._append(conn, parts, tally)
                        parts = []
                if item.usage is not None:
                    usage_id, usage = item.usage
                    stream = usage_stream(item.session_id)
                    parts.append(StreamAppend(stream=stream, events=[usage], event_ids=[usage_id]))
            self._append(conn, parts, tally)
        s = self.summary
        for item in items:
            s.sessions += item.new
            s.updated_sessions += not item.new
            self.touched.add(item.key)
        s.messages += tally.get(MessageAppended, 0)
        s.retractions += tally.get(MessagesRetracted, 0)
        s.closed_sessions += tally.get(SessionClosed, 0)
        s.reopened_sessions += tally.get(SessionReopened, 0)
        s.usage_records += tally.get(UsageRecorded, 0)
        s.switches += tally.get(SessionSwitched, 0)
        s.events += sum(tally.values())

    def _append(
        self, conn: sa.Connection, parts: list[StreamAppend], tally: dict[type[Event], int]
    ) -> None:
        if not parts:
            return
        for part, result in zip(parts, self.store.append_in(conn, parts), strict=True):
            for event in () if result.duplicate else part.events:
                tally[type(event)] = tally.get(type(event), 0) + 1

    @staticmethod
    def _active(conn: sa.Connection, keys: list[str]) -> dict[str, tuple[str, Any]]:
        """Each key's active session on the ledger, with that session's start time."""
        k, h = session_keys, session_heads
        query = (
            sa.select(k.c.session_key, k.c.session_id, h.c.started_at)
            .join(h, h.c.session_id == k.c.session_id, isouter=True)
            .where(k.c.session_key.in_(keys))
        )
        return {key: (sid, started) for key, sid, started in conn.execute(query)}

    @staticmethod
    def _switch(item: _Item, previous: str | None) -> StreamAppend:
        """The key-stream append that makes the new session the key's active one."""
        event = SessionSwitched(
            session_key=item.key,
            session_id=item.session_id,
            previous_session_id=previous,
            reason=item.reason,
        )
        switch_id = event_id(item.session_id, "", "switched")
        return StreamAppend(stream=key_stream(item.key), events=[event], event_ids=[switch_id])

    def _activate_latest(self, index: list[dict[str, Any]]) -> None:
        """Leave each key this run touched on its latest-started imported session."""
        latest: dict[str, str] = {}
        for row in index:  # in import order: by start time, parents first
            sid, key = str(row["id"]), session_key_of(row)
            if key in self.touched and sid not in self.summary.failed_sessions:
                latest[key] = sid
        for key, sid in latest.items():
            active = self.ledger.active_session(key)
            if active == sid:
                continue
            current = None if active is None else self.ledger.head(active)
            candidate = self.ledger.head(sid)
            newer = (
                current is not None
                and candidate is not None
                and not _older((current.session_id, current.started_at), candidate.started_at)
            )
            if newer:
                continue  # the gateway has opened a newer session under this key since
            if self.ledger.switch_session(key, sid, reason="resume") is not None:
                self.summary.switches += 1
                self.summary.events += 1

    def _fail(self, session_id: str, rows: int, error: str) -> None:
        self.summary.failed_sessions[session_id] = error
        self._advance(rows)

    def _advance(self, rows: int) -> None:
        if self.progress is not None and rows:
            self.progress(rows)
