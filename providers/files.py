"""Secrets and certificates read from files (Kubernetes and Docker secrets, Vault Agent
templates): read when the catalog loads, and stamped (modification time, size, inode) so that
the configuration watcher reloads the catalog when a file is rotated. No Django here; nothing
read is ever logged."""

from __future__ import annotations

import configparser
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


def read_aws_credentials(path: str, *, owner: str) -> tuple[str, str, str | None] | None:
    """The access key id, secret access key and session token (None when absent) of an AWS
    shared-credentials file's ``[default]`` profile, or of its only profile; None (logged with
    the path only) when the file is missing, unreadable, not in that format or incomplete."""
    text = read_secret(path, owner=owner, what="AWS credentials")
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:  # its message may quote a line: only its type is logged
        logger.warning("%s: AWS credentials file %s cannot be parsed: %s", owner, path, type(exc).__name__)
        return None
    profiles = parser.sections()
    profile = "default" if "default" in profiles else (profiles[0] if len(profiles) == 1 else None)
    if profile is None:
        logger.warning("%s: AWS credentials file %s has no [default] profile", owner, path)
        return None
    section = parser[profile]
    key_id = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if not key_id or not secret:
        logger.warning(
            "%s: AWS credentials file %s lacks aws_access_key_id or aws_secret_access_key", owner, path
        )
        return None
    return key_id, secret, section.get("aws_session_token", "").strip() or None
