"""A batch's list of slides from a manifest file: one path a line, or a CSV table with a ``path`` column (a
``slide`` or ``file`` column where it has none)."""
from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("path", "slide", "file")  # the column a CSV manifest names its slides in, the first one present


def read_manifest(path: Path) -> list[Path]:
    """Slide paths from the manifest at ``path``: one a line (``#`` starts a comment), or a CSV table whose header
    has one of ``COLUMNS``; relative paths are taken from the manifest's folder. Raises ValueError naming the
    file and the reason when it cannot be read or names no slides."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV may start with a byte-order mark
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the manifest is not a text file (UTF-8)") from None
    except OSError as exc:
        raise ValueError(f"{path}: the manifest cannot be read: {exc.strerror or exc}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    header = [c.strip().lower() for c in next(csv.reader(lines[:1]), [])]
    column = next((c for c in COLUMNS if c in header), None)
    if column is not None:
        at = header.index(column)
        lines = [r[at].strip() for r in csv.reader(lines[1:]) if len(r) > at and r[at].strip()]
    if not lines:
        raise ValueError(f"{path}: the manifest names no slides")
    return [p if p.is_absolute() else path.parent / p for p in map(Path, lines)]
