"""Deep-zoom tiles of the slides pages have open: opaque ids, bounded caches, tiles as JPEG bytes.

A page that opens a slide asks for an id (``issue``): a random token mapped, in a bounded process-wide registry,
to the slide's path and the folder it was allowed from. URLs name slides by that id only; every request looks the
id up and checks again that the file is still inside its folder, so a made-up id, a path or a slide moved out of
the folder gets nothing. ``deepzoom_routes`` serves what this module returns over HTTP.

Tiles come from OpenSlide's ``DeepZoomGenerator``, except the coarse levels (whole level ≤ ``BASE_SIDE`` px):
the generator reads those from the finest slide level that is not coarser, which for a slide without a deep
pyramid means the full-resolution image for every one of a dozen one-tile levels (150 ms each for a 3-megapixel
SVS). They are cut instead from one image of the slide at ``BASE_SIDE`` px, read once per slide, when its id is
issued, in the background.
"""
from __future__ import annotations

import io
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import openslide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from app.inputs.roots import inside

TILE_SIZE, OVERLAP = 254, 1
JPEG_QUALITY = 80
BASE_SIDE = 2048  # coarse levels up to this side are cut from one image read per slide
MAX_ISSUED = 512  # ids kept; the oldest unused is forgotten first (its viewer then gets 404s and reloads)
MAX_OPEN = 8  # slides held open with their generators
TILE_CACHE_BYTES = 96 * 2**20
ID_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")


@dataclass
class Issued:
    """What an id stands for: a slide file, the folder it was allowed from, overlay images by name."""

    path: Path
    root: Path
    overlays: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Opened:
    """One open slide: its generator and the coarse levels cut from one image of the whole slide."""

    key: tuple  # (path, size, mtime): a file replaced in place is a new slide
    slide: openslide.AbstractSlide
    dz: DeepZoomGenerator
    base_level: int  # the finest deep-zoom level no larger than BASE_SIDE
    lock: threading.Lock = field(default_factory=threading.Lock)
    levels: dict[int, Image.Image] = field(default_factory=dict)


_lock = threading.Lock()
_issued: OrderedDict[str, Issued] = OrderedDict()
_opened: OrderedDict[tuple, Opened] = OrderedDict()
_tiles: OrderedDict[tuple, bytes] = OrderedDict()
_tile_bytes = 0


class NotServed(LookupError):
    """Anything the tile server does not serve: the route answers 404 and nothing else."""


def issue(path: Path, root: Path) -> str:
    """A new opaque id for ``path``, which must lie inside ``root`` (both resolved); warms the coarse levels."""
    path, root = Path(path).resolve(), Path(root).resolve()
    if not inside(path, [root]) or not path.is_file():
        raise NotServed(f"{path.name} is not inside the folder it was offered from")
    sid = secrets.token_urlsafe(24)
    with _lock:
        _issued[sid] = Issued(path, root)
        while len(_issued) > MAX_ISSUED:
            _issued.popitem(last=False)
    threading.Thread(target=_warm, args=(sid,), daemon=True, name="deepzoom-warm").start()
    return sid


def _warm(sid: str) -> None:
    try:
        opened = _open(sid)
        _level_image(opened, opened.base_level)
    except Exception:  # a slide that cannot be read is reported by the page, and its tiles by 404s
        pass


def known(sid: str | None) -> bool:
    """Whether ``sid`` is an id this process issued and still serves."""
    return bool(sid) and _issued_for(sid) is not None


def attach(sid: str, name: str, png: bytes) -> None:
    """Serve ``png`` as the overlay ``name`` of the slide ``sid`` (heat map, tissue outline)."""
    entry = _issued_for(sid)
    if entry is None:
        raise NotServed("unknown id")
    entry.overlays[name] = png


def _issued_for(sid: str) -> Issued | None:
    if not isinstance(sid, str) or not ID_RE.fullmatch(sid):
        return None
    with _lock:
        entry = _issued.get(sid)
        if entry is not None:
            _issued.move_to_end(sid)
    return entry


def _path(sid: str) -> Path:
    """The slide of ``sid``, checked again on every request: still a file, still inside its folder."""
    entry = _issued_for(sid)
    if entry is None:
        raise NotServed("unknown id")
    real = entry.path.resolve()
    if not inside(real, [entry.root]) or not real.is_file():
        raise NotServed("no longer inside its folder")
    return real


def _open(sid: str) -> Opened:
    path = _path(sid)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        opened = _opened.get(key)
        if opened is not None:
            _opened.move_to_end(key)
            return opened
    try:
        slide = openslide.open_slide(str(path))
    except (openslide.OpenSlideError, OSError, ValueError) as exc:
        raise NotServed(str(exc)) from None
    dz = DeepZoomGenerator(slide, TILE_SIZE, OVERLAP, limit_bounds=False)
    base = max([lv for lv, (w, h) in enumerate(dz.level_dimensions) if max(w, h) <= BASE_SIDE], default=-1)
    opened = Opened(key, slide, dz, base)
    with _lock:
        opened = _opened.setdefault(key, opened)
        _opened.move_to_end(key)
        while len(_opened) > MAX_OPEN:  # an evicted handle closes when the last request using it lets go
            _opened.popitem(last=False)
    return opened


def _level_image(opened: Opened, level: int) -> Image.Image:
    """The whole deep-zoom ``level`` (at most the base level) as one image, shrunk from the base image."""
    with opened.lock:
        img = opened.levels.get(level)
        if img is not None:
            return img
        base = opened.levels.get(opened.base_level)
        if base is None:
            size = opened.dz.level_dimensions[opened.base_level]
            base = opened.slide.get_thumbnail(size).convert("RGB")
            if base.size != size:
                base = base.resize(size, Image.Resampling.LANCZOS)
            opened.levels[opened.base_level] = base
        if level != opened.base_level:
            opened.levels[level] = base.resize(opened.dz.level_dimensions[level], Image.Resampling.LANCZOS)
        return opened.levels[level]


def dzi(sid: str) -> str:
    """The DZI descriptor (XML) of the slide ``sid``."""
    return _open(sid).dz.get_dzi("jpeg")


def info(sid: str) -> dict:
    """Size and tiling of the slide ``sid``, as OpenSeadragon's inline DZI tile source takes them."""
    dz = _open(sid).dz
    w, h = dz.level_dimensions[-1]
    return {"width": w, "height": h, "tileSize": TILE_SIZE, "overlap": OVERLAP, "levels": dz.level_count}


def tile(sid: str, level: int, col: int, row: int) -> bytes:
    """The JPEG of one deep-zoom tile; ``NotServed`` for an unknown id or a tile outside the pyramid."""
    opened = _open(sid)
    dz = opened.dz
    if not (0 <= level < dz.level_count):
        raise NotServed("no such level")
    cols, rows = dz.level_tiles[level]
    if not (0 <= col < cols and 0 <= row < rows):
        raise NotServed("no such tile")
    key = (opened.key, level, col, row)
    with _lock:
        held = _tiles.get(key)
        if held is not None:
            _tiles.move_to_end(key)
            return held
    if level <= opened.base_level:
        whole = _level_image(opened, level)
        x0, y0 = col * TILE_SIZE - (OVERLAP if col else 0), row * TILE_SIZE - (OVERLAP if row else 0)
        x1 = min(whole.width, (col + 1) * TILE_SIZE + OVERLAP)
        y1 = min(whole.height, (row + 1) * TILE_SIZE + OVERLAP)
        img = whole.crop((x0, y0, x1, y1))
    else:
        try:
            img = dz.get_tile(level, (col, row))
        except openslide.OpenSlideError as exc:
            raise NotServed(str(exc)) from None
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    data = buf.getvalue()
    _keep(key, data)
    return data


def _keep(key: tuple, data: bytes) -> None:
    global _tile_bytes
    with _lock:
        if key in _tiles:
            return
        _tiles[key] = data
        _tile_bytes += len(data)
        while _tile_bytes > TILE_CACHE_BYTES and _tiles:
            _, gone = _tiles.popitem(last=False)
            _tile_bytes -= len(gone)


def overlay(sid: str, name: str) -> bytes:
    """An overlay image the page attached to ``sid``; ``NotServed`` when there is none by that name."""
    _path(sid)
    entry = _issued_for(sid)
    png = entry.overlays.get(name) if entry is not None else None
    if png is None:
        raise NotServed("no such overlay")
    return png


def clear_tiles() -> None:
    """Forget every cached tile (benchmarks measure a cold cache)."""
    global _tile_bytes
    with _lock:
        _tiles.clear()
        _tile_bytes = 0
