"""Anthropic's Messages API (``/v1/messages``), the dialect of Claude Code and the Anthropic
SDKs: ``request`` parses a body into the internal request with the client's own request beside
it, ``translation`` is the chat body made from it for deployments that do not speak the
Messages API, ``answer`` and ``events`` render the answer and the stream, ``envelope`` the
errors, ``models`` the model list in Anthropic's shape; ``dialect`` is what the pipeline
takes. An Anthropic deployment gets the request as written and answers as it would directly."""
