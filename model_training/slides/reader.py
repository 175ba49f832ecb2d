"""Read whole-slide images at the model's resolution, through OpenSlide (or Pillow for plain images); the
pixels of Aperio and generic tiled TIFF levels come from tifffile (``tiff_region``), the same as OpenSlide's.

A slide is read from the coarsest pyramid level that is still at least as fine as the model's resolution,
then resampled to it, so a 40x and a 20x scan yield tiles of the same physical size. Coordinates are
level-0 pixels, origin top-left, as in OpenSlide and QuPath.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model_training.slides.tiff_region import open_levels

# A slide up to this much coarser than the model's resolution is still read (and upsampled slightly): scanner
# calibrations of one nominal magnification differ by a few per cent.
COARSE_TOLERANCE = 0.15
# Beyond this many level-0 pixels a file is not a slide this tool was built for (the largest scans are ~10^10).
MAX_PIXELS = 4e11
# Plain images (PNG, JPEG, strip TIFF) are decoded whole: 100 Mpx is 300 MB of RGB. Larger ones must be
# converted to a pyramidal TIFF first. The size is read from the header, before anything is decoded.
MAX_PLAIN_PIXELS = 10000 * 10000
# A slide without a pyramid (or with too few levels) is read at a fine level for its thumbnail: that level is
# read in blocks of this many pixels, each shrunk before the next, so memory stays bounded whatever the size.
READ_BLOCK = 4096
# ...and a single level beyond this many pixels takes minutes to read whole: it must have a pyramid.
MAX_FLAT_PIXELS = 2e9
# The overview is read before any tile can be: its tiles (or blocks) are decoded on this many threads, where
# the rest of a slide's reading runs beside the model on one.
OVERVIEW_THREADS = min(4, os.cpu_count() or 1)
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg")
PYRAMID_ADVICE = "convert it to a pyramidal TIFF first (e.g. vips tiffsave IN OUT.tif --tile --pyramid)"


class SlideError(ValueError):
    """A slide that cannot be used; ``str()`` names the file and the reason, for the user."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


@dataclass(frozen=True)
class Level:
    index: int
    downsample: float
    size: tuple[int, int]  # (width, height)


class Slide:
    """An open slide: its levels, its resolution and reads of level-0 regions resampled to a target scale."""

    def __init__(self, handle, path: Path, mpp: float, mpp_source: str):
        self._h, self.path, self.mpp, self.mpp_source = handle, Path(path), float(mpp), mpp_source
        self.name = self.path.name
        self.dimensions: tuple[int, int] = tuple(handle.dimensions)
        self.levels = [Level(i, float(d), tuple(s)) for i, (d, s) in
                       enumerate(zip(handle.level_downsamples, handle.level_dimensions))]
        self.vendor = handle.properties.get("openslide.vendor", "image")
        # the levels tifffile reads directly, faster than through OpenSlide (None: OpenSlide reads them all)
        self._tiff = open_levels(self.path, self.vendor, [lv.size for lv in self.levels])

    def close(self) -> None:
        if self._tiff is not None:
            self._tiff.close()
        self._h.close()

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def scale_for(self, target_mpp: float) -> float:
        """Level-0 pixels per target pixel (2.0 for a 0.5 µm/px slide read at 1.0 µm/px)."""
        return target_mpp / self.mpp

    def level_for(self, target_mpp: float) -> Level:
        """The coarsest level still at least as fine as ``target_mpp`` (a tiny tolerance for rounding)."""
        scale = self.scale_for(target_mpp)
        fine = [lv for lv in self.levels if lv.downsample <= scale * 1.001]
        return max(fine, key=lambda lv: lv.downsample) if fine else self.levels[0]

    def read(self, x: int, y: int, w: int, h: int, level: Level) -> np.ndarray:
        """Level-0 box (x, y, w, h) read from ``level`` at that level's own scale, uint8 RGB on white."""
        lw, lh = max(1, math.ceil(w / level.downsample)), max(1, math.ceil(h / level.downsample))
        try:
            return self._region(x, y, level, lw, lh)
        except MemoryError:
            raise SlideError(self.name, "cannot be read: the server ran out of memory reading it") from None
        except Exception as exc:  # openslide raises OpenSlideError on corrupt tiles, tifffile its own errors
            raise SlideError(self.name, f"cannot be read at x={x}, y={y} ({_reason(exc, self.path)})") from exc

    def _region(self, x: int, y: int, level: Level, lw: int, lh: int, threads: int = 1) -> np.ndarray:
        """``lw`` × ``lh`` pixels of ``level`` from the level-0 point (x, y), uint8 RGB on white: decoded by
        tifffile where it reads this slide's levels (its tiles in ``threads`` side by side), else by OpenSlide."""
        if self._tiff is not None:
            return self._tiff.read(level.index, round(x / level.downsample), round(y / level.downsample), lw, lh,
                                   threads)
        return _on_white(self._h.read_region((int(x), int(y)), level.index, (lw, lh)))

    def read_scaled(self, x: int, y: int, w: int, h: int, target_mpp: float,
                    out: tuple[int, int] | None = None) -> np.ndarray:
        """The level-0 box (x, y, w, h) at ``target_mpp``: ``out`` = (width, height) in target pixels."""
        scale = self.scale_for(target_mpp)
        out = out or (max(1, round(w / scale)), max(1, round(h / scale)))
        level = self.level_for(target_mpp)
        img = self.read(x, y, w, h, level)
        if (img.shape[1], img.shape[0]) == tuple(out):
            return img  # already at the model's scale: the pixels as stored, not resampled
        resample = Image.Resampling.BOX if img.shape[1] >= out[0] else Image.Resampling.BICUBIC
        return np.asarray(Image.fromarray(img).resize(out, resample))

    def thumbnail(self, max_side: int = 2048) -> tuple[np.ndarray, float]:
        """(uint8 RGB thumbnail, level-0 pixels per thumbnail pixel), read in bounded memory.

        The coarsest level at least as fine as the thumbnail is read in blocks of ``READ_BLOCK``² pixels,
        each shrunk into place: OpenSlide's own thumbnail reads that level whole, which for a slide without a
        pyramid is the full-resolution image (gigabytes from a file of kilobytes).
        """
        w, h = self.dimensions
        factor = max(w, h) / max_side if max(w, h) > max_side else 1.0
        size = (max(1, round(w / factor)), max(1, round(h / factor)))
        fine = [lv for lv in self.levels if lv.downsample <= factor * 1.001]
        level = max(fine, key=lambda lv: lv.downsample) if fine else self.levels[0]
        lw, lh = level.size
        if lw * lh > MAX_FLAT_PIXELS:
            raise SlideError(self.name, f"has no pyramid level coarser than {lw:,}×{lh:,} pixels, too many to read "
                                        f"for an overview; {PYRAMID_ADVICE}")
        try:
            if lw * lh <= READ_BLOCK ** 2:  # small enough to read at once
                if self._tiff is None:
                    arr = _on_white(self._h.get_thumbnail(size))
                    return arr, w / arr.shape[1]
                img = Image.fromarray(self._region(0, 0, level, lw, lh, OVERVIEW_THREADS))
                img.thumbnail(size, Image.Resampling.LANCZOS)  # as OpenSlide's own thumbnail does
                return np.asarray(img), w / img.width
            thumb = self._blockwise_thumbnail(level, size)
        except MemoryError:
            raise SlideError(self.name, "cannot be read: the server ran out of memory reading it") from None
        except Exception as exc:  # openslide raises OpenSlideError on corrupt tiles
            raise SlideError(self.name, f"cannot be read ({_reason(exc, self.path)})") from exc
        arr = np.asarray(thumb)
        return arr, w / arr.shape[1]

    def _blockwise_thumbnail(self, level: Level, size: tuple[int, int]) -> Image.Image:
        lw, lh = level.size
        thumb = Image.new("RGB", size, (255, 255, 255))
        sx, sy = size[0] / lw, size[1] / lh  # thumbnail pixels per level pixel
        step = READ_BLOCK
        for ty in range(0, lh, step):
            for tx in range(0, lw, step):
                bw, bh = min(step, lw - tx), min(step, lh - ty)
                x0, y0 = round(tx * sx), round(ty * sy)
                x1, y1 = max(x0 + 1, round((tx + bw) * sx)), max(y0 + 1, round((ty + bh) * sy))
                block = self._region(round(tx * level.downsample), round(ty * level.downsample), level, bw, bh,
                                     OVERVIEW_THREADS)
                thumb.paste(Image.fromarray(block).resize((x1 - x0, y1 - y0), Image.Resampling.BOX), (x0, y0))
        return thumb


def _reason(exc: BaseException, path: Path | None = None) -> str:
    """An exception as a reason a user can read: its message (with the server's folders taken out of it: an
    uploaded slide lives in a temporary folder), or its kind when it has none."""
    text = str(exc).strip()
    if path is not None:
        text = text.replace(str(path), path.name).replace(str(path.parent) + os.sep, "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _on_white(img: Image.Image) -> np.ndarray:
    """RGB with transparent pixels (outside the scanned area) made white, like glass."""
    if img.mode == "RGBA":
        # the usual case inside the scan: opaque, no blending needed. Pillow's own conversion drops the alpha
        # in one pass; through numpy (view, then a strided copy) a slide's reading cost a fifth more CPU.
        if np.asarray(img.getchannel("A")).min() == 255:
            return np.asarray(img.convert("RGB"))
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return np.asarray(img.convert("RGB"))


def _mpp_from(props, name: str) -> float | None:
    for key in ("openslide.mpp-x", "openslide.mpp-y"):
        value = props.get(key)
        if value:
            try:
                mpp = float(value)
            except ValueError:
                continue
            if math.isfinite(mpp) and mpp > 0:
                return mpp
    return None


def _open_handle(path: Path):
    import openslide

    try:
        return openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError:
        pass
    except openslide.OpenSlideError as exc:
        raise SlideError(path.name, f"is a damaged or truncated slide file ({_reason(exc, path)})") from exc
    with open(path, "rb") as fh:
        head = fh.read(4)
    is_tiff = head[:2] in (b"II", b"MM") and head[2:4] in (b"*\x00", b"\x00*", b"+\x00", b"\x00+")
    if not is_tiff and path.suffix.lower() not in PLAIN_SUFFIXES:
        raise SlideError(path.name, "is not a slide format OpenSlide reads (Aperio SVS, TIFF, NDPI, MIRAX, "
                                    "Philips, Leica SCN, Ventana, Hamamatsu VMS, DICOM) nor a PNG/JPEG image")
    what = "a TIFF file that cannot be read: damaged or truncated" if is_tiff else "not a readable image"
    too_large = (f"more than the {MAX_PLAIN_PIXELS / 1e6:.0f} million pixels this server decodes whole; "
                 + PYRAMID_ADVICE)
    try:  # a plain (untiled) image: its size from the header, then decoded whole by Pillow
        Image.MAX_IMAGE_PIXELS = MAX_PLAIN_PIXELS  # Pillow itself refuses twice this at open
        with warnings.catch_warnings():
            # the size is checked below, and a damaged file is reported once, as the reason, not as warnings
            warnings.simplefilter("ignore")
            img = Image.open(path)
            width, height = img.size
            if width * height > MAX_PLAIN_PIXELS:
                img.close()
                raise SlideError(path.name, f"is a {width:,}×{height:,}-pixel image without tiles or a pyramid: "
                                            + too_large)
            img.load()
    except SlideError:
        raise
    except Image.DecompressionBombError:
        raise SlideError(path.name, f"is an image without tiles or a pyramid of {too_large}") from None
    except MemoryError:
        raise SlideError(path.name, "cannot be read: the server ran out of memory decoding it") from None
    except Exception as exc:
        raise SlideError(path.name, f"is {what} ({_reason(exc, path)})") from exc
    return openslide.ImageSlide(img if img.mode == "RGB" else img.convert("RGB"))


def recorded_mpp(path: str | Path) -> float | None:
    """The resolution (µm per level-0 pixel) the slide records, or None when it records none or OpenSlide
    cannot open it (``open_slide`` then says why). Only the metadata is read: a plain image, which records
    none, is not decoded for this."""
    import openslide

    try:
        handle = openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, OSError):
        return None
    with handle:
        return _mpp_from(handle.properties, Path(path).name)


def open_slide(path: str | Path, mpp: float | None = None, *, target_mpp: float | None = None,
               max_pixels: float = MAX_PIXELS) -> Slide:
    """Open a slide; ``mpp`` overrides (or supplies) its resolution in µm per level-0 pixel.

    With ``target_mpp`` (the model's), a slide coarser than the model needs is refused with the reason.
    Raises ``SlideError`` for anything unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise SlideError(path.name, "no such file" if not path.exists() else "is not a file")
    if os.path.getsize(path) == 0:
        raise SlideError(path.name, "is an empty file")
    handle = _open_handle(path)
    w, h = handle.dimensions
    if w * h > max_pixels:
        handle.close()
        raise SlideError(path.name, f"is {w}×{h} pixels, larger than this server accepts "
                                    f"({max_pixels:.3g} pixels)")
    if mpp is not None:
        if not (math.isfinite(mpp) and mpp > 0):
            handle.close()
            raise SlideError(path.name, f"the resolution given ({mpp}) must be a positive number of µm/px")
        found, source = float(mpp), "given"
    else:
        found, source = _mpp_from(handle.properties, path.name), "slide metadata"
        if found is None:
            handle.close()
            raise SlideError(path.name, "has no resolution metadata (µm per pixel); give it with --mpp "
                                        "(or the resolution box in the app)")
    if target_mpp is not None and found > target_mpp * (1 + COARSE_TOLERANCE):
        handle.close()
        raise SlideError(path.name, f"is scanned at {found:.3g} µm/px, coarser than the {target_mpp:.3g} µm/px "
                                    "the model needs; scan it at a higher magnification")
    return Slide(handle, path, found, source)
