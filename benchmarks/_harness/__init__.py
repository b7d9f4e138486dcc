"""The harness every benchmark script shares, written once.

``output``
    progress lines, the shared command-line flags and options, a script's run over both
    backends, table lines and verdicts, the JSON document.
``machine``
    what a run measured on: the source revision, peak RSS, SQLite PRAGMAs, the machine's CPU
    time.
``databases``
    throw-away SQLite folders, the baseline table shaped like ``events`` and the Core one-row
    commit every append baseline makes.
``postgres``
    a throw-away PostgreSQL schema per run, the bare ``psycopg`` connection, server settings.
``timing``
    interleaved rounds that rotate their order, per-call timing, percentiles, progress counters
    and the ledger-versus-baseline comparison records.
``build``
    writing a large bare log in a child process, so its memory never counts as the parent's.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import ``_harness.MODULE``.
"""
