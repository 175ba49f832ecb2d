"""Tiles made worse on purpose, to measure the quality gate: out of focus, and marked with pen.

Built at run time from real tiles (tests, the gate's figures, benchmarks); never stored.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model_training.bundle.contract import TILE

# Marker-pen inks as they show on a scanned slide (blue, green, black); ink darkens what lies beneath it.
PEN_INKS = ((30, 60, 170), (20, 130, 70), (25, 25, 25))


def blurred(tiles: np.ndarray, radius: float = 2.5) -> np.ndarray:
    """Each uint8 tile under a Gaussian blur of ``radius`` pixels (an out-of-focus scan)."""
    return np.stack([np.asarray(Image.fromarray(t).filter(ImageFilter.GaussianBlur(radius))) for t in tiles])


def pen_marked(tiles: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each uint8 tile crossed by one or two marker strokes (4-11 px wide) of one ink, multiplied onto it."""
    rng = np.random.default_rng(seed)
    out = []
    for tile in tiles:
        ink = PEN_INKS[rng.integers(len(PEN_INKS))]
        layer = Image.new("RGB", (TILE, TILE), (255, 255, 255))
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(1, 3))):
            points = [tuple(rng.integers(-20, TILE + 20, 2).tolist()) for _ in range(3)]
            draw.line(points, fill=ink, width=int(rng.integers(4, 12)))
        layer = np.asarray(layer.filter(ImageFilter.GaussianBlur(1)), np.float32)
        out.append((np.asarray(tile, np.float32) * layer / 255.0).astype(np.uint8))
    return np.stack(out)
