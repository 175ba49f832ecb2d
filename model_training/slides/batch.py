"""Batch scoring: one task per slide, in this process or on Dask (a LocalCluster of ``workers`` processes, or an
existing cluster at ``scheduler``), and ``OUT/cases.csv`` at the end.

Every slide goes through ``start_case`` (scored, then written), wherever it runs, so a Dask run gives the same
outputs as the serial one on the same engine; in one process a slide is written while the next is scored. Each
process loads the model once (``worker_predictor``). A slide that cannot be read gets ``failed: reason`` and the
others finish; any other error is retried by Dask (``RETRIES``), and a worker
that dies mid-slide is replaced and its slide scored again by another. Outputs are written atomically, and a
slide whose summary records the same model and settings is skipped.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from model_training.bundle.files import sha256
from model_training.inference.predictor import Predictor
from model_training.slides.cases_csv import INTERRUPTED, failed_row, row_from_summary, write_cases
from model_training.slides.progress import BatchProgress, TileReport, reporting_tiles, tile_report
from model_training.slides.reader import SlideError
from model_training.slides.run import SlideSettings, already_done, output_stem, score_file, write_outputs
from model_training.slides.scoring import SlideResult

RETRIES = 2


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a batch; ``cases.csv`` was written first. ``rows``: its rows, the slides not
    finished with ``INTERRUPTED`` as their reason."""

    def __init__(self, rows: list[dict]):
        super().__init__()
        self.rows = rows


_PREDICTORS: dict[tuple, Predictor] = {}
_PARENTS: list[Predictor] = []


def _set_parents_predictors_aside() -> None:
    # a forked worker (see dask_run.start_method) cannot score with its parent's engines, whose threads stayed
    # behind, nor free them (freeing one waits for those threads): they are kept aside, and it loads its own
    _PARENTS.extend(_PREDICTORS.values())
    _PREDICTORS.clear()


os.register_at_fork(after_in_child=_set_parents_predictors_aside)


@dataclass(frozen=True)
class BatchJob:
    """What every task needs: the bundle and engine, the output folder, the scoring settings."""

    bundle: str
    engine: str
    out: str
    settings: SlideSettings = SlideSettings()
    force: bool = False
    threads: int | None = None  # scoring threads per process (None: all cores)

    def __post_init__(self) -> None:
        # absolute, as the slide paths are in run_batch: an existing cluster's workers start in folders of their
        # own, and the app reads cases.csv's paths from its own
        object.__setattr__(self, "bundle", str(Path(self.bundle).absolute()))
        object.__setattr__(self, "out", str(Path(self.out).absolute()))


def worker_predictor(job: BatchJob) -> Predictor:
    """The process's Predictor for ``job``'s bundle and engine, loaded on first use and then kept."""
    key = (job.bundle, job.engine, job.threads)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = Predictor.load(job.bundle, engine=job.engine, threads=job.threads)
    return _PREDICTORS[key]


def warm_up(job: BatchJob) -> str:
    """Load the model in this process (a Dask worker, before its first slide); the engine's name."""
    return worker_predictor(job).engine.name


def _where() -> str:
    return f"pid {os.getpid()}"


def score_case(job: BatchJob, path: str) -> dict:
    """Score one slide (or find it already scored), write its outputs and return its cases.csv row."""
    return start_case(job, path)()


def start_case(job: BatchJob, path: str) -> Callable[[], dict]:
    """Score one slide (or find it already scored); returns what finishes it: writing its outputs and giving
    its cases.csv row. The one-process batch writes a slide while it scores the next."""
    path = Path(path)
    # the file is hashed in a thread while it is scored: hashing a slide reads all of it, a fifth of the time
    # a small slide takes to score, and it waits mostly on the disk and not on the model's cores
    pool = ThreadPoolExecutor(1, thread_name_prefix="sha256")
    hashing = pool.submit(sha256, path)
    pool.shutdown(wait=False)
    status, found = _score(job, path, tile_report(), hashing.result)

    def finish() -> dict:
        try:
            digest = hashing.result()
        except OSError as exc:
            return failed_row(path, _reason(exc), worker=_where())
        failure = found if status == "failed" else None
        if status == "scored":
            found.summary["slide_sha256"] = digest  # a re-run skips the slide only when it is this same file
            try:
                write_outputs(found, path, Path(job.out))
            except OSError as exc:
                failure = _reason(exc)
        if failure is not None:
            return failed_row(path, failure, digest, _where())
        return row_from_summary(path, found.summary if status == "scored" else found, status, digest, _where())

    return finish


def _score(job: BatchJob, path: Path, on_tiles: TileReport | None,
           digest: Callable[[], str]) -> tuple[str, SlideResult | dict | str]:
    """("scored", the result to write), ("skipped", the summary already written) or ("failed", the reason).
    ``digest`` gives the slide file's sha256, for ``already_done``."""
    pred = worker_predictor(job)
    summary_path = Path(job.out) / f"{output_stem(path)}.summary.json"
    if not job.force and (summary := already_done(summary_path, job.settings.identity(pred), digest)) is not None:
        return "skipped", summary
    try:
        return "scored", score_file(pred, path, job.settings, progress=False, on_tiles=on_tiles)
    except SlideError as exc:
        return "failed", exc.reason
    except OSError as exc:
        return "failed", _reason(exc)


def _reason(exc: OSError) -> str:
    """A file error as a cases.csv reason: the system's words ("No such file or directory"), or the message."""
    return exc.strerror or str(exc)


def run_batch(paths: Iterable[Path], job: BatchJob, *, workers: int = 1, scheduler: str | None = None,
              progress: bool | BatchProgress = True, task: Callable[[BatchJob, str], dict] = score_case) -> list[dict]:
    """Score ``paths`` (serially, or on Dask when ``workers`` > 1 or a ``scheduler`` is given), write
    ``cases.csv`` in ``job.out`` and return its rows in the order of ``paths``. ``progress``: a bar of slides
    and tiles where stderr is a terminal (or a ``BatchProgress`` to count on). ``task`` is the Dask task (for
    tests). Ctrl-C writes ``cases.csv`` with what finished, then raises ``BatchInterrupted``."""
    paths = [Path(p).absolute() for p in paths]  # not resolved: a link keeps its name as the slide's name
    clashes = name_clashes(paths)
    todo = [p for i, p in enumerate(paths) if i not in clashes]
    counts = progress if isinstance(progress, BatchProgress) else BatchProgress(len(todo), show=progress)
    rows: list[dict | None] = [None] * len(todo)  # filled as slides finish, so an interruption keeps them

    def in_order(unfinished: str | None = None) -> list[dict]:
        finished = iter(rows)
        return [failed_row(p, clashes[i]) if i in clashes else next(finished) or failed_row(p, unfinished)
                for i, p in enumerate(paths)]

    try:
        if workers <= 1 and scheduler is None:
            _one_process(todo, job, counts, rows)
        else:
            from model_training.slides.dask_run import run_on_dask  # Dask loads only for a Dask run

            cores = os.cpu_count() or 1
            threads = job.threads or (max(1, cores // workers) if scheduler is None else None)
            run_on_dask(todo, replace(job, threads=threads), workers, scheduler, task, counts, RETRIES, rows)
    except KeyboardInterrupt:
        # what finished is on disk already; cases.csv says which slides those are before the batch stops
        done = in_order(INTERRUPTED)
        write_cases(Path(job.out), done)
        raise BatchInterrupted(done) from None
    finally:
        counts.close()
    done = in_order()
    write_cases(Path(job.out), done)
    return done


def name_clashes(paths: list[Path]) -> dict[int, str]:
    """The slides of ``paths`` that are not scored because their outputs would overwrite an earlier slide's (the
    same file name; outputs are named after it), by index, with the reason cases.csv gives."""
    first: dict[str, Path] = {}
    clashes = {}
    for i, p in enumerate(paths):
        earlier = first.get(output_stem(p))
        if earlier is None:
            first[output_stem(p)] = p
        else:
            clashes[i] = ("listed twice in this batch" if earlier == p else
                          f"has the same file name as {earlier}, earlier in this batch, whose outputs would be "
                          "overwritten; score it with another --out")
    return clashes


def _one_process(paths: list[Path], job: BatchJob, counts: BatchProgress, rows: list[dict | None]) -> None:
    """The slides one after another in this process, into ``rows``, each slide's outputs written in a thread
    while the next is scored: on two cores six small slides took 5.1-5.3 s instead of 5.2-5.5 s."""

    def collect(i: int, finishing) -> None:
        rows[i] = finishing.result()
        counts.finished(i, int(rows[i].get("tiles_scored") or 0))

    with ThreadPoolExecutor(1, thread_name_prefix="slide-outputs") as writer:
        finishing = None  # (index, the future writing that slide)
        try:
            for i, p in enumerate(paths):
                with reporting_tiles(lambda done, i=i: counts.scoring(i, done)):
                    finish = start_case(job, str(p))
                if finishing is not None:
                    collect(*finishing)
                    finishing = None
                finishing = (i, writer.submit(finish))
        finally:
            if finishing is not None:  # the slide being written is finished, even when the batch is interrupted
                collect(*finishing)
