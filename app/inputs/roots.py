"""The server folders the app may open: the operator's roots, nothing else, whatever is typed in the UI.

Roots: every folder in ``PATHREVIEW_DATA`` and ``PATHREVIEW_DATA_ROOTS`` (both ``os.pathsep``-separated)
and the shipped example tiles. A path is resolved (``..`` and symlinks followed) before it is compared, so
neither leaves a root. Other pages pass their own variable (the Slide page: ``PATHREVIEW_SLIDES``).
"""
from __future__ import annotations

import os
from pathlib import Path

from model_training.data.sources import shortened

DATA_ENV = "PATHREVIEW_DATA"
ROOTS_ENV = "PATHREVIEW_DATA_ROOTS"
EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


class PathRefused(ValueError):
    """A path outside the configured roots; the message names it and the roots."""


def split(value: str | None) -> list[str]:
    """The non-empty entries of an ``os.pathsep``-separated variable."""
    return [part.strip() for part in (value or "").split(os.pathsep) if part.strip()]


def roots(envs: tuple[str, ...] = (DATA_ENV, ROOTS_ENV), *, examples: bool = True) -> list[Path]:
    """The resolved roots from the variables ``envs`` (plus the example tiles), without duplicates."""
    found = [Path(p).expanduser().resolve() for env in envs for p in split(os.environ.get(env))]
    if examples:
        found.append(EXAMPLES.resolve())
    return list(dict.fromkeys(found))


def inside(path: Path, allowed: list[Path]) -> bool:
    """Whether ``path`` (already resolved) is one of ``allowed`` or lies under one of them."""
    return any(path == r or path.is_relative_to(r) for r in allowed)


def check(path: str | Path, allowed: list[Path] | None = None) -> Path:
    """``path`` resolved, when it lies inside one of ``allowed`` (default ``roots()``); else ``PathRefused``."""
    allowed = roots() if allowed is None else allowed
    text = str(path).strip()
    if not text:
        raise PathRefused("No folder given.")
    shown = shortened(text, 200)
    try:
        resolved = Path(text).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name longer than the file system allows
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PathRefused(f"{shown} cannot be opened ({reason}).") from None
    if inside(resolved, allowed):
        return resolved
    listed = ", ".join(str(r) for r in allowed) or "none configured"
    # where a link leads is not said: it is outside what this server shows
    raise PathRefused(f"{shown} is outside the folders this server may open: {listed}. The operator can "
                      f"add a folder to `{ROOTS_ENV}`.")
