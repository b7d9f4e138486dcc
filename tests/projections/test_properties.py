"""Property tests: random histories of a gateway fold into heads a pure-Python model predicts.

Hypothesis draws sequences of operations (open a session under a key, append messages, retract
some live ones, title, close, switch a key) and applies them through ``EventStore.append`` and
``append_streams``. Afterwards both inline projections verify clean against the log, and every
head equals the model: ``sequence`` is the number of events in the session stream and
``message_count`` the number of live messages. Examples share one database per test, so each
uses its own id prefix; a ``RuleBasedStateMachine`` version checks the model after every step.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ledger import EventStore, StreamAppend
from ledger.config import Settings
from ledger.views import SessionViews
from projections.keys import KeysProjection
from projections.rebuild import rebuild, verify
from projections.sessions import SessionsProjection
from tests import controls

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEYS = 3


@dataclasses.dataclass
class ModelSession:
    """What the projection should say about one session."""

    key: str
    sequence: int = 1
    live: list[str] = dataclasses.field(default_factory=list)
    every: list[str] = dataclasses.field(default_factory=list)
    title: str | None = None
    state: str = "open"


class Gateway:
    """Drives a store like a gateway would and keeps the model of what the views must hold."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.views = SessionViews(store.engine)
        self.prefix = uuid.uuid4().hex[:8]
        self.counter = itertools.count(1)
        self.sessions: dict[str, ModelSession] = {}
        self.active: dict[str, str] = {}

    def key(self, index: int) -> str:
        return f"{self.prefix}:key{index % KEYS}"

    def pick(self, index: int) -> str | None:
        """The ``index``-th session (modulo how many exist), ``None`` before any is open."""
        if not self.sessions:
            return None
        return list(self.sessions)[index % len(self.sessions)]

    def _message_ids(self, session_id: str, count: int) -> list[str]:
        return [f"{session_id}-m{next(self.counter)}" for _ in range(count)]

    # -- operations ----------------------------------------------------------------------------

    def open(self, key_index: int) -> None:
        """Open a new session under a key and make it active, in one two-stream append."""
        key = self.key(key_index)
        session_id = f"{self.prefix}-s{next(self.counter)}"
        switch = controls.switched(key, session_id, self.active.get(key), reason="new")
        self.store.append_streams(
            [
                StreamAppend(
                    stream=f"session-{session_id}",
                    events=[controls.opened(session_id, key)],
                    expected_sequence=0,
                ),
                StreamAppend(stream=f"key-{key}", events=[switch]),
            ]
        )
        self.sessions[session_id] = ModelSession(key=key)
        self.active[key] = session_id

    def message(self, index: int, count: int) -> None:
        """Append ``count`` messages to an existing session in one append."""
        session_id = self.pick(index)
        if session_id is None:
            return
        model = self.sessions[session_id]
        ids = self._message_ids(session_id, count)
        events = [controls.message(session_id, f"text {i}", message_id=i) for i in ids]
        self.store.append(f"session-{session_id}", events, expected_sequence=model.sequence)
        model.sequence += count
        model.live += ids
        model.every += ids

    def retract(self, index: int, picks: list[int], unknown: bool) -> None:
        """Retract some live messages (and maybe an id the session never had)."""
        session_id = self.pick(index)
        if session_id is None:
            return
        model = self.sessions[session_id]
        ids = [model.live[p % len(model.live)] for p in picks] if model.live else []
        if unknown or not ids:
            ids.append(f"{session_id}-never")
        self.store.append(f"session-{session_id}", [controls.retracted(session_id, *ids)])
        model.sequence += 1
        model.live = [m for m in model.live if m not in ids]

    def message_then_undo(self, index: int, count: int) -> None:
        """Append messages and retract the first of them in the SAME append."""
        session_id = self.pick(index)
        if session_id is None:
            return
        model = self.sessions[session_id]
        ids = self._message_ids(session_id, count)
        events: list[Any] = [controls.message(session_id, "x", message_id=i) for i in ids]
        events.append(controls.retracted(session_id, ids[0]))
        self.store.append(f"session-{session_id}", events)
        model.sequence += count + 1
        model.live += ids[1:]
        model.every += ids

    def title(self, index: int) -> None:
        """Give a session a new title."""
        session_id = self.pick(index)
        if session_id is None:
            return
        title = f"title {next(self.counter)}"
        self.store.append(f"session-{session_id}", [controls.titled(session_id, title)])
        self.sessions[session_id].sequence += 1
        self.sessions[session_id].title = title

    def close(self, index: int) -> None:
        """Close a session (the raw store still accepts later events for it)."""
        session_id = self.pick(index)
        if session_id is None:
            return
        self.store.append(f"session-{session_id}", [controls.closed(session_id)])
        self.sessions[session_id].sequence += 1
        self.sessions[session_id].state = "closed"

    def switch(self, key_index: int, index: int) -> None:
        """Make an existing session active under a key; no session stream is touched."""
        session_id = self.pick(index)
        if session_id is None:
            return
        key = self.key(key_index)
        event = controls.switched(key, session_id, self.active.get(key))
        self.store.append(f"key-{key}", [event])
        self.active[key] = session_id

    def apply(self, op: tuple[Any, ...]) -> None:
        name, *args = op
        getattr(self, name)(*args)

    # -- checks --------------------------------------------------------------------------------

    def check_heads(self) -> None:
        """Every session's head, transcript and every key's active session match the model."""
        for session_id, model in self.sessions.items():
            head = self.views.head(session_id)
            assert head is not None, session_id
            assert (
                head.sequence == model.sequence == self.store.head_sequence(f"session-{session_id}")
            )
            assert head.message_count == len(model.live)
            assert (head.state, head.title, head.session_key) == (
                model.state,
                model.title,
                model.key,
            )
            live = [m.message_id for m in self.views.transcript(session_id)]
            assert live == model.live
            every = self.views.transcript(session_id, include_retracted=True)
            assert [m.message_id for m in every] == model.every
        for index in range(KEYS):
            key = self.key(index)
            active = self.active.get(key)
            if active is not None and self.sessions[active].state != "open":
                active = None  # a closed session is no key's active one
            assert self.views.active_session(key) == active

    def check_verify(self) -> None:
        """Both inline projections equal a fold of the whole log."""
        assert verify(self.store, SessionsProjection()) == []
        assert verify(self.store, KeysProjection()) == []


_session = st.integers(0, 9)
OPERATION = st.one_of(
    st.tuples(st.just("open"), st.integers(0, KEYS - 1)),
    st.tuples(st.just("message"), _session, st.integers(1, 3)),
    st.tuples(
        st.just("retract"),
        _session,
        st.lists(st.integers(0, 20), min_size=1, max_size=3),
        st.booleans(),
    ),
    st.tuples(st.just("message_then_undo"), _session, st.integers(1, 3)),
    st.tuples(st.just("title"), _session),
    st.tuples(st.just("close"), _session),
    st.tuples(st.just("switch"), st.integers(0, KEYS - 1), _session),
)


@SETTINGS
@given(ops=st.lists(OPERATION, min_size=1, max_size=20))
def test_random_histories_fold_into_the_modelled_heads(
    store: EventStore, ops: list[tuple[Any, ...]]
) -> None:
    """Any history of gateway operations leaves heads equal to the model and verify clean."""
    gateway = Gateway(store)
    gateway.open(0)
    for op in ops:
        gateway.apply(op)
    gateway.check_heads()
    gateway.check_verify()


@SETTINGS
@given(ops=st.lists(OPERATION, min_size=1, max_size=15))
def test_a_rebuild_of_random_histories_reproduces_the_heads(
    store: EventStore, ops: list[tuple[Any, ...]]
) -> None:
    """Rebuilding the inline views from the log gives back exactly the same heads."""
    gateway = Gateway(store)
    gateway.open(1)
    for op in ops:
        gateway.apply(op)
    before = [gateway.views.head(sid) for sid in gateway.sessions]
    rebuild(store, SessionsProjection())
    rebuild(store, KeysProjection())
    assert [gateway.views.head(sid) for sid in gateway.sessions] == before
    gateway.check_heads()


class GatewayMachine(RuleBasedStateMachine):
    """The same operations as rules; the model is checked after every step."""

    store: EventStore

    def __init__(self) -> None:
        super().__init__()
        self.gateway = Gateway(self.store)

    @rule(key=st.integers(0, KEYS - 1))
    def open(self, key: int) -> None:
        self.gateway.open(key)

    @rule(index=_session, count=st.integers(1, 3))
    def message(self, index: int, count: int) -> None:
        self.gateway.message(index, count)

    @rule(
        index=_session,
        picks=st.lists(st.integers(0, 20), min_size=1, max_size=3),
        unknown=st.booleans(),
    )
    def retract(self, index: int, picks: list[int], unknown: bool) -> None:
        self.gateway.retract(index, picks, unknown)

    @rule(index=_session, count=st.integers(1, 3))
    def message_then_undo(self, index: int, count: int) -> None:
        self.gateway.message_then_undo(index, count)

    @rule(index=_session)
    def title(self, index: int) -> None:
        self.gateway.title(index)

    @rule(index=_session)
    def close(self, index: int) -> None:
        self.gateway.close(index)

    @rule(key=st.integers(0, KEYS - 1), index=_session)
    def switch(self, key: int, index: int) -> None:
        self.gateway.switch(key, index)

    @invariant()
    def heads_match_the_model(self) -> None:
        self.gateway.check_heads()

    def teardown(self) -> None:
        self.gateway.check_verify()


def test_state_machine_keeps_heads_equal_to_the_model_on_sqlite(tmp_path: Path) -> None:
    """Step by step on SQLite, heads always equal the model and the log verifies at the end."""
    with EventStore.open(
        f"sqlite:///{tmp_path / 'machine.db'}", writer="machine", settings=Settings.from_env({})
    ) as store:
        GatewayMachine.store = store
        run_state_machine_as_test(
            GatewayMachine,
            settings=settings(max_examples=15, stateful_step_count=15, deadline=None),
        )


@pytest.mark.parametrize("count", [1, 3])
def test_the_model_agrees_with_a_hand_written_history(store: EventStore, count: int) -> None:
    """A fixed history (open, messages, undo, switch, title, close) matches the model exactly."""
    gateway = Gateway(store)
    for op in [
        ("open", 0),
        ("message", 0, count),
        ("retract", 0, [0], False),
        ("open", 0),
        ("switch", 0, 0),
        ("message_then_undo", 1, 2),
        ("title", 1),
        ("close", 0),
    ]:
        gateway.apply(op)
    first, second = gateway.sessions.values()
    assert (first.sequence, len(first.live)) == (1 + count + 1 + 1, count - 1)
    assert (second.sequence, len(second.live)) == (1 + 3 + 1, 1)
    gateway.check_heads()
    gateway.check_verify()
