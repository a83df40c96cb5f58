from __future__ import annotations

import pytest

from providers.tokens import count_message_tokens, count_tokens, split_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ("12345 x_y", ["123", "45", " x", "_", "y"]),
        ("naïve café", ["naïve", " café"]),
        ("  padded  ", ["  padded", "  "]),
        ("", []),
    ],
)
def test_split_tokens_is_lossless(text, tokens):
    assert split_tokens(text) == tokens
    assert "".join(split_tokens(text)) == text
    assert count_tokens(text) == len(tokens)


def test_message_framing():
    # 3 tokens of framing per message plus 3 for the reply priming
    assert count_message_tokens(["Hello there"]) == 2 + 3 + 3
    assert count_message_tokens([]) == 3
