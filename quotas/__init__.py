"""Tenants, API keys, model access rules, rate tiers and cost quotas: their models, who is
calling (``authentication``), the access decision (``access``), and admission: the limits of a
request as a plan (``policy``), the rate-limit maths (``algorithms``, pure), the limiter that
admits and settles (``limiter``) over a store (``stores``), the refusal errors and the quota
alerts. Imports nothing of ours (Django, redis and httpx only)."""
