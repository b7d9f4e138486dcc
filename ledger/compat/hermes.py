"""Hermes' tuple-cache guard at its first public path (it lives in ``ledger.hermes.guard``)."""

from ledger.hermes.guard import PENDING, guard, make_entry, make_pending, refresh_message_count

__all__ = ["PENDING", "guard", "make_entry", "make_pending", "refresh_message_count"]
