"""Decoding one image file or byte string into uint8 RGB: the one place pixels enter the project.

A file that cannot be used raises ``TileError`` naming the file and the reason; nothing else is lost.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from model_training.bundle.contract import TILE

IMAGE_EXTS = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
# Region images are at most 2048x2048; anything far beyond that is treated as a decompression bomb.
MAX_PIXELS = 4096 * 4096


class TileError(ValueError):
    """A file that cannot be used as a tile; the message names the file and the reason."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _to_uint8_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    """Convert grayscale / RGBA / 16-bit / float arrays to uint8 RGB."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise TileError(name, f"unsupported image shape {arr.shape}")
    if arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):  # planar (C, H, W) TIFF
        arr = np.moveaxis(arr, 0, -1)
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(arr)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        raise TileError(name, f"unsupported pixel type {arr.dtype}")
    channels = arr.shape[2]
    if channels == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif channels == 2:  # gray + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif channels == 4:
        # Composite on white: transparent areas of a slide export are background, which is white.
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = (arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    elif channels != 3:
        raise TileError(name, f"{channels} channels; expected RGB")
    return np.ascontiguousarray(arr)


def _read_tiff(data: bytes, name: str) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        if int(np.prod(page.shape)) > MAX_PIXELS * 4:
            raise TileError(name, f"image of {page.shape} is too large")
        return page.asarray()


def read_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode any supported image to uint8 RGB (H, W, 3); raise TileError with a human message."""
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise TileError(name, f"cannot be read ({exc.strerror or exc})") from exc
    else:
        data = bytes(source)
        name = name or "upload"
    if not data:
        raise TileError(name, "the file is empty (0 bytes)")
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        try:
            return _to_uint8_rgb(_read_tiff(data, name), name)
        except TileError:
            raise
        except Exception:  # tifffile refuses some valid TIFFs (e.g. JPEG-in-TIFF); let PIL try
            pass
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise TileError(name, f"image of {im.width}x{im.height} pixels is too large")
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            im.load()
            arr = np.asarray(im)
    except TileError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        reason = "is not an image PathReview can read" if isinstance(exc, UnidentifiedImageError) \
            else "is too large (decompression bomb)"
        raise TileError(name, reason) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise TileError(name, f"is corrupt or truncated ({exc})") from exc
    return _to_uint8_rgb(arr, name)


def center_crop(img: np.ndarray, size: int = TILE) -> np.ndarray:
    """Crop the central size x size window (the image must be at least that large)."""
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return img[top:top + size, left:left + size]


def read_tile(source: str | Path | bytes, name: str | None = None, *, crop: bool = False) -> np.ndarray:
    """Decode one 96x96 tile to uint8 RGB; other sizes are rejected unless ``crop`` is set."""
    img = read_image(source, name)
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "upload")
    h, w = img.shape[:2]
    if (h, w) == (TILE, TILE):
        return img
    if crop and h >= TILE and w >= TILE:
        return center_crop(img)
    raise TileError(name, f"is {w}x{h} pixels; a tile must be {TILE}x{TILE}"
                    + ("" if crop else " (centre-crop it, or use the region view)"))


