"""Cut the tiles of a grid out of a slide, block by block, in a background thread.

Reading a block of neighbouring tiles in one call (and resampling it once) is much faster than one read per
tile; a bounded queue keeps memory flat whatever the slide size while the model scores the previous batch.
"""
from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import Iterator

import numpy as np

from model_training.bundle.contract import TILE
from model_training.slides.grid import Grid
from model_training.slides.reader import Slide

BLOCK = 8  # grid cells per block side: an 8×8-cell block is ~800×800 model pixels at stride 96
_DONE = object()


def _blocks(grid: Grid) -> list[np.ndarray]:
    """Indices of the grid's tiles grouped by block, blocks in row-major order."""
    rows, cols = grid.cells()
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (r, c) in enumerate(zip(rows, cols)):
        groups[(r // BLOCK, c // BLOCK)].append(i)
    return [np.array(groups[k]) for k in sorted(groups)]


def read_block(slide: Slide, grid: Grid, idx: np.ndarray, target_mpp: float) -> np.ndarray:
    """The tiles ``idx`` of ``grid`` as uint8 (len(idx), 96, 96, 3), from one read of their bounding box."""
    xs, ys = grid.xs[idx], grid.ys[idx]
    x0, y0 = int(xs.min()), int(ys.min())
    w0 = int(np.ceil(xs.max() - x0 + grid.tile0))
    h0 = int(np.ceil(ys.max() - y0 + grid.tile0))
    scale = slide.scale_for(target_mpp)
    out_w, out_h = max(TILE, round(w0 / scale)), max(TILE, round(h0 / scale))
    block = slide.read_scaled(x0, y0, w0, h0, target_mpp, out=(out_w, out_h))
    tiles = np.empty((len(idx), TILE, TILE, 3), np.uint8)
    for k, (x, y) in enumerate(zip(xs, ys)):
        c = min(int(round((x - x0) / scale)), out_w - TILE)
        r = min(int(round((y - y0) / scale)), out_h - TILE)
        tiles[k] = block[r:r + TILE, c:c + TILE]
    return tiles


def iter_tile_batches(slide: Slide, grid: Grid, target_mpp: float, batch: int = 256,
                      skip: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(grid indices, uint8 tiles) batches of at most ``batch``; reading runs one block ahead in a thread.

    ``skip`` is a boolean mask of tiles already scored (a resumed run). A read error is re-raised here.
    """
    blocks = [b for b in _blocks(grid) if skip is None or not skip[b].all()]
    q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        try:
            for idx in blocks:
                if stop.is_set():
                    return
                if skip is not None:
                    idx = idx[~skip[idx]]
                q.put((idx, read_block(slide, grid, idx, target_mpp)))
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    thread = threading.Thread(target=produce, name="slide-reader", daemon=True)
    thread.start()
    pend_i: list[np.ndarray] = []
    pend_t: list[np.ndarray] = []
    n = 0
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            idx, tiles = item
            pend_i.append(idx)
            pend_t.append(tiles)
            n += len(idx)
            while n >= batch:
                i_all, t_all = np.concatenate(pend_i), np.concatenate(pend_t)
                yield i_all[:batch], t_all[:batch]
                pend_i, pend_t, n = [i_all[batch:]], [t_all[batch:]], len(i_all) - batch
        if n:
            yield np.concatenate(pend_i), np.concatenate(pend_t)
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
