"""The asynchronous ``search`` projection, as ``ProjectionRunner`` applies it.

Search lags the log until the runner runs; then it matches every word of a query, ranks and
filters its hits, indexes tool output and text parts, treats query syntax as plain words and drops
retracted messages. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from ledger import EventStore
from ledger.errors import InvalidArgumentError
from ledger.views import SessionViews
from projections.runner import ProjectionRunner
from tests import controls
from tests.projections.support import _documents, _seed


def test_search_is_empty_until_the_runner_catches_up(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """Search is asynchronous: appended messages appear only after the runner has run."""
    _seed(store)
    assert views.search("fox") == []
    runner.catch_up()
    assert len(views.search("fox")) == 1


def test_search_finds_a_message_with_a_highlighted_snippet(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """A hit names the session, message, role and position, with the word marked in brackets."""
    ids = _seed(store)
    runner.catch_up()
    (hit,) = views.search("fox")
    assert (hit.session_id, hit.message_id, hit.role) == ("a", ids["fox"], "user")
    (message,) = [m for m in views.transcript("a") if m.message_id == ids["fox"]]
    assert hit.position == message.position
    assert "[fox]" in hit.snippet
    assert "quick brown" in hit.snippet


def test_search_matches_every_word_of_the_query(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """All words must occur: "brown" finds two messages, "brown bread" only one."""
    ids = _seed(store)
    runner.catch_up()
    assert {h.message_id for h in views.search("brown")} == {ids["fox"], ids["bread"]}
    assert [h.message_id for h in views.search("brown bread")] == [ids["bread"]]


def test_search_ranks_the_better_match_first(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """A message repeating the word outranks one that has it once, and ranks descend."""
    weak = controls.message("a", "apple pear plum")
    strong = controls.message("a", "apple apple apple")
    store.append("session-a", [controls.opened("a"), weak, strong])
    runner.catch_up()
    hits = views.search("apple")
    assert [h.message_id for h in hits] == [strong.message_id, weak.message_id]
    assert hits[0].rank > hits[1].rank


def test_search_filters_by_session_id(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """``session_id=`` keeps only hits from that session."""
    ids = _seed(store)
    runner.catch_up()
    assert [h.message_id for h in views.search("brown", session_id="b")] == [ids["bread"]]
    assert views.search("fox", session_id="b") == []


def test_search_limit_caps_the_number_of_hits(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """``limit=`` returns at most that many hits."""
    _seed(store)
    runner.catch_up()
    assert len(views.search("brown", limit=1)) == 1


def test_search_indexes_tool_output(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """Tool output is searchable (the file read, the command's error), as messages are."""
    ids = _seed(store)
    runner.catch_up()
    assert [hit.message_id for hit in views.search("output")] == [ids["tool"]]
    assert _documents(store) == 4


def test_search_indexes_the_text_parts_of_multimodal_content(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """The text parts of a content-parts message are indexed; image parts are not text."""
    parts = [
        {"type": "text", "text": "a photo of the harbour"},
        {"type": "image_url", "image_url": {"url": "https://example.org/harbour.png"}},
    ]
    message = controls.message("a", parts)
    store.append("session-a", [controls.opened("a"), message])
    runner.catch_up()
    assert [hit.message_id for hit in views.search("harbour")] == [message.message_id]


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_search_rejects_an_empty_query(store: EventStore, views: SessionViews, query: str) -> None:
    """A query without words raises InvalidArgumentError naming the query."""
    with pytest.raises(InvalidArgumentError, match="Invalid search query"):
        views.search(query)


@pytest.mark.parametrize(
    ("query", "finds"),
    [
        ('fox "', True),
        ("fox*", True),
        ("-fox", True),
        ("fox:", True),
        ('"quick" (brown) fox', True),
        # Operators are words too, and every word must match: no message holds "or"/"near".
        ("fox OR", False),
        ("NEAR(fox", False),
    ],
)
def test_search_treats_query_syntax_as_plain_words(
    store: EventStore, runner: ProjectionRunner, views: SessionViews, query: str, finds: bool
) -> None:
    """Quotes, operators and punctuation in a query are plain words, never syntax."""
    ids = _seed(store)
    runner.catch_up()
    expected = [ids["fox"]] if finds else []
    assert [hit.message_id for hit in views.search(query)] == expected


def test_a_retraction_removes_messages_from_search(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """Once the runner applies an undo, the retracted message is no longer found."""
    ids = _seed(store)
    runner.catch_up()
    store.append("session-a", [controls.retracted("a", ids["fox"])])
    assert len(views.search("fox")) == 1
    runner.catch_up()
    assert views.search("fox") == []
    assert _documents(store) == 3


def test_a_retraction_in_the_same_batch_as_its_message_removes_it(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """A message and its retraction applied in one batch leave no search document."""
    gone = controls.message("a", "ephemeral words")
    store.append(
        "session-a", [controls.opened("a"), gone, controls.retracted("a", gone.message_id)]
    )
    runner.catch_up()
    assert views.search("ephemeral") == []
    assert _documents(store) == 0
