"""Tenants, API keys, model access rules, rate tiers and cost quotas: their models, the
in-process key registry that authenticates a request with no ORM query, the access decision,
and admission: the limiter maths (pure), the Redis (Lua) and in-process limit stores, the
refusal errors and the quota alerts. Imports nothing of ours (Django, redis and httpx only)."""
