"""Adapters to the frameworks and tools gateways use (optional extras, imported on demand)."""
