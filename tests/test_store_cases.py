"""Cases in the review store (SQLite file and real PostgreSQL): a batch run's slides added once, the worklist
by slide score with its status, append-only slide-level sign-outs under the reviewer's identity, the
``python -m app.store add-cases`` command and a batch command that adds its slides. The slides are small case
slides built from real validation patches and scored by the batch code with the shipped bundle (``batch_dir``
in conftest.py)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from case_slides import small_cases
from sqlalchemy.exc import DBAPIError

from app.store import (Reviewer, ReviewRefused, add_batch, case_of_file, case_status, get_case, record_signout,
                       signout_history, signouts_frame, worklist)
from app.store import db
from app.store.__main__ import main as store_cli
from model_training.cli.slides import main as slides_cli
from model_training.slides.cases_csv import CASES_FILE, read_cases
from model_training.slides.tiles_csv import read_tiles

ROOT = Path(__file__).resolve().parent.parent


def test_a_batch_is_added_once_and_listed_by_slide_score(batch_dir, store_url):
    res = add_batch(batch_dir, {"case-2.tiff": 1, "case-0.tiff": 0}, url=store_url)
    assert res["added"] == 3 and res["already"] == 0
    assert len(res["not_scored"]) == 1 and res["not_scored"][0].startswith("broken.tiff: failed: ")
    assert add_batch(batch_dir, url=store_url)["already"] == 3  # a second add changes nothing
    wl = worklist(url=store_url)
    assert len(wl) == 3 and list(wl.slide_score) == sorted(wl.slide_score, reverse=True)
    assert set(wl.status) == {"new"}
    truth = dict(zip(wl.slide, wl.truth))
    assert truth["case-2.tiff"] == 1 and truth["case-0.tiff"] == 0 and pd.isna(truth["case-1.tiff"])
    case = get_case(int(wl.id[0]), url=store_url)
    scored = read_tiles(batch_dir / f"{case['slide']}.tiles.csv")
    pd.testing.assert_frame_equal(case["tiles"], scored)  # the tiles as scored, not rescored
    # the file calls tumour the flagged tiles; the case opens with the tile threshold's calls as its decision
    raw = pd.read_csv(batch_dir / f"{case['slide']}.tiles.csv")
    assert (raw.tile_call == case["tiles"].decision).all() and ((raw.decision == "tumour") == raw.flagged).all()
    assert case["summary"]["slide_level"]["slide_score"] == pytest.approx(case["slide_score"])
    # a slide file finds its case: by where it is (not its name alone), for the model that scored it
    assert case_of_file(case["path"], case["model_sha256"], url=store_url) == case["id"]
    assert case_of_file(case["path"], "0" * 64, url=store_url) is None
    assert case_of_file(batch_dir / Path(case["path"]).name, case["model_sha256"], url=store_url) is None


def test_outputs_of_another_file_are_not_added(batch_dir, store_url, tmp_path):
    """cases.csv names each slide file by its sha256 and the summary records the file it was made from: a batch
    folder where the two disagree (outputs copied between runs, or a run's cases.csv over another's outputs) adds
    that slide to nobody's worklist, and says why."""
    out = tmp_path / "out"
    shutil.copytree(batch_dir, out)
    table = read_cases(out / CASES_FILE)
    table.loc[table.slide == "case-1.tiff", "sha256"] = "ab" * 32
    table.to_csv(out / CASES_FILE, index=False)
    res = add_batch(out, url=store_url)
    assert res["added"] == 2 and "case-1.tiff" not in set(worklist(url=store_url).slide)
    assert "case-1.tiff: its outputs were made from another file than the one cases.csv names (sha256 ababababab" \
           "ab…); score it again" in res["not_scored"]


def test_sign_outs_set_the_status_and_cannot_be_changed(batch_dir, store_url):
    add_batch(batch_dir, url=store_url)
    first = int(worklist(url=store_url).id[0])
    assert case_status(first, url=store_url) == "new"
    ann = Reviewer("Dr Ann")
    record_signout(first, ann, "defer", "needs IHC", url=store_url)
    assert worklist(url=store_url).set_index("id").loc[first, "status"] == "in review"
    assert case_status(first, url=store_url) == "in review"  # one case's status, by the worklist's rule
    record_signout(first, ann, "metastasis", "IHC positive", url=store_url)
    row = worklist(url=store_url).set_index("id").loc[first]
    assert (row.status, row.call, row.reviewer, row.comment) == ("signed out", "metastasis", "Dr Ann", "IHC positive")
    assert case_status(first, url=store_url) == "signed out"
    signed = Reviewer("ann@example.org", verified=True, subject="https://idp|123")
    record_signout(first, signed, "no_metastasis", url=store_url)
    frame = signouts_frame(url=store_url)
    assert sorted(frame.call) == ["metastasis", "no_metastasis"]  # Dr Ann's latest, and the signed-in one
    for bad, msg in (((first, "", "defer"), "needs a reviewer"), ((first, ann, "maybe"), "must be one of"),
                     ((99999, ann, "defer"), "no case #99999")):
        with pytest.raises(ReviewRefused, match=msg):
            record_signout(*bad, url=store_url)
    eng = db.engine(store_url)
    for sql in ("UPDATE slide_signouts SET call = 'defer'", "DELETE FROM slide_signouts",
                "UPDATE scored_slides SET slide_score = 0", "DELETE FROM scored_slides"):
        with pytest.raises(DBAPIError, match="append-only"), eng.begin() as conn:
            conn.exec_driver_sql(sql)


def test_the_add_cases_command(batch_dir, store_url, tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"slide": ["case-2.tiff"], "truth": [1]}).to_csv(truth, index=False)
    assert store_cli(["--db", store_url, "add-cases", str(batch_dir), "--truth", str(truth)]) == 0
    assert "3 case(s) added" in capsys.readouterr().out
    assert store_cli(["--db", store_url, "add-cases", str(tmp_path)]) == 1
    assert f"{tmp_path}: no cases.csv" in capsys.readouterr().err


def test_every_sign_out_is_exported_with_its_case_and_the_command_writes_it(batch_dir, store_url, tmp_path,
                                                                             capsys):
    add_batch(batch_dir, {"case-2.tiff": 1}, url=store_url)
    wl = worklist(url=store_url)
    top, other = int(wl.id[0]), int(wl.id[1])
    record_signout(top, Reviewer("Dr Ann"), "defer", "=HYPERLINK(\"http://x\")", url=store_url)
    record_signout(other, Reviewer("ann@example.org", verified=True, subject="https://idp|123"), "no_metastasis",
                   url=store_url)
    record_signout(top, Reviewer("Dr Ann"), "metastasis", "IHC positive", url=store_url)
    history = signout_history(url=store_url)
    assert history.call.tolist() == ["defer", "no_metastasis", "metastasis"]  # all of them, oldest first
    assert history.current.tolist() == [False, True, True]  # the deferral was followed by a call
    assert history.reviewer_verified.tolist() == [False, True, False]
    case = get_case(top, url=store_url)
    last = history.iloc[-1]
    assert (last.slide, last.slide_sha256, last.model_sha256, last.path) == (
        case["slide"], case["sha256"], case["model_sha256"], case["path"])
    assert last.slide_score == pytest.approx(case["slide_score"]) and last.model_decision == case["decision"]
    out = tmp_path / "signouts.csv"
    assert store_cli(["--db", store_url, "export-signouts", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table.columns[-1] == "notice" and "Research use only" in table.notice[0]
    assert table.comment[0] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it as text, never runs it
    assert table.signout_id.tolist() == history.signout_id.tolist()
    assert [t == 1 if s == "case-2.tiff" else pd.isna(t) for s, t in zip(table.slide, table.truth)] == [True] * 3
    missing = tmp_path / "no-such-folder" / "x.csv"
    assert store_cli(["--db", store_url, "export-signouts", "--out", str(missing)]) == 1
    assert f"{missing}: No such file or directory" in capsys.readouterr().err


def test_the_app_never_imports_dask():
    """Dask is in requirements.txt (the commands), not in the app image: the app's case code must not need it."""
    code = ("import sys, app.store, app.inputs.case_open, app.review.case_agreement, model_training.slides.run; "
            "print('dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_slides_command_adds_its_batch_to_the_worklist(data_root, tmp_path, monkeypatch, capsys):
    """With ``--db`` (or ``PATHREVIEW_DB_URL``) a batch's scored slides reach the Cases worklist in the same run;
    a store that cannot be reached is named, without its password, and the batch's outputs stay."""
    folder = tmp_path / "cases"
    folder.mkdir()
    paths = small_cases(data_root, folder, 2, half=0, seed=13)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.delenv(db.DB_ENV, raising=False)
    assert slides_cli([*map(str, paths), "--out", str(tmp_path / "out"), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "Cases worklist: 2 case(s) added, 0 already there" in out
    # each slide's line gives its answer in words, as the app does
    assert re.search(r"^case-1\.tiff: \d+ tiles, slide score \d\.\d{3} \((no )?metastasis\), ", out, re.M)
    assert sorted(worklist(url=url).slide) == ["case-0.tiff", "case-1.tiff"]
    # from the environment, a PostgreSQL server that is not there
    monkeypatch.setenv(db.DB_ENV, "postgresql://dr:secret@127.0.0.1:9/pathreview")
    assert slides_cli([str(paths[0]), "--out", str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert "error: the slides were not added to the Cases worklist: The review store at" in err
    assert "cannot be reached" in err and "secret" not in err
    assert (tmp_path / "out2" / "cases.csv").is_file() and (tmp_path / "out2" / "case-0.tiff.summary.json").is_file()


def test_ctrl_c_while_the_store_takes_the_slides_says_how_to_add_them(data_root, tmp_path, monkeypatch, capsys):
    """Ctrl-C from the terminal (to the command and the store's process it started) while the scored slides are
    being added to the worklist: one line says what to run, no traceback, status 130; the outputs stay and
    ``python -m app.store add-cases`` then adds every slide."""
    folder = tmp_path / "cases"
    folder.mkdir()
    paths = small_cases(data_root, folder, 2, half=0, seed=17)
    out = tmp_path / "out"
    monkeypatch.delenv(db.DB_ENV, raising=False)
    assert slides_cli([*map(str, paths), "--out", str(out)]) == 0  # scored: the run below goes to the store at once
    capsys.readouterr()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**{k: v for k, v in os.environ.items() if k != db.DB_ENV}, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "model_training.slides", *map(str, paths), "--out", str(out),
                             "--db", url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    while proc.poll() is None and not _runs_the_store(proc.pid):
        time.sleep(0.005)
    assert proc.poll() is None, "the command finished before its store process started"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    stdout, stderr = (s.decode() for s in proc.communicate(timeout=60))
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    said = [ln for ln in stderr.splitlines() if ln.strip()]
    assert said == [f"Cases worklist: stopped (Ctrl-C) while the store was taking the slides; those it took stay, "
                    f"and python -m app.store add-cases {out} adds the rest"], stderr
    assert read_cases(out / CASES_FILE).status.tolist() == ["skipped", "skipped"]
    assert store_cli(["--db", url, "add-cases", str(out)]) == 0
    assert sorted(worklist(url=url).slide) == ["case-0.tiff", "case-1.tiff"]


def _runs_the_store(pid: int) -> bool:
    """Whether process ``pid`` has started ``python -m app.store`` (Linux: its children in /proc)."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"app.store" in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
        except OSError:  # it has ended since
            continue
    return False
