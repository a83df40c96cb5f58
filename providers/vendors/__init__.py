"""One subpackage per provider kind, each with the same modules: ``kind`` (the kind's record),
``request`` (``to_upstream``), ``response`` (``from_upstream``, usage), ``stream`` (chunk or
event translation), ``errors`` (``map_error``), ``adapter`` (the thin I/O), ``embeddings`` where
the vendor embeds, and what only that vendor needs (Bedrock's ``signing`` and event-stream
``framing``, Gemini's ``thought_signatures``, the mock's reply planning). The wire formats as
implemented: docs/providers.md. No Django here."""
