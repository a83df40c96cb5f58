"""Anthropic's Messages API: an OpenAI chat request becomes a ``/v1/messages`` request, the
message comes back as a ``chat.completion``, the SSE stream as ``chat.completion.chunk`` events,
errors as OpenAI error objects. No embeddings."""
