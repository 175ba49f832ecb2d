"""A scored slide's tiles as its files say them: ``decision`` is the slide's call on each tile.

In memory, a scored slide's ``decision`` is each tile's call at the tile threshold, chosen for tile
sensitivity: on a normal slide of fifty tiles it calls about twenty of them tumour. Once the slide-level answer
has flagged its few tiles (a ``flagged`` column), the files a pathologist or QuPath reads (tiles CSV, GeoJSON)
call ``tumour`` exactly the flagged tiles, so a red tile means the same in QuPath as on the Slide page; the
tile threshold's call stays beside it as ``tile_call``. A slide without a slide-level answer keeps the tile
threshold's call. ``read_tiles`` turns a written CSV back into the in-memory frame.
"""
from __future__ import annotations

from typing import IO, TYPE_CHECKING

import numpy as np

from model_training.inference.gate import NOT_ASSESSED

if TYPE_CHECKING:  # the app's store imports this module at start; pandas arrives with the first table
    from pathlib import Path

    import pandas as pd

TILE_CALL = "tile_call"
# The files' layout, recorded with a run's settings so that a re-run rewrites outputs of an older layout rather
# than skipping them (1: decision at the tile threshold; 2: decision is the slide's call, tile_call beside it).
FILES_VERSION = 2


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """The tiles frame as the files give it: ``decision`` from the slide's flags, the tile threshold's call
    in ``tile_call`` (the frame unchanged where no slide-level answer flagged tiles)."""
    if "flagged" not in frame.columns:
        return frame
    called = frame["decision"].astype(str).to_numpy()
    decision = np.where(called == NOT_ASSESSED, NOT_ASSESSED,
                        np.where(frame["flagged"].to_numpy(bool), "tumour", "normal"))
    return frame.assign(decision=decision, **{TILE_CALL: called})


def read_tiles(source: str | Path | IO) -> pd.DataFrame:
    """A tiles CSV read back as the pipeline holds it: ``decision`` at the tile threshold again (from
    ``tile_call``), the slide's flags in ``flagged``."""
    import pandas as pd

    frame = pd.read_csv(source)
    if TILE_CALL in frame.columns:
        frame = frame.assign(decision=frame[TILE_CALL]).drop(columns=TILE_CALL)
    return frame
