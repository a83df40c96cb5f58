"""Usage records, pricing, the usage writer (an in-process batch flusher in the embedded
default) and quota spend rebuilt from the records (``reconcilequotas``). Imports ``quotas``
(tenants, keys, quota counters) and nothing else of ours."""
