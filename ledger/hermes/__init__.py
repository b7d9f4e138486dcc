"""Hermes Agent: its ``state.db`` reader, row-to-event mapping, the importer, and the
tuple-cache guard for gateways that keep Hermes' cache (``guard``, also ``ledger.compat.hermes``).
"""

from ledger.hermes._importer import (
    NAMESPACE,
    ImportSummary,
    count_hermes_messages,
    event_id,
    import_hermes,
)

__all__ = ["NAMESPACE", "ImportSummary", "count_hermes_messages", "event_id", "import_hermes"]
