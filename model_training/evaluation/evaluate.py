"""Evaluate a bundle on a labeled dataset: metric table, figures, predictions.

``python -m model_training.cli.evaluate --model BUNDLE --data DIR [--split valid] [--tta] [--colour-shift] [--report OUT]``
``--colour-shift`` scores a fixed recoloured copy of the tiles (stain shifts beyond the training augmentation):
a model that holds up there is less tied to the colours of the training labs.
A Kaggle submission for an unlabeled folder: ``python -m model_training.cli.score --kaggle`` (score.py).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from model_training.data.sources import DatasetError, TileSource, open_source
from model_training.data.spreadsheet import safe_frame
from model_training.data.subsets import stratified_subset
from model_training.evaluation.colour_shift import colour_shifted
from model_training.evaluation.figures import write_figures
from model_training.evaluation.metrics import summary
from model_training.evaluation.scoring import score_batches
from model_training.inference.predictor import Predictor

log = logging.getLogger("pathreview.evaluate")


def score_source(pred, source: TileSource, tta: bool, batch: int = 256, progress: bool = True) -> pd.DataFrame:
    """Score every readable tile of ``source``; returns id, label, p, spread, decision, quality, ood."""
    frames = list(score_batches(pred, source, tta, batch, progress))
    cols = ["id", "label", "p", "spread", "decision", "quality", "ood"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def metric_table(m: dict) -> pd.DataFrame:
    """Rows of the printed report: one per metric, columns for the bundle threshold and 0.5."""
    rows = [("ROC-AUC", f"{m['auc']:.4f} [{m['auc_ci95'][0]:.4f}, {m['auc_ci95'][1]:.4f}]", ""),
            ("NLL", f"{m['nll']:.4f}", ""), ("ECE", f"{m['ece']:.4f}", "")]
    t, h = m["at_threshold"], m["at_0.5"]
    for key, label in (("accuracy", "accuracy"), ("precision", "precision (PPV)"),
                       ("sensitivity", "recall / sensitivity"), ("specificity", "specificity"), ("f1", "F1")):
        rows.append((label, f"{t[key]:.4f}", f"{h[key]:.4f}"))
    rows.append(("TP / FP / FN / TN", f"{t['tp']} / {t['fp']} / {t['fn']} / {t['tn']}",
                 f"{h['tp']} / {h['fp']} / {h['fn']} / {h['tn']}"))
    return pd.DataFrame(rows, columns=["metric", f"@ {t['threshold']:.3f} (bundle)", "@ 0.5"])


def score_shifted(pred, source: TileSource, tta: bool) -> pd.DataFrame:
    """Score the colour-shifted copy of ``source`` (held in RAM: meant for validation-sized sets)."""
    x, y, ids = source.load_all()
    r = pred.predict(colour_shifted(x), tta=tta)
    return pd.DataFrame({"id": ids, "label": y, "p": r.p, "spread": r.spread, "decision": r.decision.astype(int)})


def evaluate(model: Path, data: Path, split: str | None, tta: bool, report: Path | None,
             limit: int | None = None, png: bool = True, colour_shift: bool = False) -> dict:
    """Score a labeled dataset and return the metrics summary; optionally write figures and CSVs."""
    pred = Predictor.load(model)
    source = stratified_subset(open_source(data, split), limit, seed=0)
    if (source.labels < 0).any():
        raise DatasetError(f"{data}: has unlabeled tiles; score it with python -m model_training.cli.score --kaggle")
    df = score_shifted(pred, source, tta) if colour_shift else score_source(pred, source, tta)
    for p in source.problems:
        log.warning("skipped %s", p)
    y, p = df["label"].to_numpy(), df["p"].to_numpy()
    m = summary(y, p, pred.threshold(tta))
    m["tta"], m["colour_shift"], m["skipped"] = tta, colour_shift, len(source.problems)
    if report:
        report.mkdir(parents=True, exist_ok=True)
        safe_frame(df).to_csv(report / "predictions.csv", index=False)
        (report / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
        write_figures(report, y, p, pred.threshold(tta), png)
    return m
