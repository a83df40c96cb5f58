"""Request bodies in, validated values out: OpenAI's fields checked (pydantic, strict), every
size a client controls bounded (``bounds``) and a refusal naming the parameter as the client
wrote it (``params``)."""
