"""The overview's array work against the library routines it stands in for, on the real Aperio slide: the
saturation (scikit-image's HSV), the tissue share of every grid tile (a mean over its window of the mask) and the
heat map's tissue outline (scikit-image's inner boundaries)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.color import rgb2hsv
from skimage.segmentation import find_boundaries

from model_training.slides.grid import tile_grid
from model_training.slides.outputs import overlay
from model_training.slides.reader import open_slide
from model_training.slides.tissue import saturation, tissue_fractions, tissue_mask
from real_inputs import SVS



@pytest.fixture(scope="module")
def overview():
    root = os.environ.get("PATHREVIEW_SLIDES")
    if not root or not (Path(root) / SVS).is_file():
        pytest.skip(f"PATHREVIEW_SLIDES is not set to a folder holding {SVS} (../shared/slides)")
    with open_slide(Path(root) / SVS) as s:
        thumb, scale = s.thumbnail(1024)
        mpp, dims = s.mpp, s.dimensions
    return thumb, scale, tissue_mask(thumb, scale * mpp), dims


def test_saturation_is_hsv_saturation(overview):
    thumb = overview[0]
    np.testing.assert_allclose(saturation(thumb), rgb2hsv(thumb)[..., 1], atol=1e-6)
    assert saturation(np.zeros((2, 2, 3), np.uint8)).max() == 0  # black: no hue, no division by zero


@pytest.mark.parametrize("tile0, stride", [(193.0, 96), (193.0, 48), (517.3, 96)])
def test_each_tiles_tissue_share_is_the_mean_of_its_mask_window(overview, tile0, stride):
    _, scale, mask, dims = overview
    full = tile_grid(dims, tile0, stride)  # every cell, the last ones running past the mask's edge
    shares = tissue_fractions(mask, full.xs, full.ys, tile0, scale)
    h, w = mask.shape
    expected = []
    for x, y in zip(full.xs, full.ys):
        c0, r0 = int(x / scale), int(y / scale)
        c1, r1 = max(c0 + 1, int(np.ceil((x + tile0) / scale))), max(r0 + 1, int(np.ceil((y + tile0) / scale)))
        window = mask[max(0, r0):min(h, r1), max(0, c0):min(w, c1)]
        expected.append(window.mean() if window.size else 0.0)
    np.testing.assert_array_equal(shares, expected)
    assert 0 < np.mean(shares) < 1
    kept = tile_grid(dims, tile0, stride, mask, scale, 0.25)
    keep = shares >= 0.25
    assert 0 < kept.n < full.n
    np.testing.assert_array_equal(kept.xs, full.xs[keep])
    np.testing.assert_array_equal(kept.ys, full.ys[keep])
    outside = tissue_fractions(mask, np.array([w * scale * 2]), np.array([0]), tile0, scale)
    assert outside.tolist() == [0.0]  # a window off the mask has no tissue


def test_the_heat_map_outlines_the_tissue_as_scikit_image_does(overview):
    thumb, scale, mask, _ = overview
    empty = pd.DataFrame(columns=["x", "y", "width", "height", "p"])
    out = overlay(thumb, scale, empty, 0.5, mask)
    edge = find_boundaries(mask, mode="inner")
    assert edge.any()
    green = (out == (0, 160, 0)).all(axis=-1)
    np.testing.assert_array_equal(green, edge | ((thumb == (0, 160, 0)).all(axis=-1) & ~edge))
    np.testing.assert_array_equal(out[~edge], thumb[~edge])  # nothing scored: the thumbnail as it was
