"""What replay and explain report: the ``replay --json`` document and the HTML timeline.

``replay --json`` schema: ``{"events": int, "turns": int, "guards": {guard: totals},
"keys": {session_key: {"guards": {guard: totals}}}}`` where totals are ``{"turns",
"rebuilds", "false_busts", "missed_changes"}`` and guard is ``legacy``, ``hermes`` or ``ledger``.

The HTML page (:func:`render_html`) is self-contained: no script, no network asset. It holds the
totals, an inline SVG chart of each guard's rebuilds over time (and the live cache's, when its
decisions were recorded), then one table per key. Each turn shows the baseline → live sequence
its decision compared, and a rebuild (or a turn where guards disagree) is marked and links to the
events that caused it: another writer's write, a retraction, a reconfiguration or a switch
between the baseline and the live head. Every row has the id ``e-<position>``.

A checkbox filters the tables down to those turns and their causes with CSS alone. A page holds
at most ``limit`` timeline rows: when the whole timeline fits it is all there; otherwise only the
marked turns and their causes, the first ones in log order up to the limit, and a note says how
many were left out and how to get them (``ledger explain KEY``, ``--html-limit``, ``--json``).
So the page's size depends on the limit, not on the log's length.

Every piece of log content in the page, in text and in attributes, goes through
:func:`html.escape`; ids and links are built from integer positions only, so text from the log
can never run as script or become markup.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ledger.replay._reports import KeyReport, TimelineEntry
from ledger.replay._simulation import GuardTotals, ReplayReport

__all__ = ["HTML_LIMIT", "LABELS", "TOTALS", "render_html", "replay_document"]

#: How each guard is named for people.
LABELS = {"legacy": "mutable counter", "hermes": "4-tuple fix", "ledger": "ledger"}

#: The totals ``replay --json`` prints per guard.
TOTALS = ("turns", "rebuilds", "false_busts", "missed_changes")

#: Timeline rows an HTML page holds by default (``--html-limit``).
HTML_LIMIT = 2000

#: Causes linked from one turn; the others are counted.
_MAX_CAUSES = 12
#: Turns a cause row links back to.
_MAX_BACKLINKS = 3
#: Time slots of the chart.
_BINS = 96
#: Timeline kinds that are not events of a session stream.
_NOT_SESSION = frozenset({"switch", "decision"})

_esc = html.escape


def replay_document(report: ReplayReport) -> dict[str, Any]:
    """``replay --json``: ``guards`` maps each guard to its totals; per-key detail in ``keys``."""

    def totals(guards: dict[str, GuardTotals]) -> dict[str, dict[str, int]]:
        return {name: {k: getattr(t, k) for k in TOTALS} for name, t in guards.items()}

    return {
        "events": report.events,
        "turns": report.turns,
        "guards": totals(report.guards),
        "keys": {
            key: {"guards": totals(detail.guards), "recorded": msgspec.to_builtins(detail.recorded)}
            for key, detail in report.keys.items()
        },
        "recorded": msgspec.to_builtins(report.recorded),
    }


# -- reading a key's timeline ------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One timeline entry, with what the page says about it."""

    entry: TimelineEntry
    #: Turns: the sequences the decision compared (``None``: not known from this timeline) and
    #: whether they are the session's real sequences (its ``opened`` event is in the timeline)
    #: or only a count of the events seen since the baseline.
    baseline: int | None = None
    live: int | None = None
    exact: bool = False
    rebuild: bool = False
    disagree: bool = False
    #: The live cache's action for this turn (``None``: its writer records no decisions).
    live_action: str | None = None
    causes: list[tuple[int, str]] = field(default_factory=list)
    more_causes: int = 0
    regressed: bool = False
    #: Positions of the marked turns this row caused (a cause row links back to them).
    caused: list[int] = field(default_factory=list)

    @property
    def marked(self) -> bool:
        return self.rebuild or self.disagree


def _continues(entry: TimelineEntry) -> bool:
    """An assistant/tool message: the writer's open turn on the session goes on."""
    return entry.kind == "message" and not entry.detail.startswith("user: ")


class _Reader:
    """Follows one key's timeline as the replay did: sessions, turns and each writer's
    baselines, so each turn knows the events between its baseline and the live head."""

    def __init__(self, recording: set[str]) -> None:
        self.recording = recording
        self.events: dict[str, list[TimelineEntry]] = {}
        self.exact: dict[str, bool] = {}
        self.baseline: dict[tuple[str, str], int] = {}
        #: Each writer's open turn on the key: its session.
        self.open: dict[str, str] = {}
        self.switches: list[TimelineEntry] = []
        #: Per writer: how many switches it had seen at its last turn.
        self.switches_seen: dict[str, int] = {}

    def end(self, writer: str) -> None:
        session = self.open.pop(writer)
        self.baseline[(writer, session)] = len(self.events.get(session, ()))

    def rows(self, timeline: Iterable[TimelineEntry]) -> list[_Row]:
        rows: list[_Row] = []
        for entry in timeline:
            row = _Row(entry)
            rows.append(row)
            if entry.kind == "decision":
                continue
            if entry.kind == "switch":
                for writer in list(self.open):
                    self.end(writer)
                self.switches.append(entry)
                continue
            session = entry.session_id
            turn = entry.kind == "turn"
            for writer, on in list(self.open.items()):
                mine = writer == entry.writer
                if (on == session and not (mine and _continues(entry))) or (turn and mine):
                    self.end(writer)
            seen = self.events.setdefault(session, [])
            if not seen:
                self.exact[session] = entry.kind == "opened"
            if turn:
                self._turn(row, seen)
            seen.append(entry)
        return rows

    def _turn(self, row: _Row, seen: list[TimelineEntry]) -> None:
        entry = row.entry
        writer, session = entry.writer, entry.session_id
        baseline = self.baseline.get((writer, session))
        row.baseline, row.live, row.exact = baseline, len(seen), self.exact[session]
        self.baseline[(writer, session)] = len(seen)
        self.open[writer] = session
        switches = self.switches[self.switches_seen.get(writer, 0) :]
        self.switches_seen[writer] = len(self.switches)
        decisions = entry.decisions or {}
        actions = {d.action for d in decisions.values()}
        if writer in self.recording:
            row.live_action = "reuse" if entry.recorded is None else entry.recorded.action
        simulated = decisions.get("ledger")
        live_differs = (
            row.live_action is not None
            and simulated is not None
            and row.live_action != simulated.action
        )
        row.rebuild = "rebuild" in actions or row.live_action == "rebuild"
        row.disagree = (
            len(actions) > 1
            or live_differs
            or any(d.verdict in ("false_bust", "missed_change") for d in decisions.values())
        )
        if row.marked:
            self._causes(row, seen, switches)

    def _causes(self, row: _Row, seen: list[TimelineEntry], switches: list[TimelineEntry]) -> None:
        entry = row.entry
        reasons = {d.reason for d in (entry.decisions or {}).values()}
        if entry.recorded is not None:
            reasons.add(entry.recorded.reason)
        causes: list[tuple[int, str]] = []
        if "signature_changed" in reasons or entry.why == "signature changed":
            if seen and seen[0].kind == "opened":
                causes.append((seen[0].position, f"reconfiguration: {seen[0].detail}"))
            causes += [(s.position, f"switch to {s.session_id}") for s in switches]
        elif "count_changed" in reasons:
            causes += [(s.position, f"switch to {s.session_id}") for s in switches]
        window = [] if row.baseline is None else seen[row.baseline :]
        for event in window:
            foreign = event.writer != entry.writer
            if event.kind == "retracted":
                causes.append(
                    (event.position, f"retraction by {event.writer}" if foreign else "retraction")
                )
            elif event.kind == "SessionConfigured":
                causes.append((event.position, f"reconfiguration by {event.writer}"))
            elif foreign:
                causes.append((event.position, f"foreign write by {event.writer}"))
        row.regressed = "regressed" in reasons or entry.why == "head regressed"
        causes.sort()
        row.causes, row.more_causes = causes[:_MAX_CAUSES], max(0, len(causes) - _MAX_CAUSES)


def _recording(report: ReplayReport) -> set[str]:
    """Writers whose caches record their decisions (their turns without one were hits)."""
    writers: set[str] = set()
    for detail in report.keys.values():
        for entry in detail.timeline:
            if entry.kind == "decision":
                writers.add(entry.writer)
            elif entry.recorded is not None:
                writers.add(entry.recorded.writer)
    return writers


# -- choosing what the page holds ----------------------------------------------------------------


@dataclass(slots=True)
class _Section:
    key: str
    detail: KeyReport
    rows: list[_Row]
    shown: list[_Row] = field(default_factory=list)
    marked: int = 0
    left_out: int = 0


def _choose(sections: list[_Section], limit: int) -> bool:
    """Fill each section's ``shown`` rows; True when the whole timeline fits in ``limit``."""
    indexes = [{row.entry.position: row for row in s.rows} for s in sections]
    for section, index in zip(sections, indexes, strict=True):
        for row in section.rows:
            if row.marked:
                section.marked += 1
                for position, _label in row.causes:
                    cause = index.get(position)
                    if cause is not None and len(cause.caused) < _MAX_BACKLINKS:
                        cause.caused.append(row.entry.position)
    if sum(len(s.rows) for s in sections) <= limit:
        for section in sections:
            section.shown = section.rows
        return True
    # The marked turns with their causes and recorded decisions, first ones first, while
    # they fit.
    marked = sorted(
        (
            (row.entry.position, number, row)
            for number, section in enumerate(sections)
            for row in section.rows
            if row.marked
        ),
        key=lambda found: (found[0], found[1]),
    )
    chosen: list[dict[int, _Row]] = [{} for _ in sections]
    used = 0
    for _position, number, row in marked:
        section, picked, index = sections[number], chosen[number], indexes[number]
        wanted = [row.entry.position, *(p for p, _label in row.causes)]
        if row.entry.recorded is not None:
            wanted.append(row.entry.recorded.position)
        new = [p for p in dict.fromkeys(wanted) if p not in picked and p in index]
        if used + len(new) > limit:
            used = limit + 1  # the first that does not fit ends the page: no gaps
            section.left_out += 1
            continue
        for position in new:
            picked[position] = index[position]
        used += len(new)
    for section, picked in zip(sections, chosen, strict=True):
        section.shown = sorted(picked.values(), key=lambda r: r.entry.position)
    return False


# -- rendering -----------------------------------------------------------------------------------

_STYLE = """
body{font:13px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ddd;padding:2px 5px;vertical-align:top}
th{background:#f4f4f4}
thead th{position:sticky;top:0;z-index:1;box-shadow:0 1px 0 #aaa}
tr{scroll-margin-top:4em}
td.pos,td.time,td.seq,td.mark{white-space:nowrap;font-variant-numeric:tabular-nums}
tr.day td{background:#444;color:#fff;font-weight:bold}
tr.rebuild{background:#e8f0ff}
tr.rebuild td.mark{color:#0645ad;font-weight:bold}
tr.disagree td.mark{color:#b00000;font-weight:bold}
tr.cause{background:#fff7d6}
tr:target{outline:3px solid #e69500;background:#ffe9a8}
.false_bust{background:#ffd7d7} .missed_change{background:#ff9d9d;font-weight:bold}
.build{color:#888} .turn td.event{font-weight:600}
.decision{cursor:help}
td.live.disagree{background:#ffd49e;font-weight:bold}
td.live.agree{color:#2a6b2a}
.note{background:#fff3cd;border:1px solid #e0c46c;padding:.5em .8em;max-width:70em}
#only-busts:checked ~ section tr.quiet{display:none}
#chart{display:block;margin-bottom:1em}
label[for=only-busts]{font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#333}
svg .rebuild{fill:#4a78c2} svg .false_bust{fill:#d33}
svg .disagreement{fill:#f08c00} svg .axis{stroke:#999}
"""


def _time(when: dt.datetime) -> str:
    """``19:02:03.412`` in UTC (the date goes in a row of its own when it changes)."""
    utc = _utc(when)
    return f"{utc:%H:%M:%S}.{utc.microsecond // 1000:03d}"


def _utc(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC) if when.tzinfo is not None else when


def _sequences(row: _Row) -> str:
    """The baseline → live sequence of a turn's decision."""
    if row.exact:
        low = "none" if row.baseline is None else str(row.baseline)
        return f"{low} → {row.live}"
    if row.baseline is None or row.live is None:
        return "? → ?"
    count = row.live - row.baseline
    return f"+{count} event{'' if count == 1 else 's'}"


def _decision_cells(row: _Row, guards: Iterable[str]) -> str:
    entry = row.entry
    cells = []
    for name in guards:
        decision = (entry.decisions or {}).get(name)
        if decision is None:
            cells.append("<td></td>")
            continue
        why = f"needed: {entry.why}" if entry.needed and entry.why else "no change"
        cells.append(
            f'<td class="decision {_esc(decision.verdict)}" title="{_esc(decision.reason)}'
            f' — {_esc(why)}">{_esc(decision.action)} ({_esc(decision.reason)})</td>'
        )
    return "".join(cells)


def _live_cell(row: _Row, linked: set[int]) -> str:
    """What the live cache recorded for a turn, marked as agreeing with the simulated ledger
    guard or not."""
    entry = row.entry
    if entry.kind != "turn":
        return "<td></td>"
    if row.live_action is None:
        return '<td class="live none" title="this writer\'s cache recorded no decisions">—</td>'
    simulated = (entry.decisions or {}).get("ledger")
    differs = simulated is not None and simulated.action != row.live_action
    state = "disagree" if differs else "agree"
    live = entry.recorded
    if live is None:
        text = "reuse (hit)"
        title = "no decision recorded: a hit"
    else:
        text = f"{_esc(live.action)} ({_esc(live.reason)})"
        if live.position in linked:
            text = f'<a href="#e-{int(live.position)}">{text}</a>'
        if live.baseline is not None or live.live is not None:
            low = "none" if live.baseline is None else str(int(live.baseline))
            high = "none" if live.live is None else str(int(live.live))
            text += f" {low} → {high}"
        title = f"recorded at #{int(live.position)}"
        if live.build_seconds is not None:
            title += f", built in {live.build_seconds:.3f} s"
    if differs:
        assert simulated is not None
        text += f" ≠ simulated {_esc(simulated.action)}"
    return f'<td class="live {state}" title="{_esc(title)}">{text}</td>'


def _row_html(
    row: _Row, guards: Iterable[str], recording: bool, linked: set[int], kept: bool
) -> str:
    """One timeline row; ``linked``: the positions on the page, ``kept``: shown by the filter."""
    entry = row.entry
    position = int(entry.position)
    classes = [entry.kind]
    marks = []
    if row.rebuild:
        classes.append("rebuild")
        marks.append("⟳ rebuild")
    if row.disagree:
        classes.append("disagree")
        marks.append("≠ disagree")
    back = [p for p in row.caused if p in linked]
    if back:
        classes.append("cause")
        marks.append("cause of " + " ".join(f'<a href="#e-{int(p)}">#{int(p)}</a>' for p in back))
    if not kept:
        classes.append("quiet")
    causes = ""
    if entry.kind == "turn":
        links = [
            f'<a href="#e-{int(p)}">#{int(p)} {_esc(label)}</a>'
            for p, label in row.causes
            if p in linked
        ]
        if row.more_causes:
            links.append(f"+{row.more_causes} more")
        if row.regressed:
            links.append("head regressed (live &lt; baseline)")
        causes = "<br>".join(links)
        seq = _sequences(row)
    else:
        seq = ""
    live = _live_cell(row, linked) if recording else ""
    return (
        f'<tr id="e-{position}" class="{_esc(" ".join(classes))}">'
        f'<td class="mark">{" ".join(marks)}</td><td class="pos">{position}</td>'
        f'<td class="time">{_time(entry.recorded_at)}</td>'
        f"<td>{_esc(entry.writer)}</td><td>{_esc(entry.session_id)}</td>"
        f'<td class="event">{_esc(entry.kind)}: {_esc(entry.detail)}</td>'
        f'<td class="seq">{seq}</td><td class="causes">{causes}</td>'
        f"{_decision_cells(row, guards)}{live}</tr>"
    )


def _table(section: _Section, recording: bool) -> str:
    guards = list(section.detail.guards)
    head = "".join(f"<th>{_esc(LABELS[g])}<br><small>simulated</small></th>" for g in guards)
    if recording:
        head += "<th>live<br><small>recorded</small></th>"
    columns = 8 + len(guards) + recording
    linked = {row.entry.position for row in section.shown}
    kept = set()
    for row in section.shown:
        if row.marked:
            kept.add(row.entry.position)
            kept.update(p for p, _label in row.causes)
            if row.entry.recorded is not None:
                kept.add(row.entry.recorded.position)
    body = []
    day: dt.date | None = None
    for row in section.shown:
        when = _utc(row.entry.recorded_at).date()
        if when != day:
            day = when
            body.append(f'<tr class="day"><td colspan="{columns}">{when.isoformat()}</td></tr>')
        body.append(_row_html(row, guards, recording, linked, row.entry.position in kept))
    return (
        '<table class="timeline"><thead><tr><th>mark</th><th>position</th><th>time (UTC)</th>'
        "<th>writer</th><th>session</th><th>event</th><th>baseline → live</th><th>caused by</th>"
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


@dataclass(slots=True)
class _Series:
    name: str
    label: str
    rebuilds: list[int]
    flagged: list[int]
    flag: str


def _chart(report: ReplayReport, recording: set[str]) -> str:
    """Rebuilds over time, one strip per guard (and the live cache): inline SVG, no script."""
    turns = [
        entry
        for detail in report.keys.values()
        for entry in detail.timeline
        if entry.kind == "turn" and entry.decisions
    ]
    guards = list(report.guards)
    if not turns:
        return "<p>No turns: nothing to chart.</p>"
    start = min(_utc(t.recorded_at) for t in turns)
    end = max(_utc(t.recorded_at) for t in turns)
    span = (end - start).total_seconds()
    bins = _BINS if span > 0 else 1
    series = [_Series(g, LABELS[g], [0] * bins, [0] * bins, "false_bust") for g in guards]
    live = _Series("live", "live (recorded)", [0] * bins, [0] * bins, "disagreement")
    for entry in turns:
        offset = (_utc(entry.recorded_at) - start).total_seconds()
        slot = min(bins - 1, int(offset / span * bins)) if span > 0 else 0
        decisions = entry.decisions or {}
        for one in series:
            decision = decisions.get(one.name)
            if decision is not None and decision.action == "rebuild":
                one.rebuilds[slot] += 1
                one.flagged[slot] += decision.verdict == "false_bust"
        if entry.writer in recording:
            action = "reuse" if entry.recorded is None else entry.recorded.action
            live.rebuilds[slot] += action == "rebuild"
            simulated = decisions.get("ledger")
            live.flagged[slot] += simulated is not None and simulated.action != action
    if recording:
        series.append(live)
    left, width, right, strip, bar = 130, 720, 110, 34, 26
    height = strip * len(series) + 34
    highest = max(1, *(max(max(s.rebuilds), max(s.flagged)) for s in series))
    step = width / bins
    seconds = span / bins if span > 0 else 0.0
    parts = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{left + width + right}" '
        f'height="{height}" viewBox="0 0 {left + width + right} {height}" role="img" '
        'aria-labelledby="chart-title"><title id="chart-title">Rebuilds over time, per guard'
        "</title>"
    ]
    for index, one in enumerate(series):
        top = index * strip
        base = top + bar + 2
        flag_word = "false busts" if one.flag == "false_bust" else "disagreements"
        parts.append(
            f'<g class="series" data-guard="{_esc(one.name)}"><text x="0" y="{base - 8}">'
            f"{_esc(one.label)}</text>"
            f'<line class="axis" x1="{left}" y1="{base}" x2="{left + width}" y2="{base}"/>'
        )
        for slot in range(bins):
            count, flagged = one.rebuilds[slot], one.flagged[slot]
            if not count and not flagged:
                continue
            x = left + slot * step
            when = start + dt.timedelta(seconds=slot * seconds)
            title = (
                f"{one.label}: {count} rebuilds, {flagged} {flag_word} from "
                f"{when:%Y-%m-%d %H:%M:%S} UTC"
            )
            w = max(step - 1, 1)
            parts.append(f"<g><title>{_esc(title)}</title>")
            if count:
                h = max(bar * count / highest, 1)
                parts.append(
                    f'<rect class="rebuild" x="{x:.1f}" y="{base - h:.1f}" width="{w:.1f}" '
                    f'height="{h:.1f}"/>'
                )
            if flagged:
                h = max(bar * flagged / highest, 1)
                parts.append(
                    f'<rect class="{one.flag}" x="{x:.1f}" y="{base - h:.1f}" '
                    f'width="{max(w / 2, 1):.1f}" height="{h:.1f}"/>'
                )
            parts.append("</g>")
        parts.append(
            f'<text x="{left + width + 8}" y="{base - 8}">{sum(one.rebuilds)} rebuilds</text>'
            f'<text x="{left + width + 8}" y="{base + 4}">{sum(one.flagged)} {flag_word}</text>'
            "</g>"
        )
    axis = height - 10
    parts.append(
        f'<text x="{left}" y="{axis}">{start:%Y-%m-%d %H:%M:%S} UTC</text>'
        f'<text x="{left + width}" y="{axis}" text-anchor="end">{end:%Y-%m-%d %H:%M:%S} UTC'
        "</text></svg>"
    )
    return "".join(parts)


def render_html(report: ReplayReport, *, limit: int = HTML_LIMIT) -> str:
    """The self-contained timeline page (no script, no network asset; all log text escaped),
    holding at most ``limit`` timeline rows."""
    recording = _recording(report)
    sections = [
        _Section(key, detail, _Reader(recording).rows(detail.timeline))
        for key, detail in report.keys.items()
        if detail.timeline
    ]
    complete = _choose(sections, max(0, limit))
    has_live = bool(recording) or report.recorded.decisions > 0
    totals = "".join(
        f'<tr data-guard="{_esc(name)}"><td>{_esc(LABELS[name])}</td><td>{t.turns}</td>'
        f"<td>{t.builds}</td><td>{t.rebuilds}</td><td>{t.false_busts}</td>"
        f"<td>{t.missed_changes}</td></tr>"
        for name, t in report.guards.items()
    )
    shown = sum(len(s.shown) for s in sections)
    rows = sum(len(s.rows) for s in sections)
    marked = sum(s.marked for s in sections)
    left_out = sum(s.left_out for s in sections)
    parts = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>ledger replay</title><style>{_STYLE}</style></head><body>"
        "<h1>Cache guard replay</h1>",
        f'<p id="summary">{report.events} events, {report.turns} turns; {marked} turns with a '
        f"rebuild or a guard disagreement.</p>",
        '<p id="legend">The <b>mutable counter</b>, <b>4-tuple fix</b> and <b>ledger</b> '
        "columns are <b>simulated</b>: what each guard would have decided, replayed from the "
        "log."
        + (
            " The <b>live</b> column is <b>recorded</b>: what the running agent cache really "
            "decided (its <code>CacheDecided</code> events; a turn with none was a hit), marked "
            "where it differs from the simulated ledger guard."
            if has_live
            else " No live cache decisions were recorded in this log."
        )
        + " ⟳ marks a rebuild and ≠ a disagreement (between guards, with the live cache or with "
        "what was needed); their <i>caused by</i> links go to the events between the baseline "
        "and the live head that made the difference.</p>",
        '<table id="totals"><thead><tr><th>guard (simulated)</th><th>turns</th><th>builds</th>'
        f"<th>rebuilds</th><th>false busts</th><th>missed changes</th></tr></thead>{totals}"
        "</table>",
    ]
    if has_live:
        live = report.recorded
        parts.append(
            f'<p id="recorded">Recorded by the live caches: {live.decisions} decisions, '
            f"{live.builds} builds; {live.disagreements} turns where the live cache and the "
            "simulated ledger guard disagree (evictions, TTL expiry, restarts).</p>"
        )
    parts.append("<h2>Rebuilds over time</h2>" + _chart(report, recording))
    if not complete:
        missing = (
            f"{left_out} of the {marked} marked turns did not fit and were left out: "
            "<code>ledger explain KEY --html FILE</code> shows one key, a larger "
            "<code>--html-limit N</code> holds more rows, and <code>ledger explain KEY "
            "--json</code> lists every event."
            if left_out
            else f"All {marked} marked turns are here; <code>ledger explain KEY --html FILE"
            "</code> shows every event of one key (<code>--json</code> lists them)."
        )
        parts.append(
            f'<p class="note" id="left-out">This page holds {shown} of the {rows} timeline '
            f"rows (at most {limit}, <code>--html-limit</code>): only turns with a rebuild or a "
            f"guard disagreement and the events that caused them, the first ones first. "
            f"{missing} The totals and the chart count every turn.</p>"
        )
    parts.append(_keys_table(sections, limit, has_live))
    parts.append(
        f'<input type="checkbox" id="only-busts"{"" if complete else " checked"}>'
        '<label for="only-busts"> only turns with a rebuild or a guard disagreement (and the '
        "events that caused them)</label>"
    )
    for index, section in enumerate(sections):
        if not section.shown:
            continue
        note = ""
        if section.left_out:
            note = (
                f'<p class="note">{section.left_out} marked turns of this key left out: '
                f"<code>ledger explain {_esc(section.key)} --html FILE</code>.</p>"
            )
        parts.append(
            f'<section class="key" id="k-{index}" data-key="{_esc(section.key)}">'
            f"<h2>{_esc(section.key)}</h2>{note}{_table(section, has_live)}</section>"
        )
    parts.append("</body></html>\n")
    return "".join(parts)


def _keys_table(sections: list[_Section], limit: int, has_live: bool) -> str:
    """Per key: each guard's rebuilds, the live disagreements, and the rows the page shows."""
    if len(sections) < 2:
        return ""
    guards = list(sections[0].detail.guards)
    head = "".join(f"<th>{_esc(LABELS[g])} rebuilds</th>" for g in guards)
    if has_live:
        head += "<th>live disagreements</th>"
    rows = []
    for index, section in enumerate(sections[: max(1, limit)]):
        name = _esc(section.key)
        if section.shown:
            name = f'<a href="#k-{index}">{name}</a>'
        cells = "".join(f"<td>{section.detail.guards[g].rebuilds}</td>" for g in guards)
        if has_live:
            cells += f"<td>{section.detail.recorded.disagreements}</td>"
        rows.append(
            f"<tr><td>{name}</td>{cells}<td>{section.marked}</td>"
            f"<td>{len(section.shown)} of {len(section.rows)}</td></tr>"
        )
    more = len(sections) - len(rows)
    tail = f'<p class="note">{more} more keys not listed.</p>' if more > 0 else ""
    return (
        f'<table id="keys"><thead><tr><th>key</th>{head}<th>marked turns</th>'
        f"<th>rows shown</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{tail}"
    )
