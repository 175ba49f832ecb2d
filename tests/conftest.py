"""Shared fixtures: the real PCam subset (via PATHREVIEW_DATA) and a tiny bundle trained on it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from case_slides import small_cases
from real_inputs import SVS

from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.slides.batch import BatchJob, run_batch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("PATHREVIEW_DATA")
    if not root:
        pytest.skip("PATHREVIEW_DATA is not set (point it at a PCam subset with train/ and valid/)")
    path = Path(root).resolve()  # absolute: some tests change the working directory
    if not (path / "valid").is_dir():
        pytest.skip(f"PATHREVIEW_DATA={root} has no valid/ folder")
    return path


@pytest.fixture(scope="session")
def png_browser() -> str:
    """The Chromium/Chrome that kaleido drives for PNG figures; tests that need one skip without it.

    The search is the exporter's own: Debian's /usr/bin/chromium (what the e2e tests drive), any
    Chrome/Chromium on PATH, or BROWSER_PATH.
    """
    from model_training.evaluation.figures import find_browser

    path = find_browser()
    if path is None:
        pytest.skip("no Chromium/Chrome browser for the PNG export (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def valid_tiles(data_root) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """64 real validation tiles (uint8), their labels and ids."""
    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset

    return stratified_subset(open_source(data_root, "valid"), 64, seed=0).load_all()


@pytest.fixture(scope="session")
def tiny_bundle(data_root, tmp_path_factory) -> Path:
    """A small model trained briefly on 1000 real patches: it honours the full bundle contract and has
    really learned (test_train checks its validation AUC)."""
    from model_training.cli.train import main

    out = tmp_path_factory.mktemp("bundle") / "tiny"
    main(["--data", str(data_root), "--arch", "pathcnn-small", "--epochs", "3", "--limit", "1000",
          "--val-limit", "400", "--batch-size", "64", "--out", str(out), "--verbose", "0",
          "--ema", "0.999"])  # the weight-average path, so the tests cover it
    return out


# --- the review store: a real SQLite file and a real PostgreSQL server ---------------------------------------
PG_ENV = "PATHREVIEW_TEST_PG_URL"  # a server already running (CI's .ci/postgres); else the tests start one


@pytest.fixture(scope="session")
def pg_url():
    """URL of a PostgreSQL server: $PATHREVIEW_TEST_PG_URL, else a throwaway one started from Debian's binaries."""
    url = os.environ.get(PG_ENV)
    if url:
        yield url
        return
    from pg_server import start

    try:
        server = start()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc}: the PostgreSQL store tests need it (CI installs it)")
    try:
        yield server.url
    finally:
        server.stop()


def fresh_pg_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"pathreview_{uuid.uuid4().hex[:12]}"
    eng = create_engine(make_url(server_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return make_url(server_url).set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path, monkeypatch):
    """An empty, migrated review store (also $PATHREVIEW_DB_URL): a SQLite file, then a fresh database on a
    real PostgreSQL server."""
    from app.store import db, open_store, service

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'reviews.db'}"
    else:
        url = fresh_pg_database(request.getfixturevalue("pg_url"))
    monkeypatch.setenv("PATHREVIEW_DB_URL", url)
    status = open_store(url)
    assert status.ok, status.message
    yield url
    service.forget()
    db.dispose_all()


@pytest.fixture
def app_session(monkeypatch, tmp_path, data_root):
    """``make(page=None, name=None)``: a fresh AppTest session on the shipped model with its own SQLite store
    (``make.url``), optionally under a typed reviewer name and switched to ``page``; page errors raise."""
    from streamlit.testing.v1 import AppTest

    from app.store import db, service
    from model_training.bundle.files import DEFAULT_BUNDLE

    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    monkeypatch.setenv("PATHREVIEW_MODEL", str(DEFAULT_BUNDLE))
    monkeypatch.setenv("PATHREVIEW_DB_URL", url)
    monkeypatch.setenv("PATHREVIEW_DATA", str(data_root))
    monkeypatch.delenv("PATHREVIEW_DATA_ROOTS", raising=False)
    monkeypatch.setenv("PATHREVIEW_DEBUG", "1")
    monkeypatch.chdir(tmp_path)  # no secrets.toml here: names are typed, not signed in

    def make(page: str | None = None, name: str | None = None):
        at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app" / "main.py"),
                               default_timeout=300)
        if name:
            at.session_state["reviewer"] = name
        at.run()
        if page:
            at.switch_page(page).run()
        return at
    make.url = url
    yield make
    service.forget()
    db.dispose_all()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, one per test module; skips without it."""
    from test_e2e import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# The AppTest page tests (test_app_pages, test_app_model_card): the tiny bundle in the app, and real tiles.
APP_MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    """The tiny bundle on the engine the app picks for it (its int8 copy when it has one)."""
    from model_training.inference.predictor import Predictor

    return Predictor.load(tiny_bundle, engine="auto")


@pytest.fixture
def app(monkeypatch, tmp_path, tiny_bundle, data_root):
    """A fresh AppTest session on the tiny bundle, with its own review store; page errors raise."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PATHREVIEW_MODEL", str(tiny_bundle))
    monkeypatch.setenv("PATHREVIEW_DB_URL", f"sqlite:///{tmp_path / 'reviews.db'}")
    monkeypatch.setenv("PATHREVIEW_DATA", str(data_root))
    monkeypatch.setenv("PATHREVIEW_DEBUG", "1")

    def make(page: str | None = None):
        at = AppTest.from_file(str(APP_MAIN), default_timeout=300).run()
        if page:
            at.switch_page(page).run()
        return at
    return make


# ---------------------------------------------------------------- stored cases (test_store_cases.py, test_cases_pages.py)
@pytest.fixture(scope="session")
def batch_dir(data_root, tmp_path_factory) -> Path:
    """A batch run over three case slides (the last with a metastasis) and one file that is not a slide."""
    folder = tmp_path_factory.mktemp("batch")
    paths = small_cases(data_root, folder, 3, half=0, seed=11)
    (folder / "broken.tiff").write_bytes(b"not a slide")
    out = folder / "out"
    run_batch([*paths, folder / "broken.tiff"], BatchJob(str(DEFAULT_BUNDLE), "onnx-int8", str(out)), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_batch(batch_dir, tiny_bundle, tmp_path_factory) -> Path:
    """The same three case slides as ``batch_dir``, scored by a second model (the small test bundle) with its
    int8 copy where it has one: trained for seconds, its copy is sometimes refused at training (more than 1% of
    the 400 check decisions change), and the slides command then scores with model.onnx, as here."""
    out = tmp_path_factory.mktemp("tiny") / "out"
    run_batch(sorted(batch_dir.parent.glob("case-*.tiff")), BatchJob(str(tiny_bundle), "auto", str(out)),
              progress=False)
    return out


@pytest.fixture(scope="session")
def unlike_batch(data_root, svs, tmp_path_factory) -> Path:
    """A batch run over a case slide with a metastasis and the Aperio slide of skin, which the quality gate calls
    unlike the lymph-node slides the model learned from."""
    folder = tmp_path_factory.mktemp("unlike")
    out = folder / "out"
    run_batch([*small_cases(data_root, folder, 1, half=0, seed=3), svs],
              BatchJob(str(DEFAULT_BUNDLE), "onnx-int8", str(out)), progress=False)
    return out


@pytest.fixture(scope="module")
def tif_paths(data_root) -> list[Path]:
    return sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))


# ---------------------------------------------------------------- whole slides (test_slides*.py)
@pytest.fixture(scope="session")
def slides_root() -> Path:
    root = os.environ.get("PATHREVIEW_SLIDES")
    if not root or not (Path(root) / SVS).is_file():
        pytest.skip(f"PATHREVIEW_SLIDES is not set to a folder holding {SVS} (../shared/slides)")
    return Path(root)


@pytest.fixture(scope="session")
def svs(slides_root) -> Path:
    """The real Aperio slide (CMU-1-Small-Region, 2220 x 2967 px at 0.499 µm/px)."""
    return slides_root / SVS


@pytest.fixture(scope="session")
def pred():
    """The shipped bundle, Keras engine (the model of record)."""
    from model_training.inference.predictor import Predictor

    return Predictor.load(DEFAULT_BUNDLE)


@pytest.fixture(scope="session")
def patches(data_root):
    """192 real validation patches, stratified (tiles, labels, ids): a 16 x 12 labelled slide's worth."""
    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset

    return stratified_subset(open_source(data_root, "valid"), 192, seed=3).load_all()
