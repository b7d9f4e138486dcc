"""Alembic migrations of the ledger schema (``ledger db upgrade`` runs them)."""
