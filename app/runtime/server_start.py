"""What the server does once it listens: import the app's libraries, open the review store, load the model.

The server answers nothing until ``main.py`` has been imported, and the libraries behind the first page
(SQLAlchemy, Alembic, NumPy) take about 0.5 s to import on a 2-core machine. Imported here, in a background
thread started when the server starts, they load while the browser fetches and runs the frontend, which it
does for about 0.4 s before it asks for the first page. In interleaved ``bench_app`` runs this made the
first page ready about 0.3 s sooner (10 pairs).
"""
from __future__ import annotations

import threading

_imported = threading.Event()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def _start() -> None:
    try:
        # what main.py needs; keep pandas and TensorFlow out of it (see app.warmup)
        import sqlalchemy.exc  # noqa: F401

        from app import store  # noqa: F401
        from app.review import identity, reviewer  # noqa: F401
        from app.runtime import frontend_preload, state, warmup  # noqa: F401
    except Exception:  # raised again, and reported on the page, by the script run that imports them
        return
    finally:
        _imported.set()
    state.start_loading()
    reviewer.status()  # connects and migrates; a failure is kept for the page to report


def begin() -> None:
    """Start the background work (once per process)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_start, name="pathreview-server-start", daemon=True)
            _thread.start()


def join(timeout: float | None = None) -> None:
    """Wait for the background work to end (if the server started it)."""
    if _thread is not None:
        _thread.join(timeout)


def wait_for_imports() -> None:
    """Return once the background imports are over, if the server started them: two threads importing the
    same package at once can deadlock."""
    if _thread is not None:
        _imported.wait()
