"""Showing user-supplied text (file, column and category names, error messages) in Streamlit markdown."""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
# Streamlit's markdown also turns bare URLs and e-mail addresses into links ("autolinks"), escaped or not:
# a word joiner (U+2060, invisible) after the scheme, after "www" and after "@" stops it.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www)(?=\\[:.])|(@)")
WORD_JOINER = "\u2060"


def md(text: object) -> str:
    """Escape markdown so that a hostile name stays text: no links (not even bare URLs), images, HTML,
    colours or icons."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).splitlines()))  # a newline could start a heading
    return _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, escaped)
