"""Usage records, pricing and the usage writer (an in-process batch flusher in the embedded
default). Imports ``quotas`` (tenants and keys) and nothing else of ours."""
