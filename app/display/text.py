"""User-supplied text shown as typed: file and member names, reviewer and student names, comments, quiz names.

Streamlit renders markdown (links, images, emphasis, LaTeX between ``$``, ``:colour[...]`` directives) in
most places text appears, and Plotly renders a subset of HTML in hover labels and axis titles. A name like
``[Session expired - sign in](http://…)`` must appear as those characters, never as a link on another
reviewer's page.
"""
from __future__ import annotations

import html
import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=&^%@\"'])")
MAX_SHOWN = 200  # characters of one user string shown in running text


def _one_line(value: object, limit: int) -> str:
    """``value`` as text on one line (white space folded), cut at ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` for a markdown context (``st.markdown``, captions, messages, labels): every markdown and
    Streamlit directive character escaped, line breaks flattened, and cut at ``limit`` characters."""
    return _MARKDOWN.sub(r"\\\1", _one_line(value, limit))


def plain_html(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` for Plotly's hover labels, tick labels and titles, which render HTML tags."""
    return html.escape(_one_line(value, limit), quote=True)
