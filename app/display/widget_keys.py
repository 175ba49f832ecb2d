"""Widget keys that follow what a widget shows.

Streamlit keeps a keyed select box's shown label when only its labels change (same options, another
``format_func``): after a new upload the picker would still name a tile of the previous one while the page
shows the new one. A key that carries a fingerprint of what the labels describe gives a fresh widget instead."""
from __future__ import annotations

import hashlib


def keyed_to(base: str, *what: object) -> str:
    """``base`` with a short fingerprint of ``what`` (reprs of the inputs the widget's labels are made from)."""
    return f"{base}-{hashlib.sha1(repr(what).encode()).hexdigest()[:10]}"
