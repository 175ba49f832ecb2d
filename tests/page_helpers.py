"""Helpers for the AppTest page tests: uploads and drops as the app receives them, real images, and what a
page shows (captions, errors, markdown)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from test_user_text import unescape

from model_training.data.decode import read_tile

def upload(path: Path, name: str | None = None) -> tuple[str, bytes, str]:
    return (name or path.name, path.read_bytes(), "image/tiff")


def drop(at, files: list[tuple[str, bytes, str]]):
    """Files dropped on the Analyze page, as the drop zone hands them over (drop_zone.parse's result).

    AppTest has no browser to run the drop zone's script; tests/test_e2e.py drops files in Chromium.
    """
    from app.inputs.drop_zone import Dropped

    at.session_state["analyze_files"] = Dropped.of([(name, data) for name, data, _ in files])
    return at.run()


def mosaic(data_root: Path, rows: int, cols: int) -> np.ndarray:
    """A larger H&E image stitched from real validation tiles (tumour and normal alternating)."""
    labels = pd.read_csv(data_root / "valid_labels.csv")
    ids = [i for pair in zip(labels[labels.label == 1].id, labels[labels.label == 0].id) for i in pair]
    tiles = [read_tile(data_root / "valid" / f"{i}.jpg") for i in ids[:rows * cols]]
    return np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], axis=1) for r in range(rows)])


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def errors(at) -> list[str]:
    """The error messages as the reader sees them (names in them are escaped for markdown)."""
    return [unescape(e.value) for e in at.error]



def markdown_shown(at) -> list[str]:
    """The source of every element the browser renders as markdown."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "subheader", "title", "header")
    return [e.value for kind in kinds for e in getattr(at, kind)]

