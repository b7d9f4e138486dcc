"""``ledger scheduler …``: the compaction jobs on a schedule, and what is configured."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from ledger.cli._common import open_store
from ledger.cli._options import json_option, url_option
from ledger.cli._output import echo, emit_json
from ledger.maintenance.scheduler import (
    build_scheduler,
    describe_jobs,
    format_moment,
    format_options,
    format_trigger,
    load_schedule,
)

__all__ = ["scheduler"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def scheduler() -> None:
    """Run the compaction jobs on a schedule (APScheduler, one run per schedule across hosts)."""


def _config_option(func: F) -> F:
    return click.option(
        "--config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Schedule TOML file (default: LEDGER_SCHEDULE_FILE / LEDGER_SCHEDULE_<JOB>).",
    )(func)


@scheduler.command("run")
@url_option
@_config_option
@click.option(
    "--exit-after",
    type=click.FloatRange(min=0, min_open=True, max=10**9),
    default=None,
    help="Stop after this many seconds.",
)
def scheduler_run(url: str | None, config: Path | None, exit_after: float | None) -> None:
    """Run the scheduler in the foreground until SIGINT/SIGTERM."""
    specs = load_schedule(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with open_store(url) as store:
        running = build_scheduler(store, specs)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: running.shutdown(wait=False))
        if exit_after is not None:
            timer = threading.Timer(exit_after, lambda: running.shutdown(wait=False))
            timer.daemon = True
            timer.start()
        echo(f"scheduler running {', '.join(s.job for s in specs)}; Ctrl-C to stop", err=True)
        running.start()


@scheduler.command("jobs")
@url_option
@_config_option
@json_option
def scheduler_jobs(url: str | None, config: Path | None, as_json: bool) -> None:
    """The configured jobs, their next run and their last result."""
    specs = load_schedule(config)
    with open_store(url) as store:
        infos = describe_jobs(store, specs)
    if as_json:
        emit_json(msgspec.to_builtins(infos))
        return
    now = dt.datetime.now(dt.UTC)
    for spec, info in zip(specs, infos, strict=True):
        next_run = "-" if info.next_run is None else format_moment(info.next_run, now)
        last = "-"
        if info.last_status is not None:
            when = "" if info.last_run is None else " " + format_moment(info.last_run, now)
            last = info.last_status + when
        options = format_options(spec)
        echo(
            f"{info.job:<10} {format_trigger(spec):<18} next {next_run:<36}  last {last}"
            + (f"  {options}" if options else "")
        )
