"""OpenAI and OpenAI-compatible upstreams: the request goes out as the client sent it (model
name swapped, usage always requested when streaming) and the answer comes back untouched;
embeddings pass through."""
