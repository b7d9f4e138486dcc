"""What the benchmark scripts print: progress on stderr, one table, and on request JSON.

Every script ends the same way: the fixed-width table goes to stdout, or with ``--json`` to
stderr while stdout holds one JSON object with every figure. The flags that pick a PostgreSQL
database, the scratch folder and the JSON output are spelled here once, as are the verdict of a
target and the header lines that say what the run measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TextIO, TypeVar

import sqlalchemy as sa

from ledger.config import Settings

from .machine import source_revision

__all__ = [
    "RunOptions",
    "add_run_arguments",
    "add_synchronous_argument",
    "document_head",
    "emit",
    "header_lines",
    "latency_table",
    "log",
    "log_document",
    "on_backends",
    "options_document",
    "postgres_line",
    "rss_line",
    "run_header",
    "run_options",
    "run_script",
    "shown_url",
    "verdict",
]

R = TypeVar("R")
S = TypeVar("S")


def log(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def add_run_arguments(parser: argparse.ArgumentParser, *, files: str, postgres: bool) -> None:
    """``--postgres`` (when the script has a PostgreSQL case), ``--dir`` and ``--json``.

    ``files`` names what ``--dir`` holds: "file" or "files".
    """
    if postgres:
        parser.add_argument(
            "--postgres",
            metavar="URL",
            default=os.environ.get("LEDGER_TEST_POSTGRES_URL") or None,
            help=(
                "PostgreSQL database to measure too (default: $LEDGER_TEST_POSTGRES_URL; '' skips)"
            ),
        )
    parser.add_argument("--dir", dest="directory", help=f"parent folder of the SQLite {files}")
    parser.add_argument("--json", dest="as_json", action="store_true", help="JSON on stdout")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """The options every script takes, read by :func:`add_run_arguments`: the base of each
    script's ``Options``."""

    postgres: str | None
    directory: str | None
    as_json: bool


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`RunOptions` fields from the command line (no URL: ``None``)."""
    return {
        "postgres": getattr(args, "postgres", None) or None,
        "directory": args.directory,
        "as_json": args.as_json,
    }


def add_synchronous_argument(parser: argparse.ArgumentParser, sides: str) -> None:
    """``--synchronous``: SQLite's ``PRAGMA synchronous`` for the ledger and ``sides``."""
    parser.add_argument(
        "--synchronous",
        type=str.upper,
        choices=("FULL", "NORMAL", "EXTRA"),
        default="FULL",
        help=f"SQLite PRAGMA synchronous for the ledger and {sides} (FULL)",
    )


def shown_url(url: str | None) -> str | None:
    """``url`` with any password masked."""
    return None if url is None else sa.make_url(url).render_as_string(hide_password=True)


def options_document(options: Any) -> dict[str, Any]:
    """The options dataclass as JSON, with any PostgreSQL password masked."""
    data = asdict(options)
    if "postgres" in data:
        data["postgres"] = shown_url(data["postgres"])
    return data


def document_head(options: Any) -> dict[str, Any]:
    """The first keys of a JSON document: the options and the revision measured."""
    return {"options": options_document(options), "revision": source_revision()}


def log_document(report: Any, results: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a benchmark on a built log: its options, the build's figures and
    the environment, then ``results`` in order, then the peak RSS at each stage (``memory``)."""
    return {
        "options": options_document(report.options),
        "build": report.build,
        "environment": report.environment,
        **results,
        "memory": report.memory,
    }


def verdict(target: float | None, met: bool | None, goal: str, miss: str = "BELOW") -> str:
    """``(info)`` without a ``target``, else ``goal.format(target)`` and ``ok`` or ``miss``."""
    return "(info)" if target is None else f"{goal.format(target)} " + ("ok" if met else miss)


def run_header(revision: str | None, sqlite: Mapping[str, str]) -> str:
    """``ledger REV; SQLite VERSION`` and, when known, its journal mode and synchronous."""
    line = f"ledger {revision}; SQLite {sqlite.get('sqlite_version')}"
    if "journal_mode" in sqlite:
        line += f" journal_mode={sqlite['journal_mode']} synchronous={sqlite['synchronous']}"
    return line


def header_lines(environment: Mapping[str, Mapping[str, str]], detail: str) -> list[str]:
    """The lines above a table: :func:`run_header` at this revision with ``detail`` after it,
    and the :func:`postgres_line` (with ``wal_sync_method``) if PostgreSQL ran."""
    lines = [f"{run_header(source_revision(), environment.get('sqlite', {}))}; {detail}"]
    if "postgresql" in environment:
        lines.append(postgres_line(environment["postgresql"], "wal_sync_method"))
    return lines


def postgres_line(settings: Mapping[str, str], *extra: str) -> str:
    """The server version and the settings that decide what a commit costs."""
    names = ("fsync", "synchronous_commit", *extra)
    shown = " ".join(f"{name}={settings[name]}" for name in names)
    return f"PostgreSQL {settings['server_version']} {shown}"


def rss_line(
    memory: Mapping[str, float], build: Mapping[str, Any], after: Mapping[str, str]
) -> str:
    """Peak RSS before measuring and after each stage, then the build's rate and peak.

    ``after`` maps a stage to its label; its figure is ``memory["peak_rss_STAGE_mib"]`` (a
    stage that did not run is left out).
    """
    shown = [f"before {memory['peak_rss_before_mib']:.1f}"] + [
        f"{label} {memory[key]:.1f}"
        for stage, label in after.items()
        if (key := f"peak_rss_{stage}_mib") in memory
    ]
    return (
        f"peak RSS (MiB): {', '.join(shown)}; build (child process) "
        f"{build['events_per_s']:,.0f} ev/s, peak {build['child_peak_rss_mib']}"
    )


def latency_table(
    out: TextIO,
    heads: tuple[str, str],
    rows: Iterable[tuple[str, str, Mapping[str, Any]]],
    widths: tuple[int, int, int, int, int],
) -> None:
    """Per-call latencies: a row per (name, baseline name, :func:`latency_figures` dict).

    ``heads`` title the name and baseline columns; ``widths`` are those of the median, p99,
    baseline name, baseline median and baseline p99 columns.
    """
    med, p99, base, b_med, b_p99 = widths
    print(
        f"{heads[0]:<22}{'calls':>7}{'median µs':>{med}}{'p99 µs':>{p99}}  {heads[1]:<{base}}"
        f"{'median µs':>{b_med}}{'p99 µs':>{b_p99}}  target",
        file=out,
    )
    for name, baseline, d in rows:
        goal = verdict(d["target_median_us"], d["meets_target"], "median < {:,.0f}", "ABOVE")
        print(
            f"{name:<22}{d['calls']:>7,}{d['median_us']:>{med},.1f}{d['p99_us']:>{p99},.1f}  "
            f"{baseline:<{base}}{d['baseline_median_us']:>{b_med},.1f}"
            f"{d['baseline_p99_us']:>{b_p99},.1f}  {goal}",
            file=out,
        )


def on_backends(
    postgres: str | None,
    settings: S,
    report: R,
    sqlite: Callable[[S, R], None],
    postgresql: Callable[[str, S, R], None],
) -> R:
    """``sqlite(settings, report)``, then ``postgresql(url, settings, report)`` if a PostgreSQL
    URL was given, else a line saying that PostgreSQL was skipped; returns ``report``."""
    sqlite(settings, report)
    if postgres:
        postgresql(postgres, settings, report)
    else:
        log("postgresql: skipped (give --postgres URL or set LEDGER_TEST_POSTGRES_URL)")
    return report


def run_script(
    options: RunOptions,
    report: R,
    backends: tuple[Callable[[Settings, R], None], Callable[[str, Settings, R], None]],
    output: tuple[Callable[[R, TextIO], None], Callable[[R], dict[str, Any]]],
) -> int:
    """A script's whole run: :func:`on_backends` with ``backends`` (SQLite, PostgreSQL), under
    the ledger's settings with ``options.synchronous`` (if it has one, else ``FULL``) as SQLite's
    ``synchronous``; then :func:`emit` with ``output`` (table, document)."""
    synchronous = getattr(options, "synchronous", "FULL")
    settings = Settings.from_env({"LEDGER_SQLITE_SYNCHRONOUS": synchronous})
    on_backends(options.postgres, settings, report, *backends)
    return emit(report, *output, options.as_json)


def emit(
    report: R,
    table: Callable[[R, TextIO], None],
    document: Callable[[R], dict[str, Any]],
    as_json: bool,
) -> int:
    """The table on stdout; with ``as_json`` on stderr, and the JSON document on stdout."""
    table(report, sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(document(report), indent=2))
    return 0
