"""Opening the store when the app starts: connect, migrate, and remember whether it worked.

A store that cannot be reached disables reviews with one clear message; scoring does not depend on it.
The outcome is kept per process and a failure is retried after ``RETRY_S`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text

from app.store import db, migrate

log = logging.getLogger("pathreview.store")
RETRY_S = 30.0

_lock = threading.Lock()
_status: dict[str, tuple["Status", float]] = {}


@dataclass(frozen=True)
class Status:
    ok: bool
    url: str  # password masked
    message: str = ""


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return first[:300]


def open_store(url: str | None = None) -> Status:
    """Connect to the store and bring its schema up to date (Alembic), once per process."""
    url = url or db.database_url()
    with _lock:
        cached = _status.get(url)
        if cached and (cached[0].ok or time.monotonic() - cached[1] < RETRY_S):
            return cached[0]
        try:
            eng = db.engine(url)
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
            migrate.upgrade(eng)
            status = Status(True, db.safe_url(url))
        except Exception as exc:  # any driver error: the app keeps scoring and says why reviews are off
            log.error("review store %s unavailable: %s", db.safe_url(url), exc)
            status = Status(False, db.safe_url(url),
                            f"The review store at {db.safe_url(url)} cannot be reached: {_reason(exc)}; "
                            "reviews are disabled.")
        _status[url] = (status, time.monotonic())
        return status


def forget() -> None:
    """Drop the remembered outcomes (tests)."""
    with _lock:
        _status.clear()
