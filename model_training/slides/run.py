"""Score whole slides into files: tissue tiles at the model's resolution → CSV, QuPath GeoJSON, heat map, summary.

Each slide writes ``OUT/<slide>.tiles.csv``, ``.geojson``, ``.heatmap.png`` and ``.summary.json``. A slide
whose summary already records the same model and settings is skipped, so an interrupted run resumes where it
stopped. Batches (one process or Dask, and ``cases.csv``) are ``model_training.slides.batch``'s.
Command: ``python -m model_training.cli.slides``.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from model_training.bundle.contract import TILE, TILE_MPP
from model_training.slides.answer import SlideLevel, answer
from model_training.slides.grid import MIN_TISSUE, STRIDES
from model_training.slides.outputs import write_all
from model_training.slides.reader import open_slide
from model_training.slides.scoring import SlideResult, score_slide
from model_training.slides.tiles_csv import FILES_VERSION
from model_training.slides.tissue import TissueParams


def model_mpp(card: dict) -> float:
    """The resolution (µm/px) the model's tiles were cut at, from its card."""
    return float(card.get("mpp") or TILE_MPP)  # cards older than the `mpp` field: PCam's


@dataclass(frozen=True)
class SlideSettings:
    """How a slide is scored: the grid stride in model pixels, TTA, a resolution given by the user (µm per
    level-0 pixel, overriding the slide's own), the tissue detection, the scoring batch, and how many top
    tiles get a second look with TTA (None: as the card's slide-level answer was fitted)."""

    stride: int = TILE
    tta: bool = False
    mpp: float | None = None
    tissue: TissueParams = field(default_factory=TissueParams)
    min_tissue: float = MIN_TISSUE
    batch: int = 256
    second_look: int | None = None

    def __post_init__(self) -> None:
        if self.stride not in STRIDES:
            raise ValueError(f"stride {self.stride}: choose from {', '.join(map(str, STRIDES))}")

    def looks_again(self, level: SlideLevel | None) -> int:
        """Tiles per slide to score again with TTA."""
        if self.second_look is not None:
            return self.second_look
        return level.second_look if level else 0

    def identity(self, pred) -> dict:
        """What makes two runs on one slide the same run (resume skips a slide only when these match), the
        layout of the files it writes included."""
        level = SlideLevel.from_card(pred.card)
        return {"model_sha256": pred.sha256, "engine": pred.engine.name, "stride": self.stride, "tta": self.tta,
                "mpp_given": self.mpp, "tissue": {**self.tissue.as_dict(), "min_tissue": self.min_tissue},
                "second_look": self.looks_again(level), "slide_level": level.as_dict() if level else None,
                "look_head": pred.look_head.fingerprint() if pred.look_head is not None else None,
                "files": FILES_VERSION}


def already_done(summary_path: Path, wanted: dict, slide_sha256: Callable[[], str]) -> dict | None:
    """The summary at ``summary_path`` when it records a run with the ``wanted`` settings on this very slide file
    (``slide_sha256()`` gives its sha256: another file under the same name, or the slide scanned again, is not
    done); None otherwise, or when the file cannot be read (scoring it names the reason)."""
    try:
        done = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return None
    if done.get("settings") != wanted:
        return None
    try:
        return done if done.get("slide_sha256") == slide_sha256() else None
    except OSError:
        return None


def output_stem(path: Path) -> str:
    """The name a slide's outputs start with."""
    return path.name


def run_slide(pred, path: Path, out: Path, settings: SlideSettings = SlideSettings(), *,
              progress: bool = True) -> tuple[SlideResult, dict]:
    """Score one slide with the Predictor and write its outputs; returns the result and the output paths."""
    result = score_file(pred, path, settings, progress=progress)
    return result, write_outputs(result, path, out)


def score_file(pred, path: Path, settings: SlideSettings = SlideSettings(), *, progress: bool = True,
               on_tiles: Callable[[int], None] | None = None) -> SlideResult:
    """Score one slide with the Predictor: its tiles, summary and slide-level answer, nothing written yet.
    ``progress`` shows a bar of its tiles; ``on_tiles(done)`` is told after each batch (a batch's own bar)."""
    target = model_mpp(pred.card)
    s = settings
    with open_slide(path, s.mpp, target_mpp=target) as slide:
        bar = tqdm(total=0, unit="tile", desc=path.name, disable=not progress, file=sys.stderr, leave=False)

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()
            if on_tiles is not None:
                on_tiles(done)

        t0 = time.perf_counter()
        level = SlideLevel.from_card(pred.card)
        try:
            result = score_slide(slide, lambda t, a: pred.predict(t, tta=a, batch=s.batch * (8 if a else 1)),
                                 target, stride=s.stride, tta=s.tta, params=s.tissue, min_tissue=s.min_tissue,
                                 batch=s.batch, progress=tick, second_look=s.looks_again(level),
                                 look=lambda t: pred.predict(t, batch=s.batch * 8, look=True))
        finally:
            bar.close()
    summary = {**result.summary, "model": pred.card.get("name"), "model_sha256": pred.sha256,
               "settings": s.identity(pred)}
    if level is not None:
        summary["slide_level"] = slide_level_summary(result, level)
    # flagged means one thing in every file: the slide-level answer's flags where there is one
    summary["tiles_flagged"] = (summary["slide_level"]["tiles_flagged"] if level is not None
                                else summary["tiles_above_threshold"])
    summary["timings"]["total_s"] = round(time.perf_counter() - t0, 3)
    result.summary = summary
    return result


def write_outputs(result: SlideResult, path: Path, out: Path) -> dict:
    """Write a scored slide's CSV, GeoJSON, heat map and (last) summary into ``out``; returns their paths."""
    ov = result.overview
    return write_all(out, output_stem(path), result.frame, result.summary["slide"], ov.thumb, ov.scale, ov.mask,
                     result.summary, cell=ov.grid.step0)


def slide_level_summary(result: SlideResult, level: SlideLevel) -> dict:
    """The slide-level answer for a scored slide; adds its ``flagged`` column to the tiles frame."""
    ans = answer(result.frame, level, (result.summary.get("quality") or {}).get("warning"))
    result.frame["flagged"] = ans.flagged
    return {"slide_score": None if ans.slide_score is None else round(ans.slide_score, 6),
            "decision": ans.decision, "withheld": ans.withheld, "threshold": level.threshold,
            "tiles_assessed": ans.tiles_assessed,
            "tiles_flagged": ans.tiles_flagged, "tile_flag_p": ans.flag_p,
            "size_shift": round(ans.size_shift, 4), "parameters": level.as_dict()}
