"""Showing user-supplied text (file, column and category names, error messages) in Streamlit markdown."""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: object) -> str:
    """Escape markdown so that a hostile name stays text: no links, images, HTML, colours or icons."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).splitlines()))  # a newline could start a heading
