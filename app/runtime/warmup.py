"""Libraries the results need, imported in the background once the first page has been drawn.

pandas takes about 0.3 s to import on a 2-core machine. The first page does not need it, so it is left out of
everything that page imports, and the server and the browser do not compete for the cores while the page
loads; the results table of the first drop does, so it is imported in a background thread as soon as the first
script run is over, while the reader is still looking at the page. A script run that needs it before that
waits for the import on Python's own import lock.

The same thread then asks the review store one question: SQLAlchemy sets up its ORM attributes and compiles
the statement on first use, about 0.15 s that the first detail view's review form would otherwise wait for.
"""
from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger("pathreview.app")
LATER = ("pandas",)
WARM_STORE = True
_started = threading.Event()


def _import_later() -> None:
    for name in LATER:
        try:
            importlib.import_module(name)
        except Exception:  # the page that needs it will import it again and report the problem
            log.warning("background import of %s failed", name, exc_info=True)
    if WARM_STORE:
        try:
            from app import store

            store.find_item("")  # no item has an empty key
        except Exception:  # an unreachable store is reported by the pages that need it
            log.debug("review store warm-up failed", exc_info=True)


def after_first_page() -> None:
    """Start the background imports (once per process)."""
    if not _started.is_set():
        _started.set()
        threading.Thread(target=_import_later, name="pathreview-import-later", daemon=True).start()
