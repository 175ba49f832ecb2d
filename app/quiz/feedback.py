"""What a student sees of a tile, computed once per process and shared by every session.

The tile image is the same for the whole class; the model's Grad-CAM map of it is computed through the shared
Predictor under the inference lock the first time any student has answered that tile, and cached by (model
sha256, source root, tile id): 30 students on the same tile cost one pass. (P(tumour) is not computed here: the
page shows the score stored with the quiz, as the class view does.) Images are kept as PNG bytes, so no
session re-encodes them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Callable, Hashable, TypeVar

from app.display.imaging import enlarge, outline_centre, png_bytes
from app.quiz import sources
from app.runtime import state
from model_training.inference.explain import overlay

T = TypeVar("T")
SCALE = 3  # 288 px on screen: two images side by side fit a laptop, pixels stay visible as blocks
CAM_ALPHA = 0.45
EXPLANATION = ("Grad-CAM colours the parts of the tile that pushed the model's tumour score up (red most, blue "
               "least). It shows where the model looked, not why, and not whether it was right; the map is "
               "coarse, and it can light up tissue outside the centre 32×32 that the label is about.")


class OnceCache:
    """A small thread-safe LRU in which concurrent requests for a missing key wait for a single computation."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Future] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            fut = self._items.get(key)
            owner = fut is None
            if owner:
                fut = self._items[key] = Future()
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(key)
        if owner:
            try:
                fut.set_result(compute())
            except BaseException as exc:  # the waiters get the error; the next request tries again
                fut.set_exception(exc)
                with self._lock:
                    if self._items.get(key) is fut:
                        del self._items[key]
        return fut.result()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_tiles = OnceCache(512)
_views = OnceCache(512)


def tile_png(root: str, tile_id: str) -> bytes:
    """The tile enlarged ×3 with the centre 32×32 outlined, as PNG bytes (shown before and after answering)."""
    return _tiles.get((root, tile_id), lambda: png_bytes(outline_centre(enlarge(sources.read(root, tile_id),
                                                                                SCALE))))


def cam_png(pred, root: str, tile_id: str) -> bytes:
    """The model's Grad-CAM map over a tile, as PNG bytes (only ever called once the student's answer is
    stored)."""
    def compute() -> bytes:
        tile = sources.read(root, tile_id)
        cam = state.explain_all(pred, tile)["gradcam"]
        return png_bytes(outline_centre(enlarge(overlay(tile, cam, CAM_ALPHA), SCALE)))

    return _views.get((pred.sha256, root, tile_id), compute)


def cached_views() -> int:
    """How many model views are cached (tests)."""
    return len(_views._items)


def clear() -> None:
    _tiles.clear()
    _views.clear()

