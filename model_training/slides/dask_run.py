"""Running a batch's tasks on Dask: one task per slide on a LocalCluster of this machine or an existing
cluster (``tcp://host:8786``, e.g. one started by dask-jobqueue on a Slurm site)."""
from __future__ import annotations

import logging
import signal
import sys
import threading
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import dask
from dask.distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError

from model_training.inference.predictor import scores_with_keras
from model_training.slides.cases_csv import SCHEDULER_LOST, failed_row
from model_training.slides.progress import BatchProgress, reporting_tiles


LOST = "scheduler-connection-lost"  # the Dask client's reason for the futures it cancels when that happens
# Where the client's and the cluster's teardown log, with tracebacks, the callbacks that Ctrl-C cut short
TEARDOWN_LOGGERS = ("tornado.application", "asyncio", "distributed")


def start_method(bundle: str | Path, engine: str) -> str:
    """How a LocalCluster starts its workers for this bundle and engine: ``fork`` on Linux where they score
    with ONNX Runtime, ``spawn`` otherwise.

    A spawned worker is a fresh interpreter that imports Dask, the slide pipeline and ONNX Runtime again: on
    2 cores starting two took 0.8 s and closing them 0.2 s, a sixth of a batch of six small slides. A forked
    one has this process's imports already (0.1 s). TensorFlow does not survive a fork (its runtime's threads
    stay behind), so workers that score with Keras are spawned, as they are where fork is not the platform's
    safe default (macOS, Windows).
    """
    if sys.platform != "linux" or scores_with_keras(Path(bundle), engine):
        return "spawn"
    return "fork"


@contextmanager
def local_cluster(workers: int, method: str = "spawn") -> Iterator[LocalCluster]:
    """A LocalCluster of ``workers`` processes, one thread each, started with ``method`` (see
    ``start_method``): the model's own threads do the parallel work inside a slide.

    The settings hold while the cluster lives, so a worker that dies is replaced the same way. Dask's nannies
    start workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (against fragmentation in long-lived workers). Setting
    it turns off glibc's adaptive mmap threshold, so every tile batch and block of a slide, megabytes each, is
    mapped and zeroed afresh: on two cores that cost an eighth of the throughput. These workers keep the
    allocator's default; the nannies' other variables stay. Nor do they sample their own stacks every 10 ms
    for a dashboard that this cluster does not serve.
    """
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    settings = {"distributed.worker.multiprocessing-method": method, "distributed.nanny.pre-spawn-environ": environ,
                "distributed.worker.profile.enabled": False}
    with dask.config.set(settings), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 dashboard_address=None) as cluster:
        yield cluster


def mute(names: tuple[str, ...] = TEARDOWN_LOGGERS) -> None:
    """Silence the loggers ``names`` (their levels above CRITICAL)."""
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextmanager
def levels_kept(names: tuple[str, ...]) -> Iterator[None]:
    """The loggers ``names`` get back the levels they had when the block began, whatever it set."""
    saved = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def muted(names: tuple[str, ...]) -> Iterator[None]:
    """The loggers ``names`` silent while the block runs; their levels come back after it."""
    with levels_kept(names):
        mute(names)
        yield


@contextmanager
def quiet_after_interrupt() -> Iterator[None]:
    """While the block runs, Ctrl-C first silences the loggers Dask's teardown writes to (``TEARDOWN_LOGGERS``),
    then interrupts as before: the command says in one line what finished, and the tracebacks of callbacks cut
    short say nothing more. Muting in the signal handler, before the interrupt unwinds anything, also covers the
    callbacks the interrupted call schedules on Dask's event-loop thread at once. The handler and the levels come
    back on leaving, after the client and the cluster have closed. Where signals cannot be handled here (not the
    main thread) or Ctrl-C is not Python's to handle, nothing changes."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def interrupted(signum, frame) -> None:
        mute()
        previous(signum, frame)  # Python's own raises KeyboardInterrupt

    with levels_kept(TEARDOWN_LOGGERS):
        signal.signal(signal.SIGINT, interrupted)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class QuietWorkerLogs(WorkerPlugin):
    """Silences Dask's own logs (``TEARDOWN_LOGGERS``) in the workers of a LocalCluster this process started.
    What goes wrong in a worker reaches the user as its slide's ``failed`` row, and the nannies, which log a
    worker's death, run in this process; what the workers would add is heartbeat and connection tracebacks
    when the cluster closes under them (after Ctrl-C, most often)."""

    name = "pathreview-quiet-logs"

    def setup(self, worker) -> None:
        mute()


def reporting_task(task: Callable, job, path: str, slide: int, topic: str) -> dict:
    """``task(job, path)`` on a Dask worker, its slide's tiles reported on the event ``topic`` as it scores."""
    worker = get_worker()
    with reporting_tiles(lambda done: worker.log_event(topic, [slide, done])):
        return task(job, path)


def run_on_dask(paths: list[Path], job, workers: int, scheduler: str | None, task: Callable,
                counts: BatchProgress, retries: int, rows: list[dict | None]) -> None:
    """The row of ``task(job, path)`` for each path, put in its place in ``rows`` as its slide finishes; a task
    that still fails after ``retries`` (or whose workers keep dying) becomes a ``failed`` row naming the reason;
    every slide not finished when the connection to the scheduler is lost gets ``SCHEDULER_LOST`` as its reason
    (what finished stays written, and a re-run skips it). ``counts`` follows the slides and their tiles as the
    workers score them. ``ConnectionError`` when no scheduler answers at ``scheduler``."""
    with quiet_after_interrupt(), ExitStack() as stack:  # the stack (client, cluster) closes first
        own = scheduler is None
        if own:
            scheduler = stack.enter_context(local_cluster(workers, start_method(job.bundle, job.engine)))
        try:
            client = stack.enter_context(Client(scheduler))
        except (OSError, ValueError, TypeError) as exc:  # an address that does not answer, or is not one
            raise ConnectionError(f"the Dask scheduler at {scheduler} cannot be reached: {exc}") from exc
        if own:  # a shared cluster's workers log as their owners set them
            client.register_plugin(QuietWorkerLogs())
        if not client.scheduler_info().get("workers"):  # e.g. a Slurm site's worker jobs still in the queue
            counts.say(f"the Dask scheduler at {scheduler} has no workers yet: the slides wait for them")
        topic = f"tiles-{uuid.uuid4().hex}"  # this batch's own: a shared cluster may run others
        client.subscribe_topic(topic, lambda event: counts.scoring(*event[1]))
        futures = {client.submit(reporting_task, task, job, str(p), i, topic, key=f"slide-{i}-{p.name}", pure=False,
                                 retries=retries): i
                   for i, p in enumerate(paths)}
        if _collect(client, futures, paths, counts, rows):
            close_lost_client(client)
        else:
            client.unsubscribe_topic(topic)


def _collect(client: Client, futures: dict, paths: list[Path], counts: BatchProgress,
             rows: list[dict | None]) -> bool:
    """Each slide's row into ``rows`` as its future finishes; whether the connection to the scheduler was lost."""
    lost = False
    for fut in as_completed(futures):
        i = futures[fut]
        try:
            rows[i] = fut.result()
        except Exception as exc:  # noqa: BLE001 - any error of one slide is that slide's, reported
            gone = _connection_lost(client, exc)
            lost |= gone
            rows[i] = failed_row(paths[i], SCHEDULER_LOST if gone else
                                 f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        counts.finished(i, int(rows[i].get("tiles_scored") or 0))
    return lost


def _connection_lost(client: Client, exc: Exception) -> bool:
    """True when ``exc`` came from losing the scheduler, not from the slide: the futures it cancels, or a result
    whose fetch the closing connection cut short."""
    cancelled = isinstance(exc, FutureCancelledError) and exc.reason == LOST
    return cancelled or isinstance(exc, CommClosedError) or client.status != "running"


def close_lost_client(client: Client) -> None:
    """Close a client whose scheduler went away. It is still trying to reconnect, and closing it cancels that
    attempt, which Dask logs as an error with two tracebacks; the caller reports the loss once, in its words."""
    with muted(("distributed.client",)):
        client.close()
