"""User-supplied text shown through Streamlit markdown stays text."""

from __future__ import annotations

import re

import pytest

from ui.text import md

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
    assert escaped.replace("\\", "") == text.replace("\\", "")


def test_plain_words_are_unchanged():
    assert md("shop 2024") == "shop 2024"
