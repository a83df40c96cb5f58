"""The operator console: the Django admin of providers and models (``admin``), the usage
pages and charts, the routing overview, the reports API (``reports_api``), and the declarative
configuration (``declarative``, ``applyconfig``) with the rule that every deployment is priced
(``price_coverage``). A Django app of its own (label ``console``)."""
