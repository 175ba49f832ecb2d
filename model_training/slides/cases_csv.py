"""``OUT/cases.csv``: one row per slide of a batch run, what a lab's worklist starts from."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from model_training.data.atomic import atomic_write
from model_training.data.spreadsheet import safe_frame

if TYPE_CHECKING:  # the app's store imports this module at start; pandas arrives with the first table
    import pandas as pd

CASES_FILE = "cases.csv"
# the reason of each slide a Dask run did not get to because its scheduler went away (a Slurm job's time ran out,
# the head node restarted): not the slide's fault, and the same command run again scores it
SCHEDULER_LOST = "not scored: the connection to the Dask scheduler was lost"
INTERRUPTED = "not scored: the run was interrupted"  # Ctrl-C; the same command run again scores it
COLUMNS = ["slide", "slide_score", "decision", "withheld", "tiles_scored", "tiles_assessed", "tiles_flagged", "status",
           "tiles_not_assessed", "quality_warning", "path", "sha256", "model", "model_sha256", "engine",
           "threshold", "overview_s", "scoring_s", "total_s", "worker"]


def row_from_summary(path: Path, summary: dict, status: str, sha256: str, worker: str = "") -> dict:
    """A cases.csv row from a slide's summary (written now, or found from an earlier run)."""
    level = summary.get("slide_level") or {}
    timings = summary.get("timings") or {}
    gate = summary.get("quality") or {}
    return {"slide": path.name, "slide_score": level.get("slide_score"), "decision": level.get("decision"),
            "withheld": level.get("withheld"),
            "tiles_scored": summary.get("tiles_scored"), "tiles_assessed": level.get("tiles_assessed"),
            "tiles_flagged": level.get("tiles_flagged"), "status": status,
            "tiles_not_assessed": gate.get("not_assessed"), "quality_warning": gate.get("warning"),
            "path": str(path), "sha256": sha256,
            "model": summary.get("model"), "model_sha256": summary.get("model_sha256"),
            "engine": (summary.get("settings") or {}).get("engine"), "threshold": level.get("threshold"),
            "overview_s": timings.get("overview_s"), "scoring_s": timings.get("scoring_s"),
            "total_s": timings.get("total_s"), "worker": worker}


def failed_row(path: Path, reason: str, sha256: str = "", worker: str = "") -> dict:
    """The row of a slide that could not be scored, with its reason."""
    return {**{c: None for c in COLUMNS}, "slide": path.name, "path": str(path), "sha256": sha256,
            "status": f"failed: {reason}", "worker": worker}


def write_cases(out: Path, rows: list[dict]) -> Path:
    """Write ``out/cases.csv`` atomically, slides in the order given."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    path = out / CASES_FILE
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("tiles_scored", "tiles_assessed", "tiles_flagged", "tiles_not_assessed"):
        frame[col] = frame[col].astype("Int64")  # a failed slide's empty count stays empty, not 45.0
    atomic_write(path, safe_frame(frame).to_csv(index=False).encode())
    return path


def read_cases(path: Path) -> pd.DataFrame:
    """A cases.csv as written by ``write_cases``."""
    import pandas as pd

    return pd.read_csv(path, dtype={"sha256": str, "model_sha256": str, "status": str})
