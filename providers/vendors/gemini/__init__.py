"""Google's Gemini API: ``models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, camelCase out, both spellings in; embeddings through
``batchEmbedContents``. Thought signatures ride in the tool-call ids (``thought_signatures``)."""
