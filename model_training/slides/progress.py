"""A batch's progress: slides finished, and tiles scored so far, counted live wherever the slides are scored
(in this process, or on Dask workers that report each batch of tiles as they score it)."""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from tqdm import tqdm

TileReport = Callable[[int], None]  # called with the tiles of the slide being scored done so far
_REPORT: ContextVar[TileReport | None] = ContextVar("tile_report", default=None)


@contextmanager
def reporting_tiles(report: TileReport) -> Iterator[None]:
    """Within this block, a slide scored in this thread reports its tiles to ``report``."""
    token = _REPORT.set(report)
    try:
        yield
    finally:
        _REPORT.reset(token)


def tile_report() -> TileReport | None:
    """Where a slide scored in this thread reports its tiles (None: nowhere)."""
    return _REPORT.get()


class BatchProgress:
    """Finished slides and tiles scored (the finished slides' and those of the slides being scored), on a tqdm
    bar where stderr is a terminal. Thread-safe: a Dask run's reports arrive on the client's event loop."""

    def __init__(self, slides: int, show: bool = True):
        self._lock = threading.Lock()
        self._live: dict[int, int] = {}
        self._done: set[int] = set()
        self._finished_tiles = 0
        self.tiles = 0
        # disable=None: no bar where stderr is not a terminal (logs, CI), so error lines stay one line each
        self.bar = tqdm(total=slides, unit="slide", disable=None if show else True, file=sys.stderr, leave=False)

    def scoring(self, slide: int, tiles: int) -> None:
        """The ``slide``-th slide of the batch has ``tiles`` scored so far (a retried slide starts again)."""
        with self._lock:
            if slide in self._done:  # a report that arrived after the slide's row
                return
            self._live[slide] = tiles
            self._show()

    def finished(self, slide: int, tiles: int) -> None:
        """The ``slide``-th slide is done (scored, skipped or failed) with ``tiles`` scored."""
        with self._lock:
            self._done.add(slide)
            self._live.pop(slide, None)
            self._finished_tiles += tiles
            self.bar.update(1)
            self._show()

    def say(self, line: str) -> None:
        """``line`` on stderr, above the bar (and where there is no bar: a log keeps it too)."""
        with self._lock:
            tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()

    def _show(self) -> None:
        self.tiles = self._finished_tiles + sum(self._live.values())
        self.bar.set_postfix(tiles=f"{self.tiles:,}", refresh=True)
