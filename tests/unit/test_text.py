"""User-supplied text shown through Streamlit markdown stays text."""

from __future__ import annotations

import re

import pytest

from ui.text import WORD_JOINER, md

HOSTILE = [
    "[click](javascript:alert(1))",
    "![pixel](http://tracker.example/p.png)",
    "<img src=x onerror=alert(1)>",
    ":red[alarm] :material/home: :smile:",
    "**bold** _it_ `code` # heading",
    "$x^2$ ~~gone~~ | a | b |",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_markdown_character_is_escaped(text):
    escaped = md(text)
    unescaped = re.findall(r"(?<!\\)[\[\]()<>*_`#:$~|!]", escaped)
    assert unescaped == []
    assert escaped.replace("\\", "").replace(WORD_JOINER, "") == text.replace("\\", "")


def test_plain_words_are_unchanged():
    assert md("shop 2024") == "shop 2024"


@pytest.mark.parametrize(
    "text",
    [
        "[click me](http://evil.example/x)",
        "see https://evil.example/login now",
        "www.evil.example",
        "mail boss@evil.example",
        "FTP://x.example",
        "a @ b",
    ],
)
def test_bare_urls_and_addresses_cannot_become_links(text):
    """Streamlit autolinks bare URLs and e-mail addresses even when escaped: what is left, once the
    escapes are read, must match none of the autolink patterns."""
    shown = md(text).replace("\\", "")
    assert not re.search(r"(?i)(https?|ftp|mailto)://|www\.|\w@\w", shown), shown
    assert shown.replace(WORD_JOINER, "") == text
