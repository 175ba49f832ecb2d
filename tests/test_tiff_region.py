"""Slide levels read with tifffile: the same pixels as OpenSlide, OpenSlide for what tifffile is not given, and a
damaged tile named with its slide and place.

Real inputs: the Aperio slide in $PATHREVIEW_SLIDES, and pyramids written here from real validation patches in
the compressions scanners and converters use.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile

from model_training.data.sources import open_source
from model_training.data.subsets import stratified_subset
from model_training.slides.labelled import mosaic, write_pyramid
from model_training.slides.reader import READ_BLOCK, SlideError, _on_white, open_slide
from model_training.slides.tiff_region import MAX_TILE_SIDE
from real_inputs import SVS



@pytest.fixture(scope="module")
def tissue(data_root) -> np.ndarray:
    """A 12×9-patch mosaic of real validation patches (1152×864 RGB)."""
    tiles, _, _ = stratified_subset(open_source(data_root, "valid"), 12 * 9, seed=5).load_all()
    return mosaic(tiles, 12)


@pytest.fixture(scope="module")
def pyramids(tissue, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pyramids")
    out = {c: write_pyramid(tissue, folder / f"{c}.tiff", 0.5, compression=c) for c in ("zlib", "jpeg", "lzw")}
    root = os.environ.get("PATHREVIEW_SLIDES")
    if root and (Path(root) / SVS).is_file():
        out["aperio"] = Path(root) / SVS
    return out


def _openslide(slide, x0: int, y0: int, level, w: int, h: int) -> np.ndarray:
    return _on_white(slide._h.read_region((x0, y0), level.index, (w, h)))


@pytest.mark.parametrize("kind", ["zlib", "jpeg", "lzw", "aperio"])
def test_levels_read_as_openslide_reads_them_pixel_for_pixel(pyramids, kind):
    if kind not in pyramids:
        pytest.skip(f"PATHREVIEW_SLIDES does not hold {SVS}")
    rng = np.random.default_rng(0)
    with open_slide(pyramids[kind], 0.5) as slide:
        assert slide._tiff is not None, f"{kind}: tifffile should read this file's levels"
        for level in slide.levels:
            lw, lh = level.size
            # inside, across tile seams, past the right and bottom edges, and starting left of / above the image
            boxes = [(0, 0, lw, lh), (-37, -11, 300, 200), (lw - 50, lh - 40, 170, 90)]
            boxes += [(int(rng.integers(0, lw)), int(rng.integers(0, lh)), int(rng.integers(1, 600)),
                       int(rng.integers(1, 600))) for _ in range(12)]
            for x, y, w, h in boxes:
                x0, y0 = round(x * level.downsample), round(y * level.downsample)
                got = slide.read(x0, y0, round(w * level.downsample), round(h * level.downsample), level)
                want = _openslide(slide, x0, y0, level, got.shape[1], got.shape[0])
                assert got.shape == (h, w, 3)
                np.testing.assert_array_equal(got, want, err_msg=f"{kind} level {level.index} box {x, y, w, h}")
        thumb, _ = slide.thumbnail(300)  # OpenSlide's own thumbnail, read through tifffile
        np.testing.assert_array_equal(thumb, _on_white(slide._h.get_thumbnail(thumb.shape[1::-1])))


def test_the_tissue_read_back_is_the_tissue_written(pyramids, tissue):
    with open_slide(pyramids["zlib"], 0.5) as slide:
        np.testing.assert_array_equal(slide.read(0, 0, tissue.shape[1], tissue.shape[0], slide.levels[0]), tissue)


def test_reads_from_several_threads_agree_with_one(pyramids):
    with open_slide(pyramids["jpeg"], 0.5) as slide:
        level = slide.levels[0]
        boxes = [(x, y, 333, 250) for x in range(0, 1100, 157) for y in range(0, 800, 201)]
        alone = [slide.read(*b, level) for b in boxes]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda b: slide.read(*b, level), boxes))
        # one region's tiles decoded on several threads (as an overview is), inside and across the edges
        lw, lh = level.size
        for x, y, w, h in [(0, 0, lw, lh), (-37, -11, lw, 300), (lw - 300, lh - 200, 500, 400)]:
            np.testing.assert_array_equal(slide._tiff.read(level.index, x, y, w, h, threads=4),
                                          slide._tiff.read(level.index, x, y, w, h))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)


def test_files_it_cannot_read_exactly_stay_with_openslide(tissue, tmp_path):
    # a tile larger than MAX_TILE_SIDE is decoded whole on every read: a small file could decode into gigabytes
    side = MAX_TILE_SIDE + 256
    big = np.full((side, side, 3), 240, np.uint8)
    big[:tissue.shape[0], :tissue.shape[1]] = tissue
    huge = tmp_path / "huge-tiles.tiff"
    tifffile.imwrite(huge, big, tile=(side, side), photometric="rgb", compression="zlib",
                     resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    # four samples a pixel (RGBA): OpenSlide blends the alpha; this module reads RGB only
    rgba = tmp_path / "rgba.tiff"
    tifffile.imwrite(rgba, np.dstack([tissue, np.full(tissue.shape[:2], 255, np.uint8)]), tile=(256, 256),
                     photometric="rgb", extrasamples=[2], compression="zlib")
    for path in (huge, rgba):
        with open_slide(path, 0.5) as slide:
            assert slide._tiff is None, path.name
            np.testing.assert_array_equal(slide.read(96, 96, 200, 100, slide.levels[0]),
                                          tissue[96:196, 96:296], err_msg=path.name)


def test_a_damaged_tile_is_named_with_its_slide_and_place_and_the_rest_reads(tissue, tmp_path):
    path = write_pyramid(tissue, tmp_path / "damaged.tiff", 0.5, levels=1, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offset, count = page.dataoffsets[6], page.databytecounts[6]  # row 1, column 1: 5 tiles of 256 px a row
    raw = bytearray(path.read_bytes())
    raw[offset:offset + count] = os.urandom(count)
    path.write_bytes(bytes(raw))
    with open_slide(path, 0.5) as slide:
        assert slide._tiff is not None
        with pytest.raises(SlideError, match=r"^damaged.tiff: cannot be read at x=300, y=300 \(.+\)$"):
            slide.read(300, 300, 100, 100, slide.levels[0])
        np.testing.assert_array_equal(slide.read(0, 0, 200, 200, slide.levels[0]), tissue[:200, :200])


def test_a_level_too_large_to_read_at_once_gives_the_overview_openslide_gives(tissue, tmp_path):
    # one level over READ_BLOCK² pixels: its overview is read block by block, here through tifffile
    reps = (5, 4)
    flat = write_pyramid(np.tile(tissue, (reps[1], reps[0], 1)), tmp_path / "flat.tiff", 0.5, levels=1)
    with open_slide(flat, 0.5) as slide:
        assert slide._tiff is not None and slide.levels[0].size[0] * slide.levels[0].size[1] > READ_BLOCK ** 2
        thumb, _ = slide.thumbnail(512)
        tiff, slide._tiff = slide._tiff, None  # the same slide, every pixel read by OpenSlide
        try:
            np.testing.assert_array_equal(thumb, slide.thumbnail(512)[0])
        finally:
            slide._tiff = tiff


def test_tiles_a_file_leaves_out_read_as_glass_as_openslide_reads_them(tissue, tmp_path):
    """Scanners leave out tiles of empty glass (offset and byte count 0); the region around them is the tissue
    and white where they are, and the regions wholly inside the image are filled without a white pass first."""
    h, w = tissue.shape[:2]
    left_out = {(0, 1), (2, 3)}  # (tile row, tile column)

    def tiles():
        for ty in range(0, h, 256):
            for tx in range(0, w, 256):
                if (ty // 256, tx // 256) in left_out:
                    yield None
                    continue
                tile = np.full((256, 256, 3), 255, np.uint8)
                part = tissue[ty:ty + 256, tx:tx + 256]
                tile[:part.shape[0], :part.shape[1]] = part
                yield tile

    path = tmp_path / "sparse.tiff"
    with tifffile.TiffWriter(path) as tif:
        tif.write(tiles(), shape=tissue.shape, dtype=np.uint8, tile=(256, 256), photometric="rgb",
                  compression="zlib", resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    assert sum(c == 0 for c in tifffile.TiffFile(path).pages[0].databytecounts) == len(left_out)
    with open_slide(path, 0.5) as slide:
        assert slide._tiff is not None
        level = slide.levels[0]
        for x, y, bw, bh in [(0, 0, w, h), (200, 100, 400, 300), (700, 480, 300, 200), (-20, -20, 600, 400)]:
            got = slide.read(x, y, bw, bh, level)
            np.testing.assert_array_equal(got, _openslide(slide, x, y, level, bw, bh), err_msg=f"{(x, y, bw, bh)}")
        whole = slide.read(0, 0, w, h, level)
    assert (whole[0:256, 256:512] == 255).all() and (whole[512:768, 768:1024] == 255).all()
    np.testing.assert_array_equal(whole[256:512, 0:256], tissue[256:512, 0:256])
