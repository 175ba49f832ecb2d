"""End to end on the review store: real ``streamlit run`` servers, Debian's Chromium, a local OpenID Connect
provider (``oidc-provider-mock``) on 127.0.0.1.

Two readers in two browser sessions review the same queue, the Agreement page shows their kappa and its
export holds both reviews; one reader's stale tab cannot record on another tile; three provider accounts that
look alike sign in and are three readers.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_e2e import LONG, free_port, serving, stop_server

from app import store
from app.review import agreement
from app.store import db, service
from app.store.audit_csv import read_csv_export
from model_training.data.decode import read_tile

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
N_ITEMS = 3
# Three provider accounts that a display string would confuse: one e-mail, verified for A only, and a name
# that looks like it.
ACCOUNTS = {"acct-a": {"email": "x@y.org", "email_verified": True},
            "acct-b": {"email": "x@y.org", "email_verified": False},
            "acct-c": {"name": "x@y.org"}}
SIGNED_IN = {"acct-a": "Signed in as x@y.org (verified e-mail).",
             "acct-b": "Signed in as acct-b (account acct-b; no verified e-mail).",
             "acct-c": "Signed in as x@y.org (account acct-c; no verified e-mail)."}


@pytest.fixture(scope="module")
def queued(data_root, tmp_path_factory):
    """A SQLite store with three real validation tiles (both classes) queued for review."""
    tmp = tmp_path_factory.mktemp("store-e2e")
    url = f"sqlite:///{tmp / 'reviews.db'}"
    assert store.open_store(url).ok
    labels = pd.read_csv(data_root / "valid_labels.csv")
    picks = pd.concat([labels[labels.label == 1].head(2), labels[labels.label == 0].head(1)])
    items = [store.ItemIn.from_tile(read_tile(data_root / "valid" / f"{r.id}.jpg"), source="dataset", name=r.id,
                                    dataset_root=str(data_root.resolve()), dataset_id=r.id,
                                    model_sha256="0" * 64, p=0.9, spread=0.01, threshold=0.5, label=int(r.label))
             for r in picks.itertuples()]
    store.add_items(items, url=url)
    service.forget()
    db.dispose_all()
    return {"url": url, "tmp": tmp}


def session(browser, url: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(LONG)
    pg.goto(f"{url}/queue")
    pg.get_by_text("Research use only — not for diagnosis.").first.wait_for()
    return ctx, pg


def review_all(pg, decisions: list[str]) -> None:
    """Record one decision per pending item, in queue order (the next pending item opens after each)."""
    for k, decision in enumerate(decisions):
        pg.get_by_text(f"{k} of {N_ITEMS} queued tile(s) reviewed").first.wait_for()
        pg.get_by_text("Tile detail ·").wait_for()
        pg.get_by_text(decision.capitalize(), exact=True).click()
        pg.get_by_role("button", name="Record review", exact=True).click()
        pg.get_by_text(f"{k + 1} review(s) recorded in this session.").wait_for()
    pg.get_by_text("Nothing is pending for you here.").wait_for()


def test_two_readers_review_one_queue_and_agreement_shows_their_kappa(browser, queued, data_root, tmp_path):
    with serving({"PATHREVIEW_DB_URL": queued["url"], "PATHREVIEW_DATA": str(data_root)},
                 tmp_path / "streamlit.log") as url:
        readers = {"reader A": ["agree", "agree", "disagree"], "reader B": ["agree", "disagree", "disagree"]}
        pages = {}
        for name in readers:  # both sessions open before either records: independent reviews
            ctx, pg = session(browser, url)
            field = pg.get_by_label("Reviewer name (required to record reviews)", exact=True)
            field.fill(name)
            field.press("Enter")
            pg.get_by_text(f"0 of {N_ITEMS} queued tile(s) reviewed by {name}").wait_for()
            pages[name] = (ctx, pg)
        for name, decisions in readers.items():
            review_all(pages[name][1], decisions)

        reviews = store.reviews_frame(url=queued["url"])
        assert sorted(reviews["reviewer"]) == ["reader A"] * 3 + ["reader B"] * 3
        pair = agreement.between_readers(reviews).iloc[0]
        assert pair["n"] == N_ITEMS

        pg = pages["reader A"][1]
        pg.get_by_role("link", name="Agreement").click()
        pg.get_by_text("Between readers").wait_for()
        pg.wait_for_function("document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]')"
                             ".length >= 3 * 5")
        cells = pg.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_inner_texts()
        # the page shows the pair's kappa with its CI, or "—" when a reader's calls never vary (the readers'
        # calls depend on the model's decision on each real tile, which the detail view scores again)
        kappa = ("—" if np.isnan(pair["kappa"]) else
                 f"{pair['kappa']:.3f} [{pair['ci_low']:.3f}, {pair['ci_high']:.3f}]")
        assert kappa in cells, (kappa, cells)
        pg.get_by_text("Readers on the model's ROC").first.wait_for(state="attached")
        with pg.expect_download() as dl:
            pg.get_by_role("button", name="All current reviews (CSV)").click()
        exported = read_csv_export(Path(dl.value.path()).read_bytes())
        assert sorted(exported["reviewer"]) == ["reader A"] * 3 + ["reader B"] * 3
        assert set(exported["source"]) == {"dataset"} and exported["dataset_id"].str.len().gt(0).all()
        for ctx, _ in pages.values():
            ctx.close()


def test_a_review_pressed_on_a_stale_form_is_refused_and_never_stored_on_another_tile(browser, queued, data_root,
                                                                                      tmp_path):
    """One reader, two tabs on the same pending tile: after tab 1 records it, tab 2's press (still showing that
    tile) must not become a review of the tile the queue moved on to."""
    name = "reader C"
    with serving({"PATHREVIEW_DB_URL": queued["url"], "PATHREVIEW_DATA": str(data_root)},
                 tmp_path / "streamlit.log") as url:
        tabs = []
        for _ in range(2):
            ctx, pg = session(browser, url)
            field = pg.get_by_label("Reviewer name (required to record reviews)", exact=True)
            field.fill(name)
            field.press("Enter")
            pg.get_by_text(f"0 of {N_ITEMS} queued tile(s) reviewed by {name}").wait_for()
            pg.get_by_text("Tile detail ·").wait_for()
            tabs.append((ctx, pg))
        first = int(store.queue(name, url=queued["url"])["item_id"].iloc[0])
        one, two = tabs[0][1], tabs[1][1]
        one.get_by_text("Agree", exact=True).click()
        one.get_by_role("button", name="Record review", exact=True).click()
        one.get_by_text("1 review(s) recorded in this session.").wait_for()

        two.get_by_text("Disagree", exact=True).click()
        two.get_by_label("Comment (optional)").fill("pressed on a stale page")
        two.get_by_role("button", name="Record review", exact=True).click()
        two.get_by_text("Nothing was recorded: the form you pressed was for").wait_for()
        for ctx, _ in tabs:
            ctx.close()
    mine = store.reviews_frame(url=queued["url"], reviewer=name)
    assert mine["item_id"].tolist() == [first] and mine["decision"].tolist() == ["agree"]
    assert "pressed on a stale page" not in set(mine["comment"])


@pytest.fixture
def oidc_provider(tmp_path):
    port = free_port()
    log = open(tmp_path / "oidc.log", "wb")
    users = [a for sub, claims in ACCOUNTS.items() for a in ("--user-claims", json.dumps({"sub": sub, **claims}))]
    proc = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port),
                             *users], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while True:
        try:
            with urllib.request.urlopen(f"{base}/.well-known/openid-configuration", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.time() - t0 > 60:
                raise RuntimeError((tmp_path / "oidc.log").read_text())
            time.sleep(0.3)
    yield base
    stop_server(proc)


def test_signed_in_readers_are_their_provider_accounts_not_their_email(browser, queued, data_root, tmp_path,
                                                                       oidc_provider):
    """Accounts A, B and C all look like x@y.org; only A's e-mail is verified. Each is a reader of its own:
    none is "already reviewed" by another's review or supersedes it, and the store and its export carry
    issuer + subject."""
    # The server runs from its own folder: Streamlit reads .streamlit/{config,secrets}.toml in its cwd.
    cwd = tmp_path / "site"
    (cwd / ".streamlit").mkdir(parents=True)
    shutil.copy(ROOT / ".streamlit" / "config.toml", cwd / ".streamlit" / "config.toml")
    port = free_port()
    (cwd / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-long-random-string-for-the-test-only"\n'
        'client_id = "pathreview"\nclient_secret = "pathreview-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n')
    pages = {}
    with serving({"PATHREVIEW_DB_URL": queued["url"], "PATHREVIEW_DATA": str(data_root)}, tmp_path / "streamlit.log",
                 cwd=cwd, port=port) as url:
        for sub in ACCOUNTS:  # all three signed in and on the same pending tile before anyone records
            ctx, pg = session(browser, url)
            pg.get_by_text("Sign in, or enter your name in the sidebar, to see your queue.").wait_for()
            assert pg.get_by_label("Reviewer name (required to record reviews)").count() == 0  # no typed names
            pg.get_by_role("button", name="Sign in").click()
            pg.get_by_role("button", name=sub, exact=True).click()  # the provider's form: a predefined user
            pg.wait_for_url(f"{url}/**")
            pg.get_by_text(SIGNED_IN[sub]).wait_for()
            pg.get_by_role("link", name="Review queue").click()
            pg.get_by_text("Tile detail ·").wait_for()
            pages[sub] = (ctx, pg)
        for sub, decision in zip(ACCOUNTS, ["agree", "disagree", "unsure"]):
            pg = pages[sub][1]
            pg.get_by_text(decision.capitalize(), exact=True).click()
            pg.get_by_role("button", name="Record review", exact=True).click()
            pg.get_by_text("1 review(s) recorded in this session.").wait_for()
        for ctx, _ in pages.values():
            ctx.close()
    reviews = store.reviews_frame(url=queued["url"], current_only=False)
    signed = reviews[reviews["reviewer_verified"]].sort_values("review_id")
    assert signed["reviewer_subject"].tolist() == [f"{oidc_provider}|{sub}" for sub in ACCOUNTS]
    assert signed["decision"].tolist() == ["agree", "disagree", "unsure"]
    assert signed["item_id"].nunique() == 1 and not signed["superseded"].any() and signed["supersedes_id"].isna().all()
    assert signed["reviewer"].nunique() == 3  # A and C both show x@y.org: the frame tells them apart
    exported = read_csv_export(store.export_csv(signed))
    assert exported["reviewer_subject"].tolist() == [f"{oidc_provider}|{sub}" for sub in ACCOUNTS]
