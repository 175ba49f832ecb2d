"""What the slides command says of a batch: a line per slide (its answer, or why it was skipped or failed), and
one line for all the slides a lost Dask scheduler or a Ctrl-C left unscored."""
from __future__ import annotations

import sys
from pathlib import Path

from model_training.slides.cases_csv import CASES_FILE, INTERRUPTED, SCHEDULER_LOST


def _count(rows: list[dict], reason: str) -> int:
    return sum(r["status"] == f"failed: {reason}" for r in rows)


def say_batch(rows: list[dict], out: Path, scheduler: str | None) -> bool:
    """Print each slide's line (errors on stderr) and the lost scheduler's, if any; True when a slide failed."""
    for row in rows:
        if row["status"] == f"failed: {SCHEDULER_LOST}":
            continue  # said once for them all, below
        if row["status"] == "skipped":
            print(f"{row['slide']}: already scored with this model and settings, skipped")
        elif row["status"].startswith("failed"):
            print(f"error: {row['slide']}: {row['status'][len('failed: '):]}", file=sys.stderr)
        else:
            score = "none" if row["slide_score"] is None else f"{row['slide_score']:.3f}"
            score += f" ({row['decision'].replace('_', ' ')})" if row["decision"] else " (no slide answer)"
            print(f"{row['slide']}: {row['tiles_scored']} tiles, slide score {score}, {row['tiles_flagged']} "
                  f"tile(s) flagged, {row['tiles_not_assessed']} not assessed, {row['total_s']} s")
            if row["quality_warning"]:
                print(f"  warning: {row['quality_warning']}")
            elif row["withheld"]:
                print(f"  no slide answer: {row['withheld']}")
    print(f"{out / CASES_FILE}: {len(rows)} slide(s)")
    if lost := _count(rows, SCHEDULER_LOST):
        print(f"error: the connection to the Dask scheduler at {scheduler or 'this machine'} was lost: {lost} of "
              f"{len(rows)} slide(s) were not scored ({CASES_FILE} names them). Run the same command again once the "
              "scheduler is back: the slides already written are skipped.", file=sys.stderr)
    return any(r["status"].startswith("failed") for r in rows)


def say_interrupted(rows: list[dict], out: Path) -> None:
    """The one line for a batch stopped by Ctrl-C (``rows``: its cases.csv rows)."""
    left = _count(rows, INTERRUPTED)
    print(f"interrupted: {len(rows) - left} of {len(rows)} slide(s) finished, {left} not scored "
          f"({out / CASES_FILE} names them). The same command run again skips the finished slides and "
          "scores the rest.", file=sys.stderr)
