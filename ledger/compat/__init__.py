"""Drop-in helpers for gateways that are not ready to move to :class:`ledger.AgentCache`."""
