"""The Analyze page's drop zone: the browser reads the dropped tiles and sends them in one message.

Streamlit's own uploader sends each file in its own request and costs the browser about 12 ms per file (2.2 to
3.7 s for 200 tiles on a 2-core machine) before the server sees the first. Here the browser reads all files
itself (``drop_zone.js``) and hands them over at once, about 0.4 s for 200 tiles. Folders dropped from the
desktop are walked, and a .zip of tiles is taken as before (``tile_archives``).

What arrives is untrusted: ``parse`` checks every entry, and each file that cannot be used becomes a message
naming it and the reason, so the rest of the drop is kept.
"""
from __future__ import annotations

import base64
import binascii
import html
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import streamlit as st

from app.inputs.archives import MAX_ARCHIVE_MB, is_archive
from app.inputs.uploads import BATCH_UPLOAD_TYPES, MAX_FILE_MB, MAX_FILES

# One drop travels as one WebSocket message, base64 inflates it by a third, and Streamlit closes the connection
# above server.maxMessageSize (200 MB by default).
MAX_DROP_MB = 100
ACCEPT = [f".{t}" for t in BATCH_UPLOAD_TYPES]
MAX_NAME = 255
_drop_ids = itertools.count(1)

_HTML = """<div class="tile-drop" role="group" aria-label="Tiles" data-limits="{limits}">
  <svg class="tile-drop-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M19.35 10.04A7.49 7.49 0 0 0 12 4
    C9.11 4 6.6 5.64 5.35 8.04A5.994 5.994 0 0 0 0 14c0 3.31 2.69 6 6 6h13c2.76 0 5-2.24 5-5 0-2.64-2.05-4.78-4.65-4.96
    zM14 13v4h-4v-4H7l5-5 5 5h-3z"/></svg>
  <div class="tile-drop-text"><span>Drag and drop tiles or a folder of tiles here</span>
    <small class="tile-drop-limits">{caption}</small><small class="tile-drop-status" aria-live="polite"></small></div>
  <button type="button">Browse files</button>
  <input type="file" multiple hidden aria-label="Tiles">
</div>"""
_CSS = """
.tile-drop { display: flex; align-items: center; gap: 1rem; padding: 1rem; border-radius: 0.5rem;
  background: var(--st-secondary-background-color); color: var(--st-text-color); font-family: var(--st-font); }
.tile-drop.over { outline: 2px dashed var(--st-primary-color); }
.tile-drop.busy { opacity: 0.6; }
.tile-drop-icon { width: 2.2rem; height: 2.2rem; fill: currentColor; opacity: 0.5; flex: none; }
.tile-drop-text { display: flex; flex-direction: column; flex: 1; }
.tile-drop-text small { opacity: 0.7; }
.tile-drop button { font: inherit; padding: 0.25rem 0.75rem; border-radius: 0.5rem; cursor: pointer;
  color: var(--st-text-color); background: var(--st-background-color); border: 1px solid var(--st-border-color); }
.tile-drop button:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
"""


@dataclass
class Dropped:
    """The files of one drop: ``files`` are ``(name, bytes)`` to decode, ``errors`` the ones refused."""

    drop_id: int
    files: list[tuple[str, bytes]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def n_bytes(self) -> int:
        return sum(len(data) for _, data in self.files)

    @classmethod
    def of(cls, files: list[tuple[str, bytes]]) -> Dropped:
        """A drop of these files as if they had come from the browser (tests, scripts)."""
        return cls(next(_drop_ids), list(files))


def _name(raw: object) -> str:
    """A display name from the browser: a relative path with no empty, '.' or '..' parts."""
    parts = [p for p in PurePosixPath(str(raw).replace("\\", "/")).parts if p not in {"", ".", "..", "/"}]
    name = "/".join(parts)[-MAX_NAME:]
    return name or "unnamed"


def _reason(name: str, size: int, reason: object) -> str:
    if reason == "type":
        return f"{name}: not a tile image (.tif .png .jpg) or a .zip of tiles; skipped"
    if reason == "size":
        limit, what = (MAX_ARCHIVE_MB, "an archive of tiles") if is_archive(name) else (MAX_FILE_MB, "a tile")
        return f"{name}: is {size / 2**20:.1f} MB; the limit for {what} is {limit} MB"
    if reason == "total":
        return (f"{name}: skipped, the files dropped together passed {MAX_DROP_MB} MB; drop the rest as "
                "another batch")
    return f"{name}: the browser could not read this file"


def parse(payload: object) -> Dropped:
    """The files of one drop message (``drop_zone.js``), each one checked; never raises on bad input."""
    dropped = Dropped(next(_drop_ids))
    entries = payload.get("files") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        dropped.errors.append("The drop could not be read (the browser sent no file list); try again.")
        return dropped
    budget = MAX_DROP_MB * 2**20
    for entry in entries[: MAX_FILES * 4]:  # more than a batch can use; the rest is not even looked at
        if not isinstance(entry, dict):
            dropped.errors.append("A dropped file came without a name and was skipped.")
            continue
        name = _name(entry.get("name", ""))
        size = entry.get("size")
        size = size if isinstance(size, int) and size >= 0 else -1
        data = entry.get("data")
        if not isinstance(data, str):
            dropped.errors.append(_reason(name, size, entry.get("reason")))
            continue
        if len(data) > (budget * 4) // 3 + 4:  # checked before decoding: the browser's sum is not trusted
            dropped.errors.append(_reason(name, size, "total"))
            continue
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            dropped.errors.append(f"{name}: arrived damaged (not valid base64); drop it again")
            continue
        if len(raw) != size:
            dropped.errors.append(f"{name}: arrived incomplete ({len(raw)} of {size} bytes); drop it again")
            continue
        budget -= len(raw)
        dropped.files.append((name, raw))
    if len(entries) > MAX_FILES * 4:
        dropped.errors.append(f"{len(entries) - MAX_FILES * 4} more files were dropped than can be looked at; "
                              "they were skipped")
    return dropped


def caption() -> str:
    return (f"Up to {MAX_FILES} tiles · {MAX_FILE_MB} MB per tile · {MAX_ARCHIVE_MB} MB per .zip · "
            + " ".join(t.upper() for t in BATCH_UPLOAD_TYPES))


@st.cache_resource(show_spinner=False)
def _component():
    # The limits travel in the HTML, registered once: passing them as the mount's `data` would make Streamlit
    # look for data frames in them, which imports pandas on the first page.
    limits = {"accept": ACCEPT, "maxFileBytes": MAX_FILE_MB * 2**20, "maxArchiveBytes": MAX_ARCHIVE_MB * 2**20,
              "maxTotalBytes": MAX_DROP_MB * 2**20}
    markup = _HTML.format(limits=html.escape(json.dumps(limits), quote=True), caption=html.escape(caption()))
    js = (Path(__file__).with_name("drop_zone.js")).read_text(encoding="utf-8")
    return st.components.v2.component("pathreview_tile_drop", html=markup, css=_CSS, js=js)


def drop_zone(key: str) -> Dropped | None:
    """Show the drop zone; returns the files of a drop that just happened, else None."""
    result = _component()(key=key, on_dropped_change=lambda: None)
    payload = result.dropped
    return None if payload is None else parse(payload)
