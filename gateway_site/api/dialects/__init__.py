"""The wire formats clients speak (``openai_chat``: Chat Completions; ``messages``: Anthropic's
Messages API). A dialect parses its request into the gateway's internal request (an OpenAI chat
body, what the provider adapters take), renders answers and stream events in its own format,
and errors in its own envelope; everything between (authenticate, estimate, admit, cache,
route, settle) is one pipeline for all (``gateway_site.api.pipeline``), so no dialect can skip a
limit, a quota or a record."""
