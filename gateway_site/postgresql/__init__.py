"""Django's PostgreSQL backend, with the password read from a file for each new connection."""
