"""Provider accounts, public models and their deployments (Django models and catalog); the
provider kinds (``kinds``: one record per kind and the registry every per-kind lookup derives
from); one subpackage per vendor (``vendors``: pure translation functions and thin I/O) built
from the shared pieces in ``translation``; the SSE decoder, the tokenizer and the HTTP client
factory. Imports nothing of ours: kinds, translation, vendors and SSE parsing import no Django
at all."""
