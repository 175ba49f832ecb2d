"""Running a batch's tasks on Dask: one task per slide on a LocalCluster of this machine or an existing
cluster (``tcp://host:8786``, e.g. one started by dask-jobqueue on a Slurm site)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import dask
from dask.distributed import Client, LocalCluster, as_completed

from model_training.slides.cases_csv import failed_row


def local_cluster(workers: int) -> LocalCluster:
    """A LocalCluster of ``workers`` processes, one thread each: the model's own threads do the parallel work
    inside a slide.

    Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (against fragmentation in long-lived
    workers). Setting it turns off glibc's adaptive mmap threshold, so every tile batch and block of a slide,
    megabytes each, is mapped and zeroed afresh: on two cores that cost an eighth of the throughput. These
    workers keep the allocator's default; the nannies' other variables stay. Nor do they sample their own
    stacks every 10 ms for a dashboard that this cluster does not serve.
    """
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    # read once, by each nanny, which hands them on to the worker it starts (and restarts)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ, "distributed.worker.profile.enabled": False}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)


def run_on_dask(paths: list[Path], job, workers: int, scheduler: str | None, task: Callable,
                done: Callable[[dict], None], retries: int) -> list[dict]:
    """The rows of ``task(job, path)`` for each path, in order; a task that still fails after ``retries``
    (or whose workers keep dying) becomes a ``failed`` row naming the reason."""
    cluster = local_cluster(workers) if scheduler is None else None
    client = Client(scheduler or cluster)
    try:
        futures = {client.submit(task, job, str(p), key=f"slide-{i}-{p.name}", pure=False, retries=retries): i
                   for i, p in enumerate(paths)}
        rows: list[dict | None] = [None] * len(paths)
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                rows[i] = fut.result()
            except Exception as exc:  # noqa: BLE001 - any error of one slide is that slide's, reported
                rows[i] = failed_row(paths[i], f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
            done(rows[i])
        return rows
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
