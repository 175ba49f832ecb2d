"""A grid of training runs over learning rate, batch size and optimizer, on splits decoded once."""
from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pandas as pd

from model_training.data.spreadsheet import safe_frame
from model_training.data.subsets import load_split
from model_training.training.config import TrainConfig
from model_training.training.loop import train_one


def run_sweep(cfg: TrainConfig, grid: dict[str, list]) -> Path:
    """Train every combination of ``grid``'s values (see ``config.parse_sweep``); write sweep.csv and sweep.md
    under ``cfg.out``, one bundle per combination beside them."""
    root = Path(cfg.out)
    train = load_split(cfg.data, cfg.train_split, cfg.limit, cfg.seed, cfg.stream)
    val = load_split(cfg.data, cfg.val_split, cfg.val_limit, cfg.seed, False)
    rows = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        run = replace(cfg, **values, out=str(root / "_".join(f"{k}-{v}" for k, v in values.items())))
        card = train_one(run, train, val)
        rows.append({**values, "val_auc": card["validation"]["tta"]["auc"],
                     "val_nll": card["validation"]["tta"]["nll"], "epochs": card["training"]["epochs_run"],
                     "img_per_s": card["training"]["images_per_second"], "bundle": run.out})
    table = pd.DataFrame(rows).sort_values("val_auc", ascending=False)
    safe_frame(table).to_csv(root / "sweep.csv", index=False)
    (root / "sweep.md").write_text(table.to_markdown(index=False) + "\n")
    print(table.to_string(index=False))
    return root / "sweep.csv"
