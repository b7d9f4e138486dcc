"""Hermes Agent: its ``state.db`` reader, row-to-event mapping, the importer, and the
tuple-cache guard for gateways that keep Hermes' cache (``guard``, also ``ledger.compat.hermes``).
"""

from ledger.hermes._follow import follow_hermes
from ledger.hermes._importer import (
    NAMESPACE,
    count_hermes_messages,
    event_id,
    import_hermes,
)
from ledger.hermes._summary import ImportSummary

__all__ = [
    "NAMESPACE",
    "ImportSummary",
    "count_hermes_messages",
    "event_id",
    "follow_hermes",
    "import_hermes",
]
