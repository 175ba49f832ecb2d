"""Read regions of a tiled TIFF pyramid (generic TIFF, Aperio SVS) with tifffile and imagecodecs.

OpenSlide composites every region it reads through premultiplied ARGB and hands it back as RGBA; for the
pyramids tifffile decodes itself, decoding the level's tiles and copying them into place takes about a
third of that CPU (``docs/slides.md``), and reading is most of what a slide costs besides the model. Any
other file (other vendors, strips, planar or 16-bit samples, huge tiles, a level without its own tiled page)
stays with OpenSlide: ``open_levels`` returns None for it.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile

# OpenSlide vendors whose levels are plain tiled TIFF pages; others (Philips, Ventana, NDPI, ...) carry
# overlaps, sparse tiles or restart markers that OpenSlide knows how to read.
VENDORS = ("generic-tiff", "aperio")
COMPRESSIONS = {1, 5, 7, 8, 32946}  # none, LZW, JPEG, deflate (both tags)
# A tile is decoded whole: beyond this side, a small file could decode into gigabytes for one read.
MAX_TILE_SIDE = 4096
# Decoded tiles kept: the blocks a slide is read in share their edge tiles with the next block.
CACHE_BYTES = 64 * 2 ** 20
WHITE = 255


def _usable(page) -> bool:
    """A page this module decodes exactly as OpenSlide would: 8-bit RGB, tiled, one plane."""
    photometric = int(page.photometric)
    return (page.is_tiled and page.imagedepth == 1 and page.bitspersample == 8 and page.samplesperpixel == 3
            and int(page.planarconfig) == 1 and int(page.compression) in COMPRESSIONS
            and (photometric == 2 or (photometric == 6 and int(page.compression) == 7))  # RGB, or YCbCr JPEG
            and max(page.tilewidth, page.tilelength) <= MAX_TILE_SIDE)


class TiffLevels:
    """The tiled pages of one TIFF that are a slide's pyramid levels, read region by region (thread-safe)."""

    def __init__(self, tif: tifffile.TiffFile, pages: list):
        self._tif, self._pages = tif, pages
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cached = 0

    def close(self) -> None:
        self._tif.close()

    def read(self, level: int, x: int, y: int, w: int, h: int, threads: int = 1) -> np.ndarray:
        """Level pixels (x, y, w, h) of ``level`` as uint8 RGB (h, w, 3); white outside the image. ``threads`` > 1
        decodes the tiles side by side (a whole level for an overview, with nothing else to run beside it)."""
        page = self._pages[level]
        height, width = page.shape[:2]
        tw, th = page.tilewidth, page.tilelength
        across = math.ceil(width / tw)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        inside = (x0, y0, x1, y1) == (x, y, x + w, y + h)
        # a region inside the image is covered by its tiles: painting it white first cost a pass over every block
        out = np.empty((h, w, 3), np.uint8) if inside else np.full((h, w, 3), WHITE, np.uint8)
        cells = [(ty, tx) for ty in range(y0 // th, math.ceil(y1 / th) if y1 > y0 else 0)
                 for tx in range(x0 // tw, math.ceil(x1 / tw) if x1 > x0 else 0)]
        for (ty, tx), tile in zip(cells, self._decoded(level, [ty * across + tx for ty, tx in cells], threads)):
            # the part of this tile inside the region, in image pixels
            ix0, iy0 = max(x0, tx * tw), max(y0, ty * th)
            ix1, iy1 = min(x1, (tx + 1) * tw), min(y1, (ty + 1) * th)
            part = out[iy0 - y:iy1 - y, ix0 - x:ix1 - x]
            if tile is None:
                part[...] = WHITE  # a tile the file leaves out: glass, as OpenSlide reads it
            else:
                part[...] = tile[iy0 - ty * th:iy1 - ty * th, ix0 - tx * tw:ix1 - tx * tw]
        return out

    def _decoded(self, level: int, indices: list[int], threads: int) -> Iterator[np.ndarray | None]:
        """The tiles ``indices`` of ``level`` in order, decoded on ``threads``: the caller copies each into place
        while later ones decode (a tile decoded ahead of its turn waits, like the others, in the tile cache)."""
        if threads > 1 and len(indices) > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="tiff-decode") as pool:
                yield from pool.map(lambda i: self._tile(level, i), indices)
        else:
            for i in indices:
                yield self._tile(level, i)

    def _tile(self, level: int, index: int) -> np.ndarray | None:
        key = (level, index)
        page = self._pages[level]
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            if not offset or not count:
                return None
            fh = self._tif.filehandle
            fh.seek(offset)
            data = fh.read(count)
        # decoding (imagecodecs, without the GIL) runs outside the lock, beside the model
        tile, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        tile = tile.reshape(page.tilelength, page.tilewidth, 3)
        with self._lock:
            self._cache[key] = tile
            self._cached += tile.nbytes
            while self._cached > CACHE_BYTES and len(self._cache) > 1:
                self._cached -= self._cache.popitem(last=False)[1].nbytes
        return tile


def open_levels(path: Path, vendor: str, sizes: list[tuple[int, int]]) -> TiffLevels | None:
    """The tiled TIFF pages that are the levels of ``sizes`` ((width, height) per OpenSlide level), or None
    when the file is not a pyramid this module reads exactly (OpenSlide then reads it)."""
    if vendor not in VENDORS:
        return None
    try:
        tif = tifffile.TiffFile(path)
    except Exception:  # noqa: BLE001 - whatever tifffile cannot parse, OpenSlide reads (or says why not)
        return None
    try:
        tiled = [p for p in tif.pages if p.is_tiled]
        matches = [[p for p in tiled if tuple(p.shape[1::-1]) == tuple(size)] for size in sizes]
        if all(len(m) == 1 and _usable(m[0]) for m in matches):
            return TiffLevels(tif, [m[0] for m in matches])
    except Exception:  # noqa: BLE001 - a damaged directory: OpenSlide's reading reports it
        pass
    tif.close()
    return None
