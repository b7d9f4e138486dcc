"""Reading the views the projections maintain: heads, active sessions, transcripts, search.

The ``projections`` package writes these tables; this module only reads them, with prepared
Core statements, so the agent cache's per-turn head lookup is one indexed primary-key read.
"""

from __future__ import annotations

import datetime as dt
import re
import string
import unicodedata
from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.codec import check_text
from ledger.errors import InvalidArgumentError
from ledger.schema import session_heads, session_keys, session_usage, transcript_messages
from ledger.store._errors import translated
from ledger.store.database import AUTOCOMMIT_READ

__all__ = ["SearchHit", "SessionHead", "SessionUsage", "SessionViews", "TranscriptMessage"]

_MAX_PAGE = 10_000


class SessionHead(msgspec.Struct, frozen=True, kw_only=True):
    """The projection row of one session: its stream head and live state."""

    session_id: str
    sequence: int
    message_count: int
    position: int
    writer: str
    state: str
    session_key: str | None
    source: str | None
    user_id: str | None
    model: str | None
    title: str | None
    parent_session_id: str | None
    token_count: int
    #: The log's times: when the session's first and latest events were recorded.
    created_at: dt.datetime
    updated_at: dt.datetime
    #: The gateway's times (the log's where the gateway gave none); None for a purged session.
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    end_reason: str | None = None
    last_activity_at: dt.datetime | None = None
    system_prompt: str | None = None
    model_config: dict[str, Any] | None = None


class SessionUsage(msgspec.Struct, frozen=True, kw_only=True):
    """A session's usage totals over its ``usage-*`` stream (zeros when none is recorded)."""

    session_id: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    #: The model of the latest call that named one.
    model: str | None = None


class TranscriptMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a session's transcript; ``retracted`` when undone or retried away."""

    session_id: str
    message_id: str
    sequence: int
    position: int
    role: str
    #: Text, None, or the content parts exactly as appended.
    content: str | list[dict[str, Any]] | None
    tool_name: str | None
    tool_call_id: str | None
    tool_calls: list[dict[str, Any]] | None
    token_count: int | None
    finish_reason: str | None
    reasoning: str | None
    writer: str
    recorded_at: dt.datetime
    retracted: bool
    #: The gateway's time of the message (the log's ``recorded_at`` where it gave none).
    created_at: dt.datetime | None = None
    name: str | None = None
    reasoning_content: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """A search result: where the message is, a highlighted snippet and its rank."""

    session_id: str
    message_id: str
    role: str
    position: int
    snippet: str
    rank: float


_parts = msgspec.json.Decoder(list[dict[str, Any]])
_mapping = msgspec.json.Decoder(dict[str, Any])
_HEAD_FIELDS = tuple(SessionHead.__struct_fields__)
_USAGE_FIELDS = tuple(SessionUsage.__struct_fields__)
#: Transcript columns that hold JSON text, and how each decodes.
_JSON_COLUMNS: dict[str, msgspec.json.Decoder[Any]] = {
    "tool_calls": _parts,
    "reasoning_details": _parts,
    "metadata": _mapping,
}


def _head(row: sa.RowMapping) -> SessionHead:
    values = {name: row[name] for name in _HEAD_FIELDS}
    raw = values["model_config"]
    values["model_config"] = None if raw is None else _mapping.decode(raw)
    return SessionHead(**values)


def _message(row: sa.RowMapping) -> TranscriptMessage:
    values = {k: row[k] for k in TranscriptMessage.__struct_fields__ if k in row}
    for column, decoder in _JSON_COLUMNS.items():
        raw = row[column]
        values[column] = None if raw is None else decoder.decode(raw)
    parts = row["content_parts"]
    if parts is not None:
        values["content"] = _parts.decode(parts)
    values["retracted"] = row["retracted_position"] is not None
    return TranscriptMessage(**values)


def fts5_query(text: str) -> str:
    """A user's words as an FTS5 query that matches all of them (operators are not parsed)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())


#: Scripts written without spaces between words, whose runs FTS5 and ``to_tsvector`` index as
#: one token: Thai, Lao, Tibetan, Myanmar, Khmer, Hangul, Hiragana, Katakana, Bopomofo, Yi and
#: the CJK ideographs (with their extensions and compatibility forms).
_UNSPACED = re.compile(
    "[\u0e00-\u0fff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u312f"
    "\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff65-\uffdc\U00020000-\U0003ffff]"
)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: Characters of context on each side of the first match in a substring search's snippet.
_SNIPPET_CONTEXT = 30


def substring_words(text: str) -> list[str] | None:
    """The words of a query to match as substrings, ``None`` when the full-text index fits it.

    A query needs substring matching when one of its words holds a character of a script
    written without spaces. Words are then the runs of letters, marks and digits (the way the
    FTS5 tokenizer splits), ASCII letters lowered, duplicates dropped: ``"東京。 Weather?"``
    gives ``["東京", "weather"]``.
    """
    words: list[str] = []
    run: list[str] = []
    for char in text + " ":
        if unicodedata.category(char)[0] in "LMN":
            run.append(char)
        elif run:
            word = "".join(run).translate(_ASCII_LOWER)
            if word not in words:
                words.append(word)
            run = []
    if not any(_UNSPACED.search(word) for word in words):
        return None
    return words


def substring_snippet(content: str, words: list[str]) -> str:
    """About 60 characters of ``content`` around its first match, matches in ``[`` ``]``.

    Matching is the search's: a word occurs where it does with ASCII letters lowered. The cut
    moves to a space when there is one between it and the match, and is marked with ``…``.
    """
    folded = content.translate(_ASCII_LOWER)
    pattern = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    spans = [m.span() for m in re.finditer(pattern, folded)]
    if not spans:
        return content[: 2 * _SNIPPET_CONTEXT] + (
            "…" if len(content) > 2 * _SNIPPET_CONTEXT else ""
        )
    first_start, first_end = spans[0]
    start = max(0, first_start - _SNIPPET_CONTEXT)
    end = min(len(content), first_end + _SNIPPET_CONTEXT)
    if start > 0:
        space = content.find(" ", start, first_start)
        start = start if space < 0 else space + 1
    if end < len(content):
        space = content.rfind(" ", first_end, end)
        end = end if space < 0 else space
    for span_start, span_end in spans:  # never cut a match in two
        if span_start < end < span_end:
            end = span_end
    pieces = ["…"] if start > 0 else []
    cursor = start
    for span_start, span_end in spans:
        if span_start >= end:
            break
        pieces += [content[cursor:span_start], "[", content[span_start:span_end], "]"]
        cursor = span_end
    pieces.append(content[cursor:end])
    if end < len(content):
        pieces.append("…")
    return "".join(pieces)


class SessionViews:
    """Read-only access to the session views of one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # One-statement lookups run without an explicit transaction (see AUTOCOMMIT_READ).
        self._lookup = engine.execution_options(**{AUTOCOMMIT_READ: True})
        h = session_heads
        self._head = sa.select(h).where(h.c.session_id == sa.bindparam("session_id"))
        self._sequence = sa.select(h.c.sequence).where(h.c.session_id == sa.bindparam("sid"))
        self._live_sequence = self._sequence.where(h.c.state != "purged")
        k = session_keys
        self._active = (
            sa.select(k.c.session_id)
            .join(h, h.c.session_id == k.c.session_id, isouter=True)
            .where(
                k.c.session_key == sa.bindparam("key"),
                sa.or_(h.c.state.is_(None), h.c.state == "open"),
            )
        )

    @translated
    def head(self, session_id: str) -> SessionHead | None:
        """The head of ``session_id``, ``None`` when no such session exists."""
        check_text("session_id", session_id)
        with self._lookup.connect() as conn:
            row = conn.execute(self._head, {"session_id": session_id}).mappings().first()
        return None if row is None else _head(row)

    @translated
    def head_sequence(self, session_id: str) -> int | None:
        """Only the head ``sequence`` (a tombstone's too), ``None`` if absent."""
        check_text("session_id", session_id)
        with self._lookup.connect() as conn:
            value = conn.execute(self._sequence, {"sid": session_id}).scalar()
        return None if value is None else int(value)

    @translated
    def live_sequence(self, session_id: str) -> int | None:
        """The head ``sequence`` of a session that still holds its content (the agent cache's
        per-turn read): ``None`` when it is absent or purged (erased, or past retention), since
        an agent built from it would hold a conversation the ledger no longer has."""
        check_text("session_id", session_id)
        with self._lookup.connect() as conn:
            value = conn.execute(self._live_sequence, {"sid": session_id}).scalar()
        return None if value is None else int(value)

    @translated
    def usage(self, session_id: str) -> SessionUsage:
        """The session's usage totals (zeros when none is recorded)."""
        check_text("session_id", session_id)
        u = session_usage
        with self._lookup.connect() as conn:
            row = conn.execute(sa.select(u).where(u.c.session_id == session_id)).mappings().first()
        if row is None:
            return SessionUsage(session_id=session_id)
        return SessionUsage(**{name: row[name] for name in _USAGE_FIELDS})

    @translated
    def active_session(self, session_key: str) -> str | None:
        """The open session active under ``session_key``; ``None`` when the key is new or its
        session has been closed (:meth:`Ledger.ensure_session` then opens a successor)."""
        check_text("session_key", session_key)
        with self._lookup.connect() as conn:
            value = conn.execute(self._active, {"key": session_key}).scalar()
        return None if value is None else str(value)

    @translated
    def transcript(
        self, session_id: str, *, include_retracted: bool = False
    ) -> list[TranscriptMessage]:
        """The session's messages in order; retracted ones only when asked for."""
        check_text("session_id", session_id)
        t = transcript_messages
        query = sa.select(t).where(t.c.session_id == session_id).order_by(t.c.sequence)
        if not include_retracted:
            query = query.where(t.c.retracted_position.is_(None))
        with self.engine.connect() as conn:
            return [_message(row) for row in conn.execute(query).mappings()]

    @translated
    def sessions(
        self,
        *,
        session_key: str | None = None,
        source: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionHead]:
        """The session catalog, most recent gateway activity first, filtered and paged."""
        for name, value in (("session_key", session_key), ("source", source), ("state", state)):
            check_text(name, value)
        if not 0 < limit <= _MAX_PAGE:
            raise InvalidArgumentError("limit", limit, f"1..{_MAX_PAGE}")
        if offset < 0:
            raise InvalidArgumentError("offset", offset, "an integer >= 0")
        h = session_heads
        query = sa.select(h).order_by(
            h.c.last_activity_at.desc(), h.c.updated_at.desc(), h.c.session_id
        )
        if session_key is not None:
            query = query.where(h.c.session_key == session_key)
        if source is not None:
            query = query.where(h.c.source == source)
        if state is not None:
            query = query.where(h.c.state == state)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings()
            return [_head(row) for row in rows]

    @translated
    def search(
        self, query: str, *, limit: int = 20, session_id: str | None = None
    ) -> list[SearchHit]:
        """Messages matching every word of ``query``, best first, with a highlighted snippet.

        Words of space-separated scripts use the full-text index (SQLite FTS5, PostgreSQL
        ``tsvector``). A query with a word of a script written without spaces (CJK, kana,
        Hangul, Thai, …) cannot: those indexes keep a whole run such as "東京の天気は晴れです"
        as one token. Such a query matches by substring instead (see :func:`substring_words`):
        every word must occur in the message, ASCII letters compared case-insensitively, and
        rank is how many times the words occur. No index helps: the query reads every search
        document (of the session, with ``session_id=``) a few times per word, so its cost is
        linear in the indexed text, about 15 ms per 10,000 messages of 100 characters on
        either backend. Fine at a gateway's size; an archive of millions would want a trigram
        index.
        """
        if not query.strip():
            raise InvalidArgumentError("search query", query, "at least one word")
        if not 0 < limit <= _MAX_PAGE:
            raise InvalidArgumentError("limit", limit, f"1..{_MAX_PAGE}")
        words = substring_words(query)
        if words is not None:
            return self._search_substrings(words, limit, session_id)
        params: dict[str, Any] = {"limit": limit, "sid": session_id}
        if self.engine.dialect.name == "sqlite":
            params["q"] = fts5_query(query)
            sql = (
                "SELECT d.session_id, d.message_id, d.role, d.position, "
                "snippet(search_fts, 0, '[', ']', '…', 12) AS snippet, "
                "-bm25(search_fts) AS rank "
                "FROM search_fts JOIN search_documents d ON d.doc_id = search_fts.rowid "
                "WHERE search_fts MATCH :q AND (:sid IS NULL OR d.session_id = :sid) "
                "ORDER BY bm25(search_fts), d.position LIMIT :limit"
            )
        else:
            params["q"] = query
            sql = (
                "SELECT d.session_id, d.message_id, d.role, d.position, "
                "ts_headline('simple', d.content, q, "
                "'StartSel=[,StopSel=],MaxWords=24,MinWords=8') AS snippet, "
                "ts_rank(d.tsv, q) AS rank "
                "FROM search_documents d, plainto_tsquery('simple', :q) q "
                "WHERE d.tsv @@ q AND (CAST(:sid AS TEXT) IS NULL OR d.session_id = :sid) "
                "ORDER BY rank DESC, d.position LIMIT :limit"
            )
        return self._hits(sql, params, lambda row: str(row["snippet"]))

    def _search_substrings(
        self, words: list[str], limit: int, session_id: str | None
    ) -> list[SearchHit]:
        """Documents holding every one of ``words``, most occurrences first, then by position."""
        sqlite = self.engine.dialect.name == "sqlite"
        # lower() of both backends lowers ASCII letters only (PostgreSQL's under COLLATE "C"),
        # as substring_words does, so both match alike.
        folded = "lower(s.content)" if sqlite else 'lower(s.content COLLATE "C")'
        sid = ":sid" if sqlite else "CAST(:sid AS TEXT)"
        find = "instr(d.folded, {w}) > 0" if sqlite else "strpos(d.folded, {w}) > 0"
        params: dict[str, Any] = {"limit": limit, "sid": session_id}
        found: list[str] = []
        counts: list[str] = []
        for i, word in enumerate(words):
            params[f"w{i}"] = word
            w = f":w{i}" if sqlite else f"CAST(:w{i} AS TEXT)"
            found.append(find.format(w=w))
            counts.append(f"(length(d.folded) - length(replace(d.folded, {w}, ''))) / length({w})")
        sql = (
            "SELECT d.session_id, d.message_id, d.role, d.position, d.content, "
            f"{' + '.join(counts)} AS rank FROM ("
            "SELECT s.session_id, s.message_id, s.role, s.position, s.content, "
            f"{folded} AS folded FROM search_documents s "
            f"WHERE {sid} IS NULL OR s.session_id = {sid}) d "
            f"WHERE {' AND '.join(found)} ORDER BY rank DESC, d.position LIMIT :limit"
        )
        return self._hits(sql, params, lambda row: substring_snippet(row["content"], words))

    def _hits(
        self, sql: str, params: dict[str, Any], snippet: Callable[[sa.RowMapping], str]
    ) -> list[SearchHit]:
        """Run a search statement; ``snippet(row)`` makes each hit's highlighted text."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(sql), params).mappings().all()
        return [
            SearchHit(
                session_id=row["session_id"],
                message_id=row["message_id"],
                role=row["role"],
                position=int(row["position"]),
                snippet=snippet(row),
                rank=float(row["rank"]),
            )
            for row in rows
        ]
