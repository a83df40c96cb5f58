"""Usage records and what fills them: the usage event and its writer (``recorder``), the
Redis outbox drained into records (``outbox``, ``tasks``), price versions and cost rules
(``pricing``, ``prices``), hour/day rollups and retention (``rollups``), the report queries
(``reports``) and quota spend rebuilt from the records (``spend``, ``reconcilequotas``).
Imports ``quotas`` (tenants, keys, quota counters) and nothing else of ours."""
