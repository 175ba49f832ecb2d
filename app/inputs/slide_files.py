"""Slide page data: which slides may be opened, uploads kept on disk for OpenSlide, results shared by sessions.

The server opens slides only from the operator's folder (``PATHREVIEW_SLIDES``) or from this server's upload
folder; a name that resolves outside them (``..``, a symlink) is refused. Scored slides are kept in a small
process-wide cache, so a second reviewer opening the same slide with the same settings does not score it again.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from app.inputs.roots import PathRefused, check, inside
from model_training.data.atomic import atomic_write
from model_training.slides.outputs import encode
from model_training.slides.scoring import Progress

SLIDES_ENV = "PATHREVIEW_SLIDES"
UPLOAD_MB_ENV = "PATHREVIEW_SLIDE_UPLOAD_MB"
DEFAULT_UPLOAD_MB = 500
SLIDE_TYPES = ["svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "dcm", "png", "jpg",
               "jpeg"]
CACHE_SLIDES = 4

_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()
_upload_dir: Path | None = None


class SlideAccessError(ValueError):
    """A slide path the server will not open; the message is for the user."""


def slides_root() -> Path | None:
    """The operator's slide folder, or None when it is unset or missing."""
    value = os.environ.get(SLIDES_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    return root.resolve() if root.is_dir() else None


def upload_limit_mb() -> int:
    """The slide uploader's limit: ``PATHREVIEW_SLIDE_UPLOAD_MB``, never above the server's own upload cap
    (``server.maxUploadSize``), which refuses anything larger before the page sees it."""
    import streamlit as st

    try:
        wanted = max(1, int(os.environ.get(UPLOAD_MB_ENV, DEFAULT_UPLOAD_MB)))
    except ValueError:
        wanted = DEFAULT_UPLOAD_MB
    return min(wanted, int(st.get_option("server.maxUploadSize")))


def list_slides(root: Path) -> list[str]:
    """Slide files under ``root`` (one folder level deep), as paths relative to it, sorted."""
    suffixes = {"." + s for s in SLIDE_TYPES}
    real_root = root.resolve()
    found = []
    for path in sorted(root.glob("*")) + sorted(root.glob("*/*")):
        if path.suffix.lower() in suffixes and path.is_file() and inside(path.resolve(), [real_root]):
            found.append(str(path.relative_to(root)))  # a link that leads out of the folder is not listed
    return found


def resolve_in(root: Path, name: str) -> Path:
    """``root/name`` when it stays inside ``root`` after resolving ``..`` and symlinks; else a refusal."""
    root = root.resolve()
    try:
        path = check(root / name, [root])
    except PathRefused:
        raise SlideAccessError(f"{name}: is outside the slide folder; only slides under that folder can be "
                               "opened") from None
    if not path.is_file():
        raise SlideAccessError(f"{name}: no such slide in {root}")
    return path


def upload_dir() -> Path:
    global _upload_dir
    if _upload_dir is None:
        _upload_dir = Path(tempfile.mkdtemp(prefix="pathreview-slides-"))
    return _upload_dir


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded slide on disk (OpenSlide reads files), named by its content hash and its own name."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name).name)[:120] or "slide"
    path = upload_dir() / f"{hashlib.sha256(data).hexdigest()[:16]}-{safe}"
    if not path.exists():
        atomic_write(path, data)
    return path


_partial: dict = {}
_files: dict = {}


def progress_for(key: tuple, n: int):
    """The scores gathered so far for ``key`` (a page rerun mid-scoring continues from them), shared by the
    sessions that open the same slide with the same settings."""
    with _cache_lock:
        held = _partial.get(key)
        if held is None or len(held.scored) != n:
            held = _partial[key] = Progress.empty(n)
        return held


def cache_key(path: Path, *parts) -> tuple:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, *parts)


def cached(key: tuple):
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    return None


def remember(key: tuple, value) -> None:
    with _cache_lock:
        _partial.pop(key, None)
        _cache[key] = value
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SLIDES:
            gone, _ = _cache.popitem(last=False)
            for k in [k for k in _files if k[0] == gone]:
                del _files[k]


def files(key: tuple, result, name: str) -> dict[str, bytes]:
    """The downloads of a scored slide (tiles CSV, GeoJSON, heat-map PNG), encoded once, not on every rerun."""
    with _cache_lock:
        held = _files.get((key, name))
    if held is None:
        ov = result.overview
        held = encode(result.frame, name, ov.thumb, ov.scale, ov.mask, ov.grid.step0)
        with _cache_lock:
            _files[(key, name)] = held
    return held
