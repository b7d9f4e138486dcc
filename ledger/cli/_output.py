"""Output for people that shows data as it is, and JSON for machines.

Everything a command prints for people goes through :func:`printable`: text from the log (chat
content, ids, keys, titles, writer names, driver messages) can hold control characters, and a
terminal obeys them (``ESC ]0;…BEL`` retitles the window, ``ESC [2J`` clears it, ``CR``
overwrites what came before), so each one is shown as a visible escape (``\\x1b``, ``\\x07``)
instead. Tables are drawn by a rich console that interprets nothing (no markup, no ``:emoji:``
codes, no highlighting), with cells built as :class:`rich.text.Text`, and printed wide enough
that no identifier is cut.

rich is imported when a table or a styled line is printed, never when this module is, so the
CLI's import stays fast (``ledger --help`` loads no command).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "console",
    "echo",
    "emit_json",
    "one_line",
    "print_table",
    "printable",
    "text",
    "write_tsv",
]

#: Bidirectional embeddings, overrides and isolates: they reorder what a terminal shows.
_BIDI = "\u202a-\u202e\u2066-\u2069"
#: C0, DEL and C1 controls (Unicode category Cc) and the bidi controls.
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
#: The same but newline and tab, which a multi-line message body means as they are.
_UNSAFE_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(value: str, *, multiline: bool = False) -> str:
    """``value`` safe to print on a terminal: every control character as a visible escape.

    C0 controls (``ESC`` as ``\\x1b``, ``BEL`` as ``\\x07``, ``CR`` as ``\\r``), ``DEL``, C1
    controls and bidi overrides are escaped; so are newline and tab (``\\n``, ``\\t``) unless
    ``multiline``, for a message body whose lines are meant. Everything else, emoji and every
    script included, is left as it is, and so is a backslash.
    """
    return (_UNSAFE_TEXT if multiline else _UNSAFE_LINE).sub(_escape, value)


def one_line(message: str) -> str:
    """``message`` on one line (a driver's multi-line error joined with spaces), printable."""
    return printable(" ".join(part.strip() for part in message.splitlines() if part.strip()))


def echo(line: str, *, err: bool = False) -> None:
    """Print one line for people (stdout, or stderr with ``err``), control characters escaped."""
    click.echo(printable(line), err=err)


def emit_json(data: object) -> None:
    """Print ``data`` as JSON on stdout (JSON escapes every control character itself)."""
    click.echo(json.dumps(data, indent=2, default=str))


def write_tsv(header: list[str], rows: list[list[str]]) -> None:
    """Tab-separated values with a header row, for scripts: no table drawing, nothing cut, and
    a tab or newline inside a value escaped (``\\t``, ``\\n``) so each row stays one line."""
    for row in (header, *rows):
        click.echo("\t".join(printable(value) for value in row))


def console(*, stderr: bool = False) -> Console:
    """A rich console that interprets nothing in what it prints: no markup, no emoji codes
    (``:thread:`` stays ``:thread:``), no highlighting."""
    from rich.console import Console

    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def text(value: str, style: str = "", *, multiline: bool = False) -> Text:
    """A table cell or line of ``value``, printable, styled as a whole (never parsed)."""
    from rich.text import Text

    return Text(printable(value, multiline=multiline), style=style)


def print_table(table: Table, out: Console | None = None) -> None:
    """Print ``table`` at least as wide as its widest row, wider than the console if need be,
    so no cell is cut short (rich would otherwise shrink columns to fit and ellipsize ids)."""
    from rich.measure import Measurement

    out = out or console()
    needed = Measurement.get(out, out.options.update_width(10**6), table).maximum
    width = out.width
    out.width = max(width, needed)
    try:
        out.print(table)
    finally:
        out.width = width
