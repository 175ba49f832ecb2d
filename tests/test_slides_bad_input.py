"""Whole slides that cannot be scored as given: no resolution, too coarse, damaged, foreign, empty, too large to
decode; each is refused with one message naming the file and the reason.

Real inputs only: the Aperio slide in $PATHREVIEW_SLIDES and slides built here from real validation patches.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_training.bundle.contract import TILE_MPP
from model_training.slides.reader import SlideError, open_slide
from model_training.slides.run import SlideSettings, run_slide
from real_inputs import SVS

ROOT = Path(__file__).resolve().parent.parent


def _copy_without_mpp(patches, tmp_path) -> Path:
    from model_training.slides.labelled import build

    tiles, labels, ids = patches
    path = tmp_path / "nompp.tiff"
    build(tiles[:32], labels[:32], ids[:32], 8, path, mpp=None)
    return path


def test_a_slide_without_resolution_needs_mpp(patches, tmp_path):
    path = _copy_without_mpp(patches, tmp_path)
    with pytest.raises(SlideError, match=r"nompp.tiff: has no resolution metadata .*--mpp"):
        open_slide(path)
    with open_slide(path, mpp=TILE_MPP) as s:
        assert s.mpp == TILE_MPP and s.mpp_source == "given"


def test_a_slide_coarser_than_the_model_is_refused(patches, tmp_path):
    path = _copy_without_mpp(patches, tmp_path)
    with pytest.raises(SlideError, match=r"nompp.tiff: is scanned at 2 µm/px, coarser than the 0.972"):
        open_slide(path, mpp=2.0, target_mpp=TILE_MPP)


def test_truncated_empty_and_foreign_files_get_one_clear_message(svs, tmp_path, pred):
    cut = tmp_path / "cut.svs"
    cut.write_bytes(svs.read_bytes()[:400_000])
    empty = tmp_path / "empty.ndpi"
    empty.write_bytes(b"")
    text = tmp_path / "slide.mrxs"
    text.write_text("[GENERAL]\n")
    for path, reason in ((empty, "is an empty file"), (text, "not a slide format"),
                         (tmp_path / "missing.svs", "no such file")):
        with pytest.raises(SlideError, match=rf"{path.name}: .*{reason}"):
            open_slide(path)
    with pytest.raises(SlideError, match=r"cut.svs: .*(damaged|truncated|cannot be read)"):
        run_slide(pred, cut, tmp_path / "out", progress=False)


def test_no_tissue_and_oversized_slides_are_refused(tmp_path, pred, svs):
    glass = tmp_path / "glass.png"
    Image.fromarray(np.full((600, 800, 3), 243, np.uint8)).save(glass)
    with pytest.raises(SlideError, match=r"glass.png: no tissue found"):
        run_slide(pred, glass, tmp_path / "out", SlideSettings(mpp=TILE_MPP), progress=False)
    with pytest.raises(SlideError, match=r"glass.png: has no resolution metadata"):
        open_slide(glass)
    with pytest.raises(SlideError, match=rf"{SVS}: is 2220×2967 pixels, larger than this server accepts"):
        open_slide(svs, max_pixels=1e6)


def test_a_plain_image_is_a_slide_too(svs, tmp_path, pred):
    with open_slide(svs) as s:
        region = s.read(0, 0, 1400, 1400, s.levels[0])
    png = tmp_path / "region.png"
    Image.fromarray(region).save(png)
    result, _ = run_slide(pred, png, tmp_path / "out", SlideSettings(mpp=0.499), progress=False)
    assert result.summary["vendor"] == "image" and result.summary["tiles_scored"] > 5


def test_slide_outputs_never_hold_a_half_written_summary(svs, tmp_path, pred):
    run_slide(pred, svs, tmp_path, progress=False)
    assert not list(tmp_path.glob("*.part"))
    shutil.rmtree(tmp_path)


def _flat_tiff(path: Path, side: int, *, tiled: bool) -> Path:
    """A single-level TIFF of ``side``² white-ish pixels, compressed to a file of about a megabyte: tiled
    (OpenSlide reads it) or in strips (a plain image to Pillow). Written without holding the image."""
    import tifffile

    common = {"shape": (side, side, 3), "dtype": np.uint8, "compression": "zlib", "photometric": "rgb"}
    if tiled:
        block = np.full((256, 256, 3), 240, np.uint8)
        tifffile.imwrite(path, (block for _ in range(((side + 255) // 256) ** 2)), tile=(256, 256), **common)
    else:
        tifffile.imwrite(path, np.broadcast_to(np.full((1, 1, 3), 240, np.uint8), common["shape"]),
                         rowsperstrip=64, compression="zlib", photometric="rgb")
    return path


def test_a_slide_without_a_pyramid_is_read_in_bounded_memory(tmp_path):
    """A 1 MB single-level tiled TIFF of 12000² pixels: its overview is read block by block (OpenSlide's own
    thumbnail would hold the whole level: about 1.3 GB here, 8 GB for 30000²)."""
    import subprocess
    import sys

    path = _flat_tiff(tmp_path / "flat.tif", 12000, tiled=True)
    assert path.stat().st_size < 4 * 2**20
    # VmHWM, the process's own peak: getrusage's maxrss survives exec and would count the parent's pages
    code = ("import re, sys; from model_training.slides.reader import open_slide; "
            "thumb, scale = open_slide(sys.argv[1], 0.5).thumbnail(); "
            "peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
            "print(thumb.shape[0], thumb.shape[1], round(scale, 3), peak // 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    h, w, scale, peak_mb = out.stdout.split()
    assert (int(h), int(w), float(scale)) == (2048, 2048, 5.859)
    assert int(peak_mb) < 600, f"peak {peak_mb} MB"


def test_images_too_large_to_decode_whole_are_refused_with_the_reason(tmp_path, monkeypatch):
    from model_training.slides import reader

    strips = _flat_tiff(tmp_path / "strips.tif", 20000, tiled=False)  # 1 MB declaring 400 million pixels
    with pytest.raises(SlideError, match="without tiles or a pyramid of more than the 100 million pixels"):
        open_slide(strips, 0.5)
    Image.new("RGB", (10001, 10001), "white").save(tmp_path / "wide.png")
    with pytest.raises(SlideError, match=r"10,001×10,001-pixel image without tiles or a pyramid"):
        open_slide(tmp_path / "wide.png", 0.5)
    monkeypatch.setattr(reader, "MAX_FLAT_PIXELS", 4e6)  # as a 200000² single-level slide is to the default
    flat = open_slide(_flat_tiff(tmp_path / "flat.tif", 4096, tiled=True), 0.5)
    with pytest.raises(SlideError, match="has no pyramid level coarser than 4,096×4,096 pixels"):
        flat.thumbnail()
    assert reader._reason(MemoryError()) == "MemoryError"  # never "cannot be read ()"


def test_a_truncated_slide_is_one_line_that_names_no_server_folder(svs, tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "pathreview-slides-secret"
    folder.mkdir()
    cut = folder / "cut.svs"
    cut.write_bytes(svs.read_bytes()[:400_000])
    with pytest.raises(SlideError) as refused:
        open_slide(cut)
    assert str(folder) not in str(refused.value) and "secret" not in str(refused.value)
    out = subprocess.run([sys.executable, "-m", "model_training.cli.slides", str(cut), "--out", str(tmp_path / "o"),
                          "--engine", "onnx"], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith("error: cut.svs: ") and "secret" not in out.stderr
