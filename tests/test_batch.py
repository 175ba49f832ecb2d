"""Batch scoring: the same cases.csv and outputs from one process and from a Dask LocalCluster, a killed
worker's slide scored again, a broken slide named while the rest are scored, a re-run skipping finished slides
(an existing cluster of separately started processes, ``--scheduler``, is ``test_batch_cluster.py``'s).

Real inputs: small case slides built here from real validation patches, scored with the shipped bundle's int8
copy on 2 worker processes."""
from __future__ import annotations

from pathlib import Path

import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from batch_tasks import die_once
from case_slides import small_cases

from app.store.cases import worklist
from model_training.bundle.files import DEFAULT_BUNDLE, sha256
from model_training.cli.slides import main as slides_cli
from model_training.slides.batch import BatchJob, run_batch, worker_predictor
from model_training.slides.cases_csv import CASES_FILE, COLUMNS, INTERRUPTED, read_cases
from model_training.slides.dask_run import start_method
from model_training.slides.manifest import read_manifest
from model_training.slides.progress import BatchProgress
from model_training.slides.run import SlideSettings

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_BUNDLE
VARYING = ["worker", "overview_s", "scoring_s", "total_s"]  # where and how fast, not what


@pytest.fixture(scope="module")
def slides(data_root, tmp_path_factory) -> list[Path]:
    """Three small case slides (one with a metastasis) and a file that is not a slide."""
    folder = tmp_path_factory.mktemp("cases")
    paths = small_cases(data_root, folder, 3, half=1, seed=5)
    broken = folder / "broken.tiff"
    broken.write_bytes(b"II*\x00 this is not a TIFF")
    return [*paths[:2], broken, paths[2]]


def command_env() -> dict:
    """The environment for running the project's commands as processes of their own, with no review store."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PATHREVIEW_DB_URL", None)
    return env


def wait_for(condition, seconds: float, every: float = 0.1) -> bool:
    """Poll ``condition`` every ``every`` seconds until it holds or ``seconds`` have passed; whether it holds."""
    for _ in range(int(seconds / every)):
        if condition():
            return True
        time.sleep(every)
    return condition()


def _job(out: Path, **kw) -> BatchJob:
    return BatchJob(str(BUNDLE), "onnx-int8", str(out), **kw)


def test_dask_gives_the_serial_results_and_names_the_broken_slide(slides, tmp_path):
    serial = run_batch(slides, _job(tmp_path / "serial"), progress=False)
    dask = run_batch(slides, _job(tmp_path / "dask"), workers=2, progress=False)
    assert [r["slide"] for r in dask] == [p.name for p in slides]
    assert [r["status"] for r in dask] == ["scored", "scored", "failed: " + dask[2]["status"][8:], "scored"]
    assert dask[2]["status"].startswith("failed: ") and len(dask[2]["status"]) > len("failed: ") + 5
    for a, b in zip(serial, dask):
        assert {k: v for k, v in a.items() if k not in VARYING} == {k: v for k, v in b.items() if k not in VARYING}
    for p in (slides[0], slides[1], slides[3]):
        name = f"{p.name}.tiles.csv"
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()
    assert len({r["worker"] for r in dask}) == 2  # the slides really were spread over both workers
    table = read_cases(tmp_path / "dask" / CASES_FILE)
    assert list(table.columns) == COLUMNS and len(table) == 4
    assert table.loc[0, "sha256"] == serial[0]["sha256"] and len(table.loc[0, "sha256"]) == 64
    assert table.tiles_scored.iloc[[0, 1, 3]].gt(0).all()


def test_a_killed_workers_slide_is_scored_again(slides, tmp_path):
    good = [slides[0], slides[3]]
    rows = run_batch(good, _job(tmp_path), workers=2, progress=False, task=die_once)
    assert [r["status"] for r in rows] == ["scored", "scored"]
    killed = {int((tmp_path / f".killed-{p.name}").read_text()) for p in good}
    # each slide was first taken by a worker that died; the row comes from a live one
    assert all(int(r["worker"].split()[-1]) not in killed for r in rows)
    assert all((tmp_path / f"{p.name}.summary.json").exists() for p in good)


def test_a_rerun_skips_finished_slides_and_keeps_their_answer(slides, tmp_path):
    first = run_batch(slides[:2], _job(tmp_path), progress=False)
    again = run_batch(slides[:2], _job(tmp_path), progress=False)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert [r["slide_score"] for r in again] == [r["slide_score"] for r in first]
    forced = run_batch(slides[:1], _job(tmp_path, force=True), progress=False)
    assert forced[0]["status"] == "scored"


def test_a_manifest_names_slides_relative_to_itself(tmp_path):
    (tmp_path / "list.txt").write_text("# today's slides\na.svs\n/abs/b.tiff\n\n")
    assert read_manifest(tmp_path / "list.txt") == [tmp_path / "a.svs", Path("/abs/b.tiff")]
    pd.DataFrame({"slide": ["x"], "path": ["sub/x.svs"]}).to_csv(tmp_path / "m.csv", index=False)
    assert read_manifest(tmp_path / "m.csv") == [tmp_path / "sub" / "x.svs"]
    # a spreadsheet's export: a byte-order mark, a "Slide" column, a quoted name with a comma, an empty cell
    (tmp_path / "s.csv").write_text('\ufeffCase,Slide\n1,"node 3, left.svs"\n2,\n3,c.svs\n', encoding="utf-8")
    assert read_manifest(tmp_path / "s.csv") == [tmp_path / "node 3, left.svs", tmp_path / "c.svs"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="empty.txt: the manifest names no slides"):
        read_manifest(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="absent.txt: the manifest cannot be read: No such file or directory"):
        read_manifest(tmp_path / "absent.txt")
    (tmp_path / "scan.txt").write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a list")
    with pytest.raises(ValueError, match="scan.txt: the manifest is not a text file"):
        read_manifest(tmp_path / "scan.txt")


def test_the_command_names_what_it_cannot_use(tmp_path, capsys):
    """An unreadable manifest and a worker count under one are named before anything is scored."""
    assert slides_cli(["--manifest", str(tmp_path / "absent.txt"), "--out", str(tmp_path / "out")]) == 2
    assert "absent.txt: the manifest cannot be read: No such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        slides_cli([str(tmp_path / "a.svs"), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert stop.value.code == 2 and "--workers must be 1 or more (got 0)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_slides_of_the_same_file_name_do_not_share_outputs(slides, tmp_path):
    """Outputs are named after the slide's file name: a second file of that name in the same batch is named with
    the reason and not scored, and a file listed twice is scored once; the outputs are the first file's."""
    other = tmp_path / "other"
    other.mkdir()
    twin = other / slides[0].name
    shutil.copy(slides[1], twin)  # another slide under the first one's name
    out = tmp_path / "out"
    rows = run_batch([slides[0], twin, slides[3], slides[3]], _job(out), progress=False)
    assert [r["status"][:8] for r in rows] == ["scored", "failed: ", "scored", "failed: "]
    assert rows[1]["status"] == (f"failed: has the same file name as {slides[0]}, earlier in this batch, whose "
                                 "outputs would be overwritten; score it with another --out")
    assert rows[3]["status"] == "failed: listed twice in this batch"
    summary = json.loads((out / f"{slides[0].name}.summary.json").read_text())
    assert summary["slide_sha256"] == rows[0]["sha256"] == sha256(slides[0])
    assert list(read_cases(out / CASES_FILE).status) == [r["status"] for r in rows]


def test_a_slide_replaced_under_its_name_is_scored_again(slides, tmp_path):
    """A re-run skips a slide only when its outputs were made from the same file: a slide scanned again under the
    same name (here another case slide copied over it) is scored afresh, and its row carries its own answer."""
    folder = tmp_path / "slides"
    folder.mkdir()
    slide = folder / "today.tiff"
    shutil.copy(slides[0], slide)
    first = run_batch([slide], _job(tmp_path / "out"), progress=False)
    shutil.copy(slides[3], slide)  # the metastasis slide, under the same name
    again = run_batch([slide], _job(tmp_path / "out"), progress=False)
    alone = run_batch([slides[3]], _job(tmp_path / "alone"), progress=False)
    assert again[0]["status"] == "scored" and again[0]["sha256"] == sha256(slides[3]) != first[0]["sha256"]
    assert again[0]["slide_score"] == alone[0]["slide_score"] != first[0]["slide_score"]
    assert run_batch([slide], _job(tmp_path / "out"), progress=False)[0]["status"] == "skipped"
    # outputs that do not say which file they were made from are not trusted either
    summary_path = tmp_path / "out" / "today.tiff.summary.json"
    summary = json.loads(summary_path.read_text())
    del summary["slide_sha256"]
    summary_path.write_text(json.dumps(summary))
    assert run_batch([slide], _job(tmp_path / "out"), progress=False)[0]["status"] == "scored"


def test_a_slide_whose_outputs_cannot_be_written_is_named_and_the_others_finish(slides, tmp_path):
    """One process writes a slide's outputs while it scores the next: a write that fails (here the GeoJSON's
    temporary name is taken by a folder) fails that slide alone, with the reason, and leaves no summary."""
    good = [slides[0], slides[1], slides[3]]
    (tmp_path / f"{slides[1].name}.geojson.part").mkdir(parents=True)
    rows = run_batch(good, _job(tmp_path), progress=False)
    assert [r["slide"] for r in rows] == [p.name for p in good]
    assert [r["status"] for r in rows][::2] == ["scored", "scored"]
    assert rows[1]["status"].startswith("failed: ") and "directory" in rows[1]["status"].lower()
    assert len(rows[1]["sha256"]) == 64  # the file itself was read and hashed
    assert not (tmp_path / f"{slides[1].name}.summary.json").exists()
    assert all((tmp_path / f"{p.name}.summary.json").exists() for p in good[::2])
    assert read_cases(tmp_path / CASES_FILE).status.tolist() == [r["status"] for r in rows]


def test_local_workers_are_forked_unless_they_score_with_keras(tmp_path):
    """Forked workers start with this process's imports; TensorFlow does not survive a fork, so Keras-scoring
    workers (asked for, or a bundle with no ONNX copy under "auto") are spawned."""
    linux = sys.platform == "linux"
    assert start_method(BUNDLE, "onnx-int8") == start_method(BUNDLE, "auto") == ("fork" if linux else "spawn")
    assert start_method(BUNDLE, "keras") == "spawn"
    keras_only = tmp_path / "keras-only"
    shutil.copytree(BUNDLE, keras_only, ignore=shutil.ignore_patterns("*.onnx"))
    card = json.loads((keras_only / "model_card.json").read_text())
    (keras_only / "model_card.json").write_text(json.dumps({**card, "onnx": None, "onnx_int8": None}))
    assert start_method(keras_only, "auto") == "spawn"


def _score_in_child(job: BatchJob, tiles: np.ndarray, parents: int, answer) -> None:
    pred = worker_predictor(job)
    answer.put((id(pred) != parents, pred.logits(tiles)))


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_forked_worker_loads_its_own_engine(valid_tiles):
    """A forked worker inherits its parent's loaded model, but not the engine's threads: it loads its own, and
    scores the same as its parent."""
    tiles = valid_tiles[0]
    job = _job(Path("unused"), threads=2)
    want = worker_predictor(job).logits(tiles)
    ctx = mp.get_context("fork")
    answer = ctx.Queue()
    child = ctx.Process(target=_score_in_child, args=(job, tiles, id(worker_predictor(job)), answer))
    child.start()
    child.join(120)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0
    own, got = answer.get(timeout=5)
    assert own and np.array_equal(got, want)


class _Recorded(BatchProgress):
    """A batch's progress with every report it got kept: (slide, tiles so far) and ("done", slide, tiles)."""

    def __init__(self, slides: int):
        super().__init__(slides, show=False)
        self.reports: list[tuple] = []

    def scoring(self, slide: int, tiles: int) -> None:
        self.reports.append((slide, tiles))
        super().scoring(slide, tiles)

    def finished(self, slide: int, tiles: int) -> None:
        self.reports.append(("done", slide, tiles))
        super().finished(slide, tiles)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_progress_counts_tiles_while_a_slide_is_scored(slides, tmp_path, workers):
    """The bar counts tiles as each batch of a slide is scored, in this process and from Dask workers, not only
    when the slide is done; a slide that fails counts as done with none."""
    counts = _Recorded(len(slides))
    job = _job(tmp_path, settings=SlideSettings(batch=4))
    rows = run_batch(slides, job, workers=workers, progress=counts)
    for i, row in enumerate(rows):
        live = [tiles for r in counts.reports if r[0] == i for tiles in r[1:]]
        assert ("done", i, int(row["tiles_scored"] or 0)) in counts.reports
        if row["status"] == "scored":  # each batch of 4 reported on the way, before the row
            n = int(row["tiles_scored"])
            every = list(range(4, n, 4)) + [n]
            # Dask's reports travel through the scheduler, and the last may still be on its way when the row is
            assert live == every if workers == 1 else live == every[:len(live)] and len(live) >= 2
            assert counts.reports.index((i, 4)) < counts.reports.index(("done", i, n))
        else:
            assert live == []
    assert counts.tiles == sum(int(r["tiles_scored"] or 0) for r in rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_keeps_what_finished_and_the_same_command_scores_the_rest(data_root, tmp_path, workers):
    """Ctrl-C once the first slide is written: the command says in one line what finished and what was not
    scored, without a traceback, and cases.csv names both; the finished slides reach the Cases worklist at
    once; run again, it skips what was written and the worklist gets the rest."""
    folder = tmp_path / "slides"
    names = [p.name for p in small_cases(data_root, folder, 16, half=1, seed=7)]
    out = folder / "out"
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    command = [sys.executable, "-m", "model_training.slides", *names, "--out", "out", "--model", str(BUNDLE),
               "--engine", "onnx-int8", "--workers", str(workers), "--db", store]
    env = command_env()
    proc = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: any(out.glob("*.summary.json")) or proc.poll() is not None, 120, every=0.02)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 130, err
    table = read_cases(out / CASES_FILE)
    left = table.status == f"failed: {INTERRUPTED}"
    assert table.slide.tolist() == names and (left | table.status.eq("scored")).all() and left.sum() >= 4
    assert f"interrupted: {(~left).sum()} of 16 slide(s) finished, {left.sum()} not scored" in err
    assert "Traceback" not in err and "Cancelled" not in err
    written = {n for n in names if (out / f"{n}.summary.json").exists()}
    assert set(table.slide[~left]) <= written and len(written) < 16
    assert sorted(worklist(url=store).slide) == sorted(table.slide[~left])
    again = subprocess.run(command, cwd=folder, env=env, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()
    assert read_cases(out / CASES_FILE).status.tolist() == ["skipped" if n in written else "scored" for n in names]
    assert sorted(worklist(url=store).slide) == sorted(names)
