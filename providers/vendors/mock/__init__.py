"""The built-in ``mock`` provider: answers in-process, with no network and no key.

The answer is deterministic and decided by ``reply`` (echo, tool calls from ``tools``, JSON
output from ``schema``, strict schemas checked by ``strict``, ``n`` choices, real token counts,
``max_tokens``); ``response`` and ``stream`` put it on OpenAI's wire format."""
