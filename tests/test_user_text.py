"""User-supplied text is shown as typed: never as a link, an image, emphasis, LaTeX or HTML on anyone's page."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from app.display.text import md, plain_html
from app.quiz import reader_metrics

PHISH = "![t](http://127.0.0.1:9/x.png) [Session expired - sign in again](http://127.0.0.1:9/phish)"
STUDENT = "[click me](http://example.com) **bold** $x^2$ <a href='http://example.com'>LINK</a><br>"


def unescape(text: str) -> str:
    """What CommonMark shows for ``text``: a backslash before punctuation shows the punctuation."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def active_markdown(text: str) -> list[str]:
    """Markup in ``text`` that a markdown renderer would act on (links, images, autolinks, emphasis, maths,
    HTML)."""
    patterns = [r"(?<!\\)\[[^\]]*(?<!\\)\]\(", r"(?<!\\)!(?<!\\)\[", r"https?://", r"www\.", r"(?<!\\)\*\*",
                r"(?<!\\)\$", r"(?<!\\)<[a-zA-Z/]"]
    return [p for p in patterns if re.search(p, text)]


def test_markdown_text_shows_what_was_typed_and_nothing_acts():
    for raw in (PHISH, STUDENT, ":red[alarm] :material/warning: www.example.com # heading", "a_b*c*"):
        shown = md(raw, 1000)
        assert unescape(shown) == raw and active_markdown(shown) == [], (raw, shown)
    assert active_markdown(PHISH) and active_markdown(STUDENT)  # the check finds what it looks for
    assert md("x" * 500).endswith("…") and len(md("x" * 500)) == 200
    assert md("two\nlines") == "two lines"


def test_plotly_labels_escape_html():
    assert plain_html(STUDENT) == ("[click me](http://example.com) **bold** $x^2$ &lt;a href=&#x27;http://example.com"
                                   "&#x27;&gt;LINK&lt;/a&gt;&lt;br&gt;")
    readers = pd.DataFrame({"student": [STUDENT, "Bo"], "sensitivity": [0.8, 0.6], "specificity": [0.7, 0.9]})
    y = np.array([0, 1, 0, 1, 1, 0])
    fig = reader_metrics.roc_with_readers(y, np.linspace(0.1, 0.9, 6), 0.5, readers)
    labels = [t for trace in fig.data if trace.text is not None for t in trace.text]
    assert labels and not [t for t in labels if "<" in t]
