"""The agent cache: the pure decision table (shared with replay) and :class:`AgentCache`."""

from ledger.cache._agent_cache import AgentCache, CacheDecision
from ledger.cache._decision import Action, Reason, Verdict, decide

__all__ = ["Action", "AgentCache", "CacheDecision", "Reason", "Verdict", "decide"]
