"""Operations that keep a store small without losing anything: compaction jobs, their run
history, the scheduler that runs them (``scheduler``, the only module importing APScheduler),
and privacy requests (export or erase one user's, key's or session's conversations).
"""

from ledger.maintenance._erasure import (
    ErasureRecord,
    Scope,
    erase,
    erasure_history,
    export_scope,
    scope_of,
    scope_sessions,
)
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
    "ErasureRecord",
    "RunRecord",
    "Scope",
    "archive",
    "compact_keys",
    "erase",
    "erasure_history",
    "export_scope",
    "history",
    "jobs",
    "parse_duration",
    "restore",
    "retention",
    "run_job",
    "scope_of",
    "scope_sessions",
    "vacuum",
]
