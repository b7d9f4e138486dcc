"""Bad input is refused with a typed error and writes nothing; bad stored rows fail by position.

Write-side cases count the rows of ``events`` and ``streams`` before and after the refused call.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import (
    Event,
    EventDecodeError,
    EventStore,
    EventTooLargeError,
    InvalidArgumentError,
    InvalidEventError,
    LedgerError,
    StreamAppend,
    UnknownEventTypeError,
    errors,
)
from ledger.config import Settings
from ledger.schema import events as events_table
from ledger.schema import streams as streams_table
from tests import controls


class Unregistered(Event, frozen=True, kw_only=True, tag="Unregistered"):
    """An event class the store's codec was never told about."""

    note: str = ""


class Impostor(Event, frozen=True, kw_only=True, tag="MessageAppended"):
    """An unregistered class that borrows a registered tag."""

    session_id: str = "a"


def count_rows(store: EventStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(streams_table)).scalar_one(),
        )


@contextmanager
def writes_nothing(store: EventStore) -> Iterator[None]:
    """Assert that the block leaves ``events`` and ``streams`` as they were."""
    before = count_rows(store)
    yield
    assert count_rows(store) == before, "a refused append wrote rows"


@pytest.fixture
def seeded(store: EventStore) -> EventStore:
    """The store with one stream already written, so "nothing written" is not just "empty"."""
    store.append("session-a", [controls.opened()])
    return store


def insert_raw(store: EventStore, type_name: str, data: bytes) -> int:
    """Store a row by hand, bypassing the codec; returns its position."""
    row = {
        "stream": "session-raw",
        "sequence": 1,
        "type": type_name,
        "data": data,
        "event_id": uuid.uuid4(),
        "writer": "hand",
        "recorded_at": dt.datetime.now(dt.UTC),
        "schema_version": 1,
    }
    with store.engine.begin() as conn:
        return int(
            conn.execute(events_table.insert().returning(events_table.c.position), row).scalar_one()
        )


# -- write side ---------------------------------------------------------------------------------


def test_unregistered_event_class_is_refused(seeded: EventStore) -> None:
    """An Event subclass whose tag was never registered is refused before anything is written."""
    with (
        writes_nothing(seeded),
        pytest.raises(
            InvalidEventError,
            match=r"^Invalid event 'Unregistered': event class is not registered$",
        ),
    ):
        seeded.append("session-a", [Unregistered()])


def test_class_borrowing_a_registered_tag_is_refused(seeded: EventStore) -> None:
    """A class reusing a registered tag is not mistaken for the registered class."""
    with (
        writes_nothing(seeded),
        pytest.raises(InvalidEventError, match=r"^Invalid event 'Impostor': .*not registered$"),
    ):
        seeded.append("session-a", [Impostor()])


def test_object_that_is_not_an_event_is_refused(seeded: EventStore) -> None:
    """Something that is not a ledger Event at all is refused."""
    bogus: Any = {"type": "MessageAppended"}
    with (
        writes_nothing(seeded),
        pytest.raises(InvalidEventError, match=r"^Invalid event 'dict': not a ledger Event$"),
    ):
        seeded.append("session-a", [bogus])


def test_invalid_literal_value_is_refused_with_its_path(seeded: EventStore) -> None:
    """A role outside the allowed literals fails validation at ``$.role``."""
    with (
        writes_nothing(seeded),
        pytest.raises(
            InvalidEventError, match=r"^Invalid event 'MessageAppended': Invalid enum value 'bogus'"
        ) as info,
    ):
        seeded.append("session-a", [controls.message(role="bogus")])
    assert info.value.path == "$.role"
    assert info.value.type == "MessageAppended"


def test_wrong_field_type_is_refused_with_its_path(seeded: EventStore) -> None:
    """A non-string ``content`` is caught on write even though msgspec's ``__init__`` allows it."""
    with (
        writes_nothing(seeded),
        pytest.raises(
            InvalidEventError,
            match=r"Expected `str \| array \| null`, got `int` - at `\$\.content`",
        ),
    ):
        seeded.append("session-a", [controls.message(content=123)])


def test_empty_session_id_is_refused(seeded: EventStore) -> None:
    """An empty ``session_id`` breaks its ``min_length=1`` constraint."""
    with (
        writes_nothing(seeded),
        pytest.raises(InvalidEventError, match=r"length >= 1 - at `\$\.session_id`") as info,
    ):
        seeded.append("session-a", [controls.message(session_id="")])
    assert info.value.path == "$.session_id"


def test_event_over_the_configured_size_limit_is_refused(migrated_url: str) -> None:
    """With ``max_event_bytes=1000`` a larger encoded event raises EventTooLargeError."""
    settings = Settings(max_event_bytes=1000)
    with EventStore.open(migrated_url, writer="test-writer", settings=settings) as store:
        store.append("session-a", [controls.message(content="small")])
        with (
            writes_nothing(store),
            pytest.raises(
                EventTooLargeError,
                match=r"^Invalid event 'MessageAppended': encoded size \d+ bytes in stream "
                r"'session-a' exceeds the limit of 1000 bytes \(LEDGER_MAX_EVENT_BYTES\)$",
            ) as info,
        ):
            store.append("session-a", [controls.message(content="x" * 1000)])
    assert info.value.limit == 1000
    assert info.value.size > 1000


@pytest.mark.parametrize("expected", [-1, True], ids=["negative", "bool"])
def test_expected_sequence_must_be_a_non_negative_int(seeded: EventStore, expected: Any) -> None:
    """A negative or boolean ``expected_sequence`` is refused rather than compared."""
    with (
        writes_nothing(seeded),
        pytest.raises(
            InvalidArgumentError,
            match=rf"^Invalid expected_sequence {expected!r}: expected None or an integer >= 0$",
        ),
    ):
        seeded.append("session-a", [controls.message()], expected_sequence=expected)


def test_event_ids_must_match_the_event_count(seeded: EventStore) -> None:
    """Giving two event_ids for one event is refused."""
    with (
        writes_nothing(seeded),
        pytest.raises(
            InvalidArgumentError,
            match=r"^Invalid event_ids '2 ids': expected one per event \(1\)$",
        ),
    ):
        seeded.append("session-a", [controls.message()], event_ids=[uuid.uuid4(), uuid.uuid4()])


def test_event_id_must_be_a_uuid(seeded: EventStore) -> None:
    """An event_id that does not parse as a UUID is refused."""
    with (
        writes_nothing(seeded),
        pytest.raises(InvalidArgumentError, match=r"^Invalid event_id 'nope': expected a UUID$"),
    ):
        seeded.append("session-a", [controls.message()], event_ids=["nope"])


@pytest.mark.parametrize("stream", ["", "s" * 301], ids=["empty", "too-long"])
def test_stream_name_must_be_1_to_300_characters(seeded: EventStore, stream: str) -> None:
    """An empty or over-long stream name is refused."""
    with (
        writes_nothing(seeded),
        pytest.raises(
            InvalidArgumentError,
            match=r"^Invalid stream '.*': expected a name of 1\.\.300 characters$",
        ),
    ):
        seeded.append(stream, [controls.message()])


def test_invalid_second_part_of_a_multi_stream_append_writes_no_part(seeded: EventStore) -> None:
    """When the second stream's event is invalid, the valid first stream is not written either."""
    with writes_nothing(seeded), pytest.raises(InvalidEventError, match=r"at `\$\.role`"):
        seeded.append_streams(
            [
                StreamAppend(stream="session-b", events=[controls.opened("b")]),
                StreamAppend(stream="session-c", events=[controls.message("c", role="bogus")]),
            ]
        )
    assert seeded.head_sequence("session-b") == 0


# -- read side ----------------------------------------------------------------------------------


def test_stored_row_of_unknown_type_raises_naming_its_position(store: EventStore) -> None:
    """Reading a row whose type no class is registered for raises UnknownEventTypeError."""
    position = insert_raw(store, "Retired", b'{"type":"Retired"}')
    with pytest.raises(
        UnknownEventTypeError, match=rf"^Unknown event type 'Retired' at position {position}$"
    ) as info:
        list(store.read_stream("session-raw"))
    assert (info.value.type, info.value.position) == ("Retired", position)


def test_stored_payload_failing_validation_raises_decode_error(store: EventStore) -> None:
    """Reading a stored payload that breaks its class's schema names the position and path."""
    data = (
        b'{"type":"MessageAppended","session_id":"a","message_id":"m1",'
        b'"role":"bogus","content":"hi"}'
    )
    position = insert_raw(store, "MessageAppended", data)
    with pytest.raises(
        EventDecodeError,
        match=rf"^Cannot decode event 'MessageAppended' at position {position}: "
        r"Invalid enum value 'bogus' - at `\$\.role`$",
    ) as info:
        list(store.read_all())
    assert (info.value.position, info.value.path) == (position, "$.role")


# -- the error tree -----------------------------------------------------------------------------


def documented_bases() -> dict[str, list[str]]:
    """``{error: [bases]}`` as drawn in the tree of the ``ledger.errors`` docstring."""
    assert errors.__doc__ is not None
    tree = re.findall(r"(\w+Error)\(([\w, ]+)\)", errors.__doc__)
    return {name: [base.strip() for base in bases.split(",")] for name, bases in tree}


def test_error_tree_in_the_docstring_lists_every_exported_error() -> None:
    """The docstring's tree and ``errors.__all__`` name the same classes."""
    assert set(documented_bases()) == set(errors.__all__)


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_subclasses_ledger_error_and_its_documented_bases(name: str) -> None:
    """Each error derives from LedgerError and from every base its docstring line names."""
    cls = getattr(errors, name)
    assert issubclass(cls, LedgerError)
    for base_name in documented_bases()[name]:
        base = getattr(errors, base_name, None) or getattr(builtins, base_name)
        assert issubclass(cls, base), f"{name} does not derive from {base_name}"
