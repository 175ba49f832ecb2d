"""Hand a batch run's scored slides to the review store, where the app's Cases page lists them.

The store is the app's (``app.store`` owns the database and its migrations), and nothing in ``model_training``
imports ``app``: the batch runs the store's own command, ``python -m app.store add-cases OUT``, in a fresh
process. The store's URL goes to it in its environment, never on its command line, where anyone on the
machine could read a password.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DB_ENV = "PATHREVIEW_DB_URL"  # the app's store setting (README's configuration table)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Handoff:
    """What the store said: ``ok``, and its words (the cases added, or why none were); ``stopped`` after Ctrl-C."""

    ok: bool
    message: str
    stopped: bool = False


def store_url(given: str | None) -> str | None:
    """The store a batch writes to: ``--db`` when given, else ``PATHREVIEW_DB_URL``, else none."""
    return given or os.environ.get(DB_ENV) or None


def add_to_store(out: Path, url: str, timeout_s: float = 600) -> Handoff:
    """Add the slides of the batch in ``out`` (its ``cases.csv``) to the review store at ``url``."""
    env = {**os.environ, DB_ENV: url,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    try:
        run = subprocess.run([sys.executable, "-m", "app.store", "add-cases", str(Path(out).resolve())], env=env,
                             capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Handoff(False, f"python -m app.store did not finish: {exc}")
    except KeyboardInterrupt:  # the store commits slide by slide, so what it took stays and a re-run adds the rest
        return Handoff(False, f"stopped (Ctrl-C) while the store was taking the slides; those it took stay, and "
                              f"python -m app.store add-cases {out} adds the rest", stopped=True)
    lines = [ln for ln in run.stdout.splitlines() + run.stderr.splitlines()
             if ln.strip() and not ln.startswith("not added: ")]  # the batch has named its failed slides
    said = lines[-1] if lines else f"python -m app.store exited with status {run.returncode}"
    return Handoff(run.returncode == 0, said)
