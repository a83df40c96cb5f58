"""Provider accounts, public models and their deployments (Django models and catalog), plus
the upstream adapters (pure translation functions and thin I/O) and the HTTP client factory.
Imports nothing of ours: translation and SSE parsing import no Django at all."""
