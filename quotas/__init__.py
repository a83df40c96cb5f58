"""Tenants, API keys, model access rules, rate tiers and cost quotas: their models, the
in-process key registry that authenticates a request with no ORM query, and the access decision.
Imports nothing of ours except Django."""
