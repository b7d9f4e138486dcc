"""Projections of the ledger's event log (imports ``ledger``, never the reverse)."""
