"""Labelled case slides: a blob of tissue on glass made of real validation patches, half of the slides with
one metastasis of 1–8 adjacent tumour patches, so slide-level answers can be measured on slides whose truth
is known.

Each slide is a pyramidal TIFF at the patch resolution whose tissue is laid on the model's tile grid, so every
scored tile is one known patch. Patches are drawn from one half of the validation split (``half`` 0 or 1,
split by a hash of the patch id), so a slide-level method can be fitted on one half's cases and measured on
the other's. Patches repeat across slides (the valid split holds 1,481 normal patches), each time in a random
one of the 8 dihedral orientations; within a slide no patch repeats.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model_training.bundle.contract import TILE, TILE_MPP
from model_training.data.sources import TileSource, open_source
from model_training.data.spreadsheet import safe_frame
from model_training.slides.labelled import write_pyramid
from model_training.slides.tiles_csv import read_tiles

GLASS = 238  # the grey of empty glass on a bright-field scan
MAX_METASTASIS = 8


def half_of(tile_id: str) -> int:
    """Which half of the validation split a patch belongs to (stable across runs and machines)."""
    return hashlib.sha256(tile_id.encode()).digest()[0] & 1


def blob(rng: np.random.Generator, rows: int, cols: int, cells: int) -> np.ndarray:
    """A connected boolean blob of about ``cells`` grid cells, grown from the centre (a tissue section)."""
    mask = np.zeros((rows, cols), bool)
    mask[rows // 2, cols // 2] = True
    while mask.sum() < cells:
        r, c = np.argwhere(mask)[rng.integers(mask.sum())]
        dr, dc = ((-1, 0), (1, 0), (0, -1), (0, 1))[rng.integers(4)]
        r, c = r + dr, c + dc
        if 1 <= r < rows - 1 and 1 <= c < cols - 1:  # a border of glass all round
            mask[r, c] = True
    return mask


def metastasis(rng: np.random.Generator, tissue: np.ndarray, size: int) -> np.ndarray:
    """``size`` edge-adjacent cells of ``tissue``: one metastasis."""
    cells = np.argwhere(tissue)
    out = np.zeros_like(tissue)
    out[tuple(cells[rng.integers(len(cells))])] = True
    while out.sum() < size:
        r, c = np.argwhere(out)[rng.integers(out.sum())]
        dr, dc = ((-1, 0), (1, 0), (0, -1), (0, 1))[rng.integers(4)]
        if 0 <= r + dr < tissue.shape[0] and 0 <= c + dc < tissue.shape[1] and tissue[r + dr, c + dc]:
            out[r + dr, c + dc] = True
    return out


def glass(rng: np.random.Generator, side: int) -> np.ndarray:
    """An empty slide of ``side`` × ``side`` grid cells: the grey of glass with a little noise, as scanned."""
    img = np.full((side * TILE, side * TILE, 3), GLASS, np.uint8)
    return np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)


def dihedral(tile: np.ndarray, k: int) -> np.ndarray:
    """``tile`` turned by the ``k``-th of the 8 dihedral views (rotations by 90°, then the same mirrored)."""
    t = np.rot90(tile, k % 4)
    return np.ascontiguousarray(t[:, ::-1] if k >= 4 else t)


def build_case(tiles: np.ndarray, labels: np.ndarray, ids: list[str], out: Path, rng: np.random.Generator,
               positive: bool, cells: int = 64, side: int = 12) -> dict:
    """Write one case slide to ``out`` (its per-tile labels beside it as ``.csv``); returns its manifest row."""
    tissue = blob(rng, side, side, cells)
    tumour = metastasis(rng, tissue, int(rng.integers(1, MAX_METASTASIS + 1))) if positive else np.zeros_like(tissue)
    neg, pos = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    pick_neg = iter(rng.choice(neg, int((tissue & ~tumour).sum()), replace=False))
    pick_pos = iter(rng.choice(pos, int(tumour.sum()), replace=False))
    img = glass(rng, side)
    rows = []
    for r, c in np.argwhere(tissue):
        i = next(pick_pos) if tumour[r, c] else next(pick_neg)
        img[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = dihedral(tiles[i], int(rng.integers(8)))
        rows.append({"x": c * TILE, "y": r * TILE, "width": TILE, "height": TILE, "id": ids[i],
                     "label": int(tumour[r, c])})
    write_pyramid(img, out, TILE_MPP, levels=2)
    safe_frame(pd.DataFrame(rows)).to_csv(out.with_suffix(".csv"), index=False)
    return {"slide": out.name, "path": str(out), "truth": int(positive), "tumour_tiles": int(tumour.sum()),
            "tissue_tiles": int(tissue.sum())}


def load_half(data: Path, half: int, source: TileSource | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The validation patches of one half (see ``half_of``), decoded."""
    src = source or open_source(data, "valid")
    keep = [i for i, tid in enumerate(src.ids) if half_of(tid) == half]
    return src.subset(keep).load_all()


def build_case_set(data: Path, out: Path, n: int, half: int, seed: int = 0, cells: int = 64) -> pd.DataFrame:
    """``n`` case slides (the first half negative, the rest with one metastasis) in ``out``, and
    ``out/manifest.csv`` (slide, path, truth, tumour_tiles, tissue_tiles)."""
    tiles, labels, ids = load_half(data, half)
    rng = np.random.default_rng([seed, half])
    out.mkdir(parents=True, exist_ok=True)
    rows = [build_case(tiles, labels, ids, out / f"case-h{half}-{k:03d}.tiff", rng, positive=k >= n // 2,
                       cells=cells) for k in range(n)]
    manifest = pd.DataFrame(rows)
    safe_frame(manifest).to_csv(out / "manifest.csv", index=False)
    return manifest


@dataclass
class Case:
    """One scored case slide: its tiles (with ``label`` per tile where the slide's labels are known)."""

    slide: str
    truth: int
    tiles: pd.DataFrame

    def keeps_a_flag(self, flagged: np.ndarray) -> bool:
        """Whether any of the slide's tumour tiles is among ``flagged`` (a mask over its tiles)."""
        return bool((flagged & (self.tiles["label"].to_numpy() == 1)).any())


def load_cases(manifest: Path, out_dir: Path) -> list[Case]:
    """Cases of ``manifest`` (from ``build_case_set``) whose tiles the slide pipeline wrote to ``out_dir``."""
    cases = []
    for row in pd.read_csv(manifest).to_dict("records"):
        tiles = read_tiles(Path(out_dir) / f"{row['slide']}.tiles.csv")
        labels = pd.read_csv(Path(row["path"]).with_suffix(".csv"))[["x", "y", "label"]]
        tiles = tiles.merge(labels, on=["x", "y"], how="left").fillna({"label": 0})
        cases.append(Case(row["slide"], int(row["truth"]), tiles))
    return cases
