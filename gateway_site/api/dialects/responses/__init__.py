"""OpenAI's Responses API (``/v1/responses``) as a dialect of the one pipeline.

``create`` parses and checks a create body (every field the gateway honours, translates with a
documented loss, or refuses with a 400 naming it, before anything is sent upstream); ``items``
normalises input items and turns them into chat messages; ``translate`` builds the internal
request (an OpenAI chat body) from them; ``output`` renders a chat completion as the ``response``
object; ``events`` turns the chat chunks of a stream into the typed Responses events;
``dialect`` ties them to the pipeline and keeps stored responses (``stored_responses``)."""
