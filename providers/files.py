"""Secrets and certificates read from files (Kubernetes and Docker secrets, Vault Agent
templates): read when the catalog loads, and stamped (modification time, size, inode) so that
the configuration watcher reloads the catalog when a file is rotated. No Django here; nothing
read is ever logged."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

MAX_SECRET_BYTES = 64 * 1024
Stamp = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: missing or unreadable


def stamp(path: str) -> Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def stamps(paths: set[str]) -> dict[str, Stamp]:
    return {path: stamp(path) for path in sorted(paths)}


def read_secret(path: str, *, owner: str, what: str) -> str | None:
    """The file's content without surrounding whitespace; None (logged without any content)
    when it is missing, unreadable, empty or too large."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        logger.warning("%s: %s file %s cannot be read: %s", owner, what, path, type(exc).__name__)
        return None
    if len(raw) > MAX_SECRET_BYTES:
        logger.warning("%s: %s file %s is larger than %d bytes", owner, what, path, MAX_SECRET_BYTES)
        return None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        logger.warning("%s: %s file %s is not UTF-8 text", owner, what, path)
        return None
    if not value:
        logger.warning("%s: %s file %s is empty", owner, what, path)
    return value or None
