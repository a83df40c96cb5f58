"""The examples of the Markdown documentation, read from the files themselves, so a test of an
example tests what a reader copies."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_block(document: str, *, heading: str, language: str = "yaml") -> str:
    """The first ``language`` block after the heading ``heading`` (its text after the ``#``s) of
    ``document`` (a path from the repository's root), before the next heading of any level."""
    text = (ROOT / document).read_text()
    start = re.search(rf"^#+ {re.escape(heading)}$", text, re.MULTILINE)
    if start is None:
        raise LookupError(f"{document} has no heading {heading!r}")
    section = text[start.end() :]
    following = re.search(r"^#+ ", section, re.MULTILINE)
    for match in _FENCE.finditer(section[: following.start()] if following else section):
        if match.group(1) == language:
            return match.group(2)
    raise LookupError(f"{document}, {heading!r}: no {language} block")
