"""Queueing a scored dataset: the tiles that most need a reader first, and the next ones on the next press."""
from __future__ import annotations

import numpy as np
import pandas as pd

from app import store
from app.review.queueing import MAX_QUEUE, review_order
from model_training.inference.predictor import needs_review

MODEL = "ab" * 32


def test_the_tiles_nearest_the_decision_are_queued_first_and_the_next_press_takes_the_next(tmp_path):
    """As the probe found it: 657 of 900 tiles called tumour, most at P = 1.000; the first 500 queued must be
    those near the threshold, and a second press must not queue the same ones again."""
    rng = np.random.default_rng(0)
    p = np.concatenate([np.ones(400), rng.uniform(0.185, 1.0, 257), rng.uniform(0.0, 0.185, 243)])
    df = pd.DataFrame({"id": [f"t{i}" for i in range(len(p))], "p": p, "spread": rng.uniform(0, 0.05, len(p))})
    threshold = 0.185
    df["needs_review"] = needs_review(df["p"], df["spread"], threshold)
    first = review_order(df, threshold).head(MAX_QUEUE)
    flagged = int(df["needs_review"].sum())
    assert first["needs_review"].head(flagged).all()  # every flagged tile before any other
    assert first["p"].min() < threshold + 0.1 and (first["p"] == 1.0).sum() < 400  # not just the P = 1 tiles
    assert len(review_order(df, threshold)) == int(((df["p"] >= threshold) | df["needs_review"]).sum())

    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    assert store.open_store(url).ok
    tiles = rng.integers(0, 255, (len(first), 96, 96, 3), dtype=np.uint8)
    store.add_items([store.ItemIn.from_tile(t, source="dataset", name=r.id, dataset_root="/data", dataset_id=r.id,
                                            model_sha256=MODEL, p=float(r.p), spread=float(r.spread),
                                            threshold=threshold, needs_review=bool(r.needs_review))
                     for t, r in zip(tiles, first.itertuples())], url=url)
    queued = store.queued_from("dataset", MODEL, dataset_root="/data", url=url)
    assert queued == set(first["id"])
    assert store.queued_from("dataset", "cd" * 32, dataset_root="/data", url=url) == set()  # another model
    second = review_order(df[~df["id"].isin(queued)], threshold)
    assert not set(second["id"]) & queued and len(second) == len(review_order(df, threshold)) - MAX_QUEUE


def test_queue_names_are_short_and_what_needs_a_look_comes_first():
    from app.review.queueing import queue_order, short_name

    pcam_id = "f0c2a0b8ef3024f2c44be2b94eb5ba0aea2a6ba6"
    assert short_name(pcam_id, "dataset") == "f0c2a0b8ef3024f2c44b…2a6ba6" and len(short_name(pcam_id, "dataset")) <= 28
    assert short_name("cases/2024/node-17.svs @ x=187, y=374", "slide") == "node-17.svs @ x=187, y=374"
    assert short_name("tile_003.png", "upload") == "tile_003.png"
    items = pd.DataFrame({"item_id": [1, 2, 3, 4, 5], "p": [1.0, 0.99, 0.5, 0.95, 0.3],
                          "threshold": [0.2] * 5, "needs_review": [False, False, True, False, True],
                          "quality": ["ok", None, "ok", "blur", "ok"]})
    # flagged for review nearest the threshold first, then the tile the gate stopped, then sure calls
    assert queue_order(items)["item_id"].tolist() == [5, 3, 4, 2, 1]
