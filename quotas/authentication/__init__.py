"""Authentication: the gateway's API key format (``keys``: generated, hashed, read from a
request's headers) and the in-process registry of every key with its tenant, access policy
and limits (``registry``), so a warm request is authenticated with one dictionary lookup."""
