"""What the eventsourcing side of ``benchmarks/peers.py`` does, through its recorder API.

eventsourcing 9.5 (the ``bench`` extra) is driven below its ``Application``: an
``SQLiteApplicationRecorder`` or ``PostgresApplicationRecorder`` on a datastore of its own, and
its ``Mapper`` with the ``JSONTranscoder`` an application would use, so each side encodes on
the way in and decodes on the way out. Its events are a ``DomainEvent`` with the fields of the
ledger's ``MessageAppended`` and the same content, over ``STREAMS`` aggregates (its originator
ids), like the ledger side's streams. The domain events are built before the clock starts, as
the ledger side's events are: making them is the caller's work; turning them into
``StoredEvent`` rows (``Mapper.to_stored_event``) is timed, as the ledger's encoding is.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import defaultdict
from typing import Any

import msgspec
import sqlalchemy as sa
from _harness.machine import sqlite_pragmas
from _harness.timing import Runner, Timing
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from _workloads.append import STREAMS, make_message
from ledger import EventStore, MessageAppended

__all__ = [
    "Message",
    "Peer",
    "ledger_reader",
    "peer_postgres",
    "peer_sqlite",
]

READ_BATCH = 5000


def message_class() -> type[DomainEvent]:
    """``Message``: the ledger's ``MessageAppended`` as an eventsourcing ``DomainEvent``, made
    from the struct's own fields (names and defaults), so the two never drift apart."""
    fields = msgspec.structs.fields(MessageAppended)
    if any(f.default_factory is not msgspec.NODEFAULT for f in fields):
        raise TypeError("MessageAppended has a default factory; give Message one too")
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": "Message",
        "__doc__": message_class.__doc__,
        "__annotations__": {f.name: "Any" for f in fields},
    }
    namespace.update({f.name: f.default for f in fields if f.default is not msgspec.NODEFAULT})
    return type(DomainEvent)("Message", (DomainEvent,), namespace)


#: The topic of its stored events is ``_workloads.peers:Message``, which resolves to this.
Message = message_class()


def mapper() -> Mapper[uuid.UUID]:
    """The mapper an eventsourcing application makes by default: JSON, no compression."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


class Peer:
    """An eventsourcing application recorder and its mapper, as the contender."""

    def __init__(self, recorder: Any, datastore: Any) -> None:
        self.recorder = recorder
        self.datastore = datastore
        self.mapper = mapper()
        recorder.create_table()

    def close(self) -> None:
        self.datastore.close()

    def message(self, stream: int, version: int, case: str, index: int) -> Message:
        """The ``index``-th message, on the ``stream``-th aggregate of ``case`` at ``version``,
        with the fields and session id the ledger side's would have."""
        fields = msgspec.structs.asdict(make_message(index, f"{case}-{stream:02d}"))
        return Message(
            originator_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{case}-{stream}"),
            originator_version=version,
            timestamp=Message.create_timestamp(),
            **fields,
        )

    def payload_bytes(self) -> int:
        """The size of one stored event's state."""
        return len(self.mapper.to_stored_event(self.message(0, 1, "single", 0)).state)

    def writer(self, case: str, size: int) -> Runner:
        """``insert_events`` of ``size`` events per call, rotating over ``STREAMS`` aggregates."""
        heads: defaultdict[int, int] = defaultdict(int)
        turn = itertools.count()
        numbers = itertools.count()

        def run(n: int) -> Timing:
            work = []
            for _ in range(n):
                stream = next(turn) % STREAMS
                first = heads[stream] + 1
                heads[stream] += size
                work.append(
                    [self.message(stream, first + i, case, next(numbers)) for i in range(size)]
                )
            start = time.perf_counter()
            for events in work:
                self.recorder.insert_events([self.mapper.to_stored_event(e) for e in events])
            return time.perf_counter() - start, []

        return run

    def reader(self, expected: int) -> Runner:
        """``n`` passes of ``select_notifications`` over the whole log, each decoded by the
        mapper into a ``Message``; each pass must see ``expected`` events."""

        def run(n: int) -> Timing:
            start = time.perf_counter()
            for _ in range(n):
                count = after = 0
                while page := self.recorder.select_notifications(
                    after, READ_BATCH, inclusive_of_start=False
                ):
                    for notification in page:
                        self.mapper.to_domain_event(notification)
                    count += len(page)
                    after = page[-1].id
                check_count("eventsourcing", count, expected)
            return time.perf_counter() - start, []

        return run

    def count(self) -> int:
        """The events the log holds."""
        return int(self.recorder.max_notification_id() or 0)


def ledger_reader(store: EventStore, expected: int) -> Runner:
    """``n`` passes of ``store.read_all`` over the whole log (each event decoded)."""

    def run(n: int) -> Timing:
        start = time.perf_counter()
        for _ in range(n):
            count = sum(1 for _ in store.read_all(batch_size=READ_BATCH))
            check_count("ledger", count, expected)
        return time.perf_counter() - start, []

    return run


def check_count(side: str, count: int, expected: int) -> None:
    if count != expected:
        raise RuntimeError(f"{side}: read {count} events, {expected} expected")


def peer_sqlite(path: str, busy_timeout_ms: int) -> tuple[Peer, dict[str, str]]:
    """The SQLite recorder on ``path`` (it sets WAL itself), the ledger's busy timeout as its
    lock timeout; and the PRAGMAs its writer connection runs with."""
    datastore = SQLiteDatastore(path, lock_timeout=max(1, busy_timeout_ms // 1000))
    peer = Peer(SQLiteApplicationRecorder(datastore), datastore)
    with datastore.get_connection(commit=True) as conn, conn.cursor() as cursor:
        pragmas = sqlite_pragmas(cursor.connection)
        busy = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
    return peer, pragmas | {"busy_timeout_ms": str(busy)}


def peer_postgres(url: str) -> tuple[Peer, dict[str, str]]:
    """The PostgreSQL recorder in the schema that ``url``'s ``search_path`` names; and the
    commit settings its connections see."""
    parsed = sa.make_url(url)
    schema = str(parsed.query["options"]).partition("search_path=")[2]
    datastore = PostgresDatastore(
        dbname=parsed.database or "",
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "",
        password=parsed.password or "",
        schema=schema,
    )
    peer = Peer(PostgresApplicationRecorder(datastore), datastore)
    with datastore.get_connection() as conn:
        seen = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[name])  # type: ignore[index]
            for name in ("synchronous_commit", "fsync")
        }
    return peer, seen
