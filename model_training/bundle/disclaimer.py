"""The research-use notice every figure, export and page carries (a module of its own: the app's first page
needs it without the plotting stack)."""
from __future__ import annotations

DISCLAIMER = "Research use only — not for diagnosis."
