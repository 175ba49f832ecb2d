"""Small pixel helpers for display: enlarging tiles, outlining the label region, PNG encoding."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from model_training.inference.explain import overlay as cam_overlay

TILE = 96
LABEL_REGION = 32  # PCam labels describe the centre 32x32 pixels only
OUTLINE = (0, 255, 0)


def enlarge(tile: np.ndarray, scale: int = 4) -> np.ndarray:
    """Nearest-neighbour upscaling, so every source pixel stays visible as a block."""
    return np.repeat(np.repeat(np.asarray(tile, np.uint8), scale, axis=0), scale, axis=1)


def outline_centre(img: np.ndarray, region: int = LABEL_REGION, tile: int = TILE, width: int = 2,
                   colour: tuple[int, int, int] = OUTLINE) -> np.ndarray:
    """Draw the centre ``region`` x ``region`` box of a (possibly enlarged) tile on a copy of it."""
    out = np.array(img, np.uint8, copy=True)
    scale = out.shape[0] / tile
    lo, hi = int(round((tile - region) / 2 * scale)), int(round((tile + region) / 2 * scale))
    w = max(1, int(round(width * max(1.0, scale / 2))))
    out[lo:hi, lo:lo + w] = colour
    out[lo:hi, hi - w:hi] = colour
    out[lo:lo + w, lo:hi] = colour
    out[hi - w:hi, lo:hi] = colour
    return out


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def thumbnail(img: np.ndarray, max_side: int) -> Image.Image:
    """A PIL image no larger than ``max_side`` on its longer side (for sending big images to the browser)."""
    im = Image.fromarray(np.asarray(img, np.uint8))
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return im


def data_uri(im: Image.Image, fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format=fmt, quality=90)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def cam_colour_bar(width: int = 384, height: int = 14) -> np.ndarray:
    """The Grad-CAM maps' colour scale as a uint8 strip, low (left) to high (right), drawn with the same
    colour map as the maps themselves."""
    ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    return cam_overlay(np.zeros((height, width, 3), np.uint8), ramp, 1.0)
