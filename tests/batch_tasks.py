"""Tasks for the Dask tests, importable by worker processes: a worker that dies the first time it meets a
slide, as one killed by the operating system would."""
from __future__ import annotations

import os
from pathlib import Path

from model_training.slides.batch import score_case


def die_once(job, path: str) -> dict:
    """Kill this worker process the first time ``path`` is seen (a marker file remembers), then score it."""
    marker = Path(job.out) / f".killed-{Path(path).name}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        os._exit(137)  # noqa: SLF001 - no cleanup: the process vanishes as under SIGKILL
    return score_case(job, path)
