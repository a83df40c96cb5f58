"""The endpoints: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``, ``/v1/usage``,
the probes (``/live``, ``/ready``, ``/health``) and ``/metrics``."""
