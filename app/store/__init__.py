"""The review store: review items with their provenance and append-only reviews, in SQLite or PostgreSQL.

Pages call these functions and never write SQL:

- ``open_store()`` once per process: connects and migrates; ``Status.ok`` false disables reviews.
- ``add_items([ItemIn, ...])`` queues tiles that need a look (uploads, dataset tiles, slide regions).
- ``record_review(item, reviewer, decision, comment, seen=..., supersedes=...)`` records one review.
- ``add_batch(folder)`` adds a batch run's scored slides (cases); ``worklist()``, ``get_case(id)``,
  ``record_signout(id, reviewer, call, comment)`` and ``signouts_frame()`` are the Cases page's;
  ``case_of_file(path, model)`` finds a slide's stored case; ``signout_history()`` and ``signouts_csv(frame)``
  give every sign-out, the lab's record.
- ``queue(reviewer, status=..., source=...)``, ``progress(reviewer)``, ``my_review(item_id, reviewer)``,
  ``get_item(item_id)`` and ``reviews_frame(...)`` read it; ``export_csv(frame)`` writes the CSV export.
"""
from app.store.case_schema import CALLS
from app.store.cases import (CALL_NAMES, add_batch, case_of_file, case_status, get_case, record_signout,
                             signouts_frame, worklist)
from app.store.db import DB_ENV, database_url, engine, safe_url, session
from app.store.export import COLUMNS as EXPORT_COLUMNS
from app.store.export import export_csv, export_frame
from app.store.items import (ItemIn, StoreError, add_item, add_items, find_item, get_item, pixel_sha256, png_bytes,
                             queued_from, tile_from_png)
from app.store.queries import STATUSES, progress, queue, reviews_frame
from app.store.reviews import Reviewer, ReviewRefused, Seen, my_review, record_review
from app.store.service import Status, open_store
from app.store.signout_export import signout_history, signouts_csv

__all__ = ["CALLS", "CALL_NAMES", "DB_ENV", "EXPORT_COLUMNS", "STATUSES", "ItemIn", "ReviewRefused", "Reviewer",
           "Seen", "Status", "StoreError", "add_batch", "add_item", "add_items", "case_of_file", "case_status",
           "database_url", "engine", "export_csv", "export_frame", "find_item", "get_case", "get_item", "my_review",
           "open_store", "pixel_sha256", "png_bytes", "progress", "queue", "queued_from", "record_review",
           "record_signout", "reviews_frame", "safe_url", "session", "signout_history", "signouts_csv",
           "signouts_frame", "tile_from_png", "worklist"]
