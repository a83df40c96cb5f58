"""Provider kinds: one record per kind (``record``: its label, settings, adapter, embedder, token
rules, telemetry name), the registry every per-kind lookup derives from (``registry``), and the
settings check and defaults (``settings``). No Django here."""
