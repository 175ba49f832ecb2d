"""Review items: a scored tile and where it came from (an upload, a dataset tile, a slide region)."""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from app.store import db
from app.store.audit_csv import pixel_sha256
from app.store.schema import SOURCES, Item, utcnow


class StoreError(ValueError):
    """A request the store refuses; the message says why, in words for the reviewer."""


@dataclass(frozen=True)
class ItemIn:
    """A tile to review, with its provenance. Build it with ``ItemIn.from_tile`` when you have the pixels.

    ``source`` is ``upload`` (``upload_name``), ``dataset`` (``dataset_root`` + ``dataset_id``) or ``slide``
    (``slide`` + level-0 ``x``, ``y``, ``width``, ``height``). ``p``, ``spread`` and ``threshold`` are the
    model's scores when the tile was queued; ``label`` is the ground truth (0/1) where known.
    """

    source: str
    name: str
    pixel_sha256: str
    model_sha256: str
    p: float
    spread: float
    threshold: float
    needs_review: bool = False
    label: int | None = None
    upload_name: str | None = None
    dataset_root: str | None = None
    dataset_id: str | None = None
    slide: str | None = None
    x: int | None = None
    y: int | None = None
    width: int | None = None
    height: int | None = None
    tile_png: bytes | None = None
    quality: str | None = None  # the quality gate's verdict: "ok" or why the tile was not assessed
    ood: float | None = None  # its distance from the training tiles (above 1.0: out of distribution)

    @classmethod
    def from_tile(cls, tile: np.ndarray, **kw) -> "ItemIn":
        """The item for ``tile`` (uint8 H×W×3): its pixel sha256 and a lossless PNG of it are filled in."""
        return cls(pixel_sha256=pixel_sha256(tile), tile_png=png_bytes(tile), **kw)

    @property
    def model_decision(self) -> str:
        return "tumour" if self.p >= self.threshold else "normal"

    @property
    def key(self) -> str:
        """Same tile, same origin, same model: same item, whichever session or instance queues it."""
        where = {"upload": (), "dataset": (self.dataset_root, self.dataset_id),
                 "slide": (self.slide, self.x, self.y, self.width, self.height)}[self.source]
        parts = [self.source, *map(str, where), self.pixel_sha256, self.model_sha256]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def check(self) -> None:
        """Refuse an item the store cannot keep, with the reason."""
        if self.source not in SOURCES:
            raise StoreError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if not all(math.isfinite(float(v)) for v in (self.p, self.spread, self.threshold)):
            raise StoreError("p, spread and threshold must be finite numbers")
        if self.quality is not None and (not isinstance(self.quality, str) or len(self.quality) > 32):
            raise StoreError(f"quality must be a short verdict such as 'ok' or 'blur', got {self.quality!r}")
        if self.ood is not None and not math.isfinite(float(self.ood)):
            raise StoreError("ood must be a finite number or unknown")
        if self.label not in (None, 0, 1):
            raise StoreError(f"label must be 0, 1 or unknown, got {self.label!r}")
        needed = {"dataset": ("dataset_root", "dataset_id"), "slide": ("slide", "x", "y", "width", "height"),
                  "upload": ("upload_name",)}[self.source]
        missing = [f for f in needed if getattr(self, f) in (None, "")]
        if missing:
            raise StoreError(f"a {self.source} item needs {', '.join(missing)}")
        if len(self.pixel_sha256) != 64 or len(self.model_sha256) != 64:
            raise StoreError("pixel_sha256 and model_sha256 must be sha256 hex digests")

    def row(self) -> dict:
        values = asdict(self)
        values.update(key=self.key, model_decision=self.model_decision, created_at=utcnow(),
                      p=float(self.p), spread=float(self.spread), threshold=float(self.threshold),
                      needs_review=bool(self.needs_review))
        return values


def png_bytes(tile: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(tile, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def tile_from_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)


def _insert(session):
    dialect = session.get_bind().dialect.name
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)


def add_items(items: list[ItemIn], *, url: str | None = None) -> list[int]:
    """Queue ``items`` for review; items already in the store are kept as they are. Returns their ids.

    Safe when several sessions or instances queue the same tiles at once (insert-or-ignore on the key).
    """
    for it in items:
        it.check()
    if not items:
        return []
    rows = {it.key: it.row() for it in items}
    with db.session(url, write=True) as s:
        insert = _insert(s)
        for row in rows.values():
            if insert is not None:
                s.execute(insert(Item).values(**row).on_conflict_do_nothing(index_elements=["key"]))
            elif s.scalar(select(Item.id).where(Item.key == row["key"])) is None:
                s.add(Item(**row))
        s.flush()
        ids = dict(s.execute(select(Item.key, Item.id).where(Item.key.in_(list(rows)))).all())
    return [ids[it.key] for it in items]


def add_item(item: ItemIn, *, url: str | None = None) -> int:
    """``add_items`` for one item: its id."""
    return add_items([item], url=url)[0]


def find_item(key: str, *, url: str | None = None) -> int | None:
    """The id of the item with this ``ItemIn.key``, or None when it was never queued or reviewed."""
    with db.session(url) as s:
        return s.scalar(select(Item.id).where(Item.key == key))


def queued_from(source: str, model_sha256: str, *, dataset_root: str | None = None, slide: str | None = None,
                url: str | None = None) -> set:
    """What of one dataset (its tile ids) or one slide (its ``(x, y)`` boxes) is already in the store for this
    model, so that a page can queue the next tiles rather than the same ones again."""
    q = select(Item.dataset_id, Item.x, Item.y).where(Item.source == source, Item.model_sha256 == model_sha256)
    if dataset_root is not None:
        q = q.where(Item.dataset_root == dataset_root)
    if slide is not None:
        q = q.where(Item.slide == slide)
    with db.session(url) as s:
        rows = s.execute(q).all()
    return {r.dataset_id for r in rows} if source == "dataset" else {(r.x, r.y) for r in rows}


def get_item(item_id: int, *, url: str | None = None) -> dict | None:
    """An item's fields (``tile_png`` included), or None."""
    with db.session(url) as s:
        it = s.get(Item, int(item_id))
        return None if it is None else {c.name: getattr(it, c.name) for c in Item.__table__.columns}
