"""The OpenAI-compatible API: request parsing, the views, SSE relay and error rendering."""
