"""Batch scoring on an existing Dask cluster (``--scheduler``): a scheduler and workers started as processes of
their own, as dask-jobqueue starts them on a Slurm site. The command's slides are scored as one process scores
them; an address where no scheduler answers is named; a scheduler lost mid-run is said once, the slides it left
are named in cases.csv, and the same command run again finishes them.

Real inputs: small case slides built from real validation patches, scored with the shipped bundle's int8 copy."""
from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
import pytest
from case_slides import small_cases
from dask.distributed import Client
from test_batch import BUNDLE, _job, command_env, slides, wait_for  # noqa: F401 - slides: the module's fixture

from model_training.cli.slides import main as slides_cli
from model_training.slides.batch import run_batch
from model_training.slides.cases_csv import CASES_FILE, SCHEDULER_LOST, read_cases

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed


class _Cluster:
    """Dask processes started in ``node`` (a folder of their own), logging to ``node/cluster.log``; all stopped
    when the ``cluster`` context ends."""

    def __init__(self, node: Path):
        node.mkdir(exist_ok=True)
        self.node, self.procs = node, []
        self.log = (node / "cluster.log").open("ab")

    def scheduler(self) -> tuple[str, subprocess.Popen]:
        """A scheduler on a free port, once it answers: (its address, its process)."""
        port = _free_port()
        proc = self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                           "--dashboard-address", ":0")
        address = f"tcp://127.0.0.1:{port}"
        with Client(address, timeout=60):
            pass  # it is up
        return address, proc

    def workers(self, address: str, n: int) -> subprocess.Popen:
        return self._start("distributed.cli.dask_worker", address, "--nworkers", str(n), "--nthreads", "1",
                           "--no-dashboard")

    def _start(self, module: str, *args: str) -> subprocess.Popen:
        self.procs.append(subprocess.Popen([sys.executable, "-m", module, *args], cwd=self.node, env=command_env(),
                                           stdout=self.log, stderr=self.log))
        return self.procs[-1]

    def stop(self) -> None:
        for proc in self.procs[::-1]:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        self.log.close()


@contextmanager
def cluster(node: Path) -> Iterator[_Cluster]:
    c = _Cluster(node)
    try:
        yield c
    finally:
        c.stop()


def _command(names: list[str], address: str, cwd: Path, err: Path) -> subprocess.Popen:
    """The slides command, run from ``cwd`` on the cluster at ``address``; its stderr into ``err``."""
    with err.open("wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "model_training.slides", *names, "--out", "out", "--scheduler",
                                 address, "--model", str(BUNDLE), "--engine", "onnx-int8"], cwd=cwd, env=command_env(),
                                stdout=subprocess.DEVNULL, stderr=stderr)


def test_an_existing_cluster_started_elsewhere_scores_the_commands_slides_as_one_process_does(slides, tmp_path):
    """``--scheduler``: a Dask scheduler and two workers started as processes of their own in another folder (as
    dask-jobqueue starts them on a Slurm site) score the slides the command names relative to where it runs. The
    command, started before the workers, says it waits for them."""
    node, said = tmp_path / "node", tmp_path / "command.err"
    with cluster(node) as c:
        address, _ = c.scheduler()
        command = _command([p.name for p in slides], address, slides[0].parent, said)
        c.procs.append(command)
        waiting = f"the Dask scheduler at {address} has no workers yet: the slides wait for them"
        wait_for(lambda: waiting in said.read_text() or command.poll() is not None, 60)
        assert waiting in said.read_text() and command.poll() is None
        c.workers(address, 2)
        code = command.wait(300)
    assert code == 1, said.read_text()  # the broken slide
    table = read_cases(slides[0].parent / "out" / CASES_FILE)
    assert table.path.tolist() == [str(p.absolute()) for p in slides]  # where the app and workers find them
    assert table.status.str.startswith("failed: ").tolist() == [False, False, True, False]
    assert table.worker.nunique() == 2
    serial = run_batch(slides, _job(tmp_path / "serial"), progress=False)
    for p in (slides[0], slides[1], slides[3]):
        name = f"{p.name}.tiles.csv"
        assert (slides[0].parent / "out" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    assert [serial[i]["slide_score"] for i in (0, 1, 3)] == pytest.approx(table.slide_score[[0, 1, 3]].tolist())
    assert not list(node.glob("*.tiles.csv")) and not (node / "out").exists()  # nothing written where it runs


def test_a_scheduler_that_does_not_answer_is_named_and_nothing_is_written(slides, tmp_path, capsys):
    port = _free_port()  # nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        for address in (f"tcp://127.0.0.1:{port}", "head-node"):
            code = slides_cli([str(slides[0]), "--out", str(tmp_path / "out"), "--scheduler", address])
            assert code == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: the Dask scheduler at {address} cannot be reached: ")
            assert "Traceback" not in err
    assert not (tmp_path / "out" / CASES_FILE).exists()


def test_a_scheduler_lost_mid_run_is_said_once_and_the_same_command_finishes_the_slides(data_root, tmp_path):
    """The scheduler is killed (a Slurm job's time running out) once the first slide is written: the command
    says so in one line, without tracebacks, cases.csv names every slide it did not get to, and what the workers
    wrote stays. Run again on a new scheduler, the same command skips those slides and scores the rest."""
    folder = tmp_path / "slides"
    names = [p.name for p in small_cases(data_root, folder, 10, half=1, seed=6)]
    out, said = folder / "out", tmp_path / "command.err"
    with cluster(tmp_path / "node") as c:
        address, scheduler = c.scheduler()
        c.workers(address, 1)
        command = _command(names, address, folder, said)
        c.procs.append(command)
        assert wait_for(lambda: any(out.glob("*.summary.json")) or command.poll() is not None, 120)
        scheduler.kill()
        code = command.wait(120)
    err = said.read_text()
    assert code == 1, err
    table = read_cases(out / CASES_FILE)
    lost = table.status == f"failed: {SCHEDULER_LOST}"
    assert table.slide.tolist() == names and (lost | table.status.eq("scored")).all()
    assert lost.sum() >= 5  # a worker of one thread cannot have scored most of ten small slides by then
    assert (f"error: the connection to the Dask scheduler at {address} was lost: {lost.sum()} of 10 slide(s) were "
            "not scored") in err
    assert err.count("error:") == 1 and "Traceback" not in err and "Cancelled" not in err
    written = {n for n in names if (out / f"{n}.summary.json").exists()}
    assert set(table.slide[~lost]) <= written and len(written) < 10

    with cluster(tmp_path / "node") as c:
        address, _ = c.scheduler()
        c.workers(address, 1)
        command = _command(names, address, folder, said)
        c.procs.append(command)
        code = command.wait(300)
    assert code == 0, said.read_text()
    again = read_cases(out / CASES_FILE)
    assert again.status.tolist() == ["skipped" if n in written else "scored" for n in names]
    assert again.slide_score.notna().all()
