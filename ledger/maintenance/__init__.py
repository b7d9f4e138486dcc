"""Operations that keep a store small without losing anything: compaction jobs, their run
history, and the scheduler that runs them (``scheduler``, the only module importing APScheduler).
"""

from ledger.maintenance._jobs import (
    JOBS,
    CompactionReport,
    archive,
    compact_keys,
    parse_duration,
    restore,
    retention,
    vacuum,
)
from ledger.maintenance._runs import RunRecord, history, jobs, run_job

__all__ = [
    "JOBS",
    "CompactionReport",
    "RunRecord",
    "archive",
    "compact_keys",
    "history",
    "jobs",
    "parse_duration",
    "restore",
    "retention",
    "run_job",
    "vacuum",
]
