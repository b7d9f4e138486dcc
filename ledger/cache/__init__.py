"""The agent cache: the pure decision table (shared with replay), :class:`AgentCache` and its
asyncio twin :class:`AsyncAgentCache`."""

from ledger.cache._agent_cache import AgentCache, CacheDecision
from ledger.cache._async import AsyncAgentCache
from ledger.cache._decision import Action, Reason, Verdict, decide
from ledger.cache._recorder import CacheStats

__all__ = [
    "Action",
    "AgentCache",
    "AsyncAgentCache",
    "CacheDecision",
    "CacheStats",
    "Reason",
    "Verdict",
    "decide",
]
