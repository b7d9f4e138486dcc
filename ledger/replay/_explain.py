"""What replay and explain report: the ``replay --json`` document and the HTML timeline.

``replay --json`` schema: ``{"events": int, "turns": int, "guards": {guard: totals},
"keys": {session_key: {"guards": {guard: totals}}}}`` where totals are ``{"turns",
"rebuilds", "false_busts", "missed_changes"}`` and guard is ``legacy``, ``hermes`` or ``ledger``.

The HTML page is self-contained (no scripts, no network assets) and every piece of log content
in it is HTML-escaped, so text from the log can never run as script or become markup.
"""

from __future__ import annotations

import html
from typing import Any

from ledger.replay._simulation import GuardTotals, ReplayReport

__all__ = ["LABELS", "TOTALS", "render_html", "replay_document"]

#: How each guard is named for people.
LABELS = {"legacy": "mutable counter", "hermes": "4-tuple fix", "ledger": "ledger"}

#: The totals ``replay --json`` prints per guard.
TOTALS = ("turns", "rebuilds", "false_busts", "missed_changes")


def replay_document(report: ReplayReport) -> dict[str, Any]:
    """``replay --json``: ``guards`` maps each guard to its totals; per-key detail in ``keys``."""

    def totals(guards: dict[str, GuardTotals]) -> dict[str, dict[str, int]]:
        return {name: {k: getattr(t, k) for k in TOTALS} for name, t in guards.items()}

    return {
        "events": report.events,
        "turns": report.turns,
        "guards": totals(report.guards),
        "keys": {key: {"guards": totals(detail.guards)} for key, detail in report.keys.items()},
    }


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ledger replay</title>
<style>
body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ddd;padding:3px 6px;vertical-align:top}}
th{{background:#f4f4f4}}
.false_bust{{background:#ffd7d7}} .missed_change{{background:#ff9d9d;font-weight:bold}}
.build{{color:#888}} .turn td.event{{font-weight:600}}
.decision{{cursor:help}}
</style></head><body>
<h1>Cache guard replay</h1>
<p>{events} events, {turns} turns.</p>
<table id="totals"><tr><th>guard</th><th>turns</th><th>builds</th><th>rebuilds</th>
<th>false busts</th><th>missed changes</th></tr>{totals}</table>
{keys}
</body></html>
"""


def render_html(report: ReplayReport) -> str:
    """A self-contained page (no scripts, no network assets); all log text is escaped."""
    esc = html.escape
    totals = "".join(
        f'<tr data-guard="{esc(name)}"><td>{esc(LABELS[name])}</td><td>{t.turns}</td>'
        f"<td>{t.builds}</td><td>{t.rebuilds}</td><td>{t.false_busts}</td>"
        f"<td>{t.missed_changes}</td></tr>"
        for name, t in report.guards.items()
    )
    sections = []
    for key, detail in report.keys.items():
        if not detail.timeline:
            continue
        head = "".join(f"<th>{esc(LABELS[g])}</th>" for g in detail.guards)
        rows = []
        for entry in detail.timeline:
            cells = []
            for name in detail.guards:
                decision = (entry.decisions or {}).get(name)
                if decision is None:
                    cells.append("<td></td>")
                    continue
                why = f"needed: {entry.why}" if entry.needed and entry.why else "no change"
                cells.append(
                    f'<td class="decision {esc(decision.verdict)}" title="{esc(decision.reason)}'
                    f' — {esc(why)}">{esc(decision.action)} ({esc(decision.reason)})</td>'
                )
            rows.append(
                f'<tr class="{esc(entry.kind)}" data-position="{entry.position}">'
                f"<td>{entry.position}</td><td>{esc(entry.recorded_at.isoformat())}</td>"
                f"<td>{esc(entry.writer)}</td><td>{esc(entry.session_id)}</td>"
                f'<td class="event">{esc(entry.kind)}: {esc(entry.detail)}</td>'
                f"{''.join(cells)}</tr>"
            )
        sections.append(
            f'<h2>{esc(key)}</h2><table class="timeline"><tr><th>position</th><th>time</th>'
            f"<th>writer</th><th>session</th><th>event</th>{head}</tr>{''.join(rows)}</table>"
        )
    return _PAGE.format(
        events=report.events, turns=report.turns, totals=totals, keys="".join(sections)
    )
