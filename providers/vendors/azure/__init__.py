"""Azure OpenAI: OpenAI's wire format behind deployment URLs.

The request goes to ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=``
with the key in ``api-key``; the deployment's upstream model name is the Azure deployment name.
Answers come back as OpenAI's, without Azure's content-filter annotations
(``prompt_filter_results``, ``content_filter_results``) so clients cannot tell the difference;
a filtered answer keeps ``finish_reason: "content_filter"``, a filtered prompt is a 400 with
``code: "content_filter"``. Filter-only stream chunks are dropped."""
