"""What every vendor's adapter is built from: the adapter protocol and the thin I/O of one
upstream call (``upstream``), reading an OpenAI chat request for translation
(``chat_request``), writing OpenAI's answer and stream chunks (``chunks``), the translated
stream (``translated_stream``), one error policy for every vendor (``error_policy``), JSON with
a vendor (``vendor_json``), and the embeddings answer (``embeddings``). No Django here."""
