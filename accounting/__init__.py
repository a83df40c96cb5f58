"""Usage records and the ledger that fills them (the in-process writer; the Redis outbox drained
by Celery, ``ledger.py``, ``tasks.py``), price versions and cost rules (``pricing.py``,
``prices.py``), hour/day rollups and retention (``rollups.py``), the report queries
(``reports.py``) and quota spend rebuilt from the records (``reconcilequotas``). Imports
``quotas`` (tenants, keys, quota counters) and nothing else of ours."""
