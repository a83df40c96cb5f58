"""Choosing a deployment for a request and calling it: strategies, retries, breakers and the
response cache live here. Imports ``providers`` only; no Django."""
