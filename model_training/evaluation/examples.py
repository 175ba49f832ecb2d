"""The example tiles shipped in assets/examples: a small, reproducible pick of PCam validation tiles.

``python -m model_training.cli.examples --data $PATHREVIEW_DATA [--bundle BUNDLE] [--out assets/examples] [--n 32]``

The pick uses the bundle's 8-view TTA probabilities on the labelled ``valid`` split (its
``val_predictions.csv``, or a fresh scoring run when the bundle has none) and its TTA threshold, so that the
examples show every outcome: clear true positives and negatives, false positives, false negatives and close
calls. The chosen files are copied byte for byte, with a ``labels.csv`` and a README stating the licence.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_training.bundle.files import REPO_ROOT, VAL_PRED_FILE, read_card
from model_training.data.decode import IMAGE_EXTS, read_tile
from model_training.data.sources import FileSource, iter_batches, open_source
from model_training.data.spreadsheet import safe_frame
from model_training.inference.predictor import Predictor

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

EXAMPLES_DIR = REPO_ROOT / "assets" / "examples"
LABELS_FILE = "labels.csv"
OWN_FILES = (LABELS_FILE, "README.md")
MAX_EXAMPLES = 32
SPLIT = "valid"
SEED = 0
NEAR = 0.05  # a "close call" lies this close to the threshold: the tiles a reviewer is asked to look at
# Share of the pick per group; "near" is drawn first so the close calls can be of any outcome.
GROUPS = {"near threshold": 0.125, "clear TP": 0.25, "clear TN": 0.25, "FP": 0.1875, "FN": 0.1875}


class ExamplesError(ValueError):
    """Inputs from which no example set can be made; the message names the file and the reason."""


def outcome(label: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """TP / FP / FN / TN per tile at ``threshold`` (tumour when p >= threshold)."""
    pos = np.asarray(p) >= threshold
    label = np.asarray(label)
    return np.where(pos, np.where(label == 1, "TP", "FP"), np.where(label == 1, "FN", "TN"))


def quotas(n: int) -> dict[str, int]:
    """Tiles per group for a pick of ``n`` (largest-remainder rounding of ``GROUPS``)."""
    raw = {g: n * w for g, w in GROUPS.items()}
    out = {g: int(v) for g, v in raw.items()}
    for g in sorted(raw, key=lambda g: out[g] - raw[g])[:n - sum(out.values())]:
        out[g] += 1
    return out


def select(scores: pd.DataFrame, threshold: float, n: int = MAX_EXAMPLES, seed: int = SEED) -> pd.DataFrame:
    """Pick ``n`` rows of ``scores`` (columns id, label, p) by group; adds ``chosen_as`` and ``outcome``.

    Groups short of tiles leave their share to a random draw from the rest, so ``n`` rows always come back.
    """
    import pandas as pd

    if len(scores) < n:
        raise ExamplesError(f"only {len(scores)} scored tiles; cannot pick {n}")
    df = scores.sort_values("id", kind="stable").reset_index(drop=True)  # independent of the CSV's row order
    df["outcome"] = outcome(df["label"].to_numpy(), df["p"].to_numpy(), threshold)
    dist = (df["p"] - threshold).abs()
    members = {
        "near threshold": dist < NEAR,
        "clear TP": (df["outcome"] == "TP") & (df["p"] >= (1 + threshold) / 2),
        "clear TN": (df["outcome"] == "TN") & (df["p"] < threshold / 2),
        "FP": df["outcome"] == "FP",
        "FN": df["outcome"] == "FN",
    }
    rng = np.random.default_rng(seed)
    chosen = pd.Series("", index=df.index)
    for group, k in quotas(n).items():
        pool = df.index[members[group] & (chosen == "")]
        chosen.loc[rng.choice(pool, min(k, len(pool)), replace=False)] = group
    rest = df.index[chosen == ""]
    chosen.loc[rng.choice(rest, n - int((chosen != "").sum()), replace=False)] = "random"
    return df.assign(chosen_as=chosen)[chosen != ""].reset_index(drop=True)


def bundle_scores(bundle: Path, source: FileSource, rescore: bool = False) -> tuple[pd.DataFrame, float, str]:
    """(id, label, p) of every tile in ``source``, the TTA threshold and where the scores came from."""
    import pandas as pd

    card = read_card(bundle)
    threshold = float(card.get("calibration", {}).get("tta", {}).get("threshold", card.get("threshold", 0.5)))
    val_file = bundle / VAL_PRED_FILE
    if val_file.exists() and not rescore:
        try:
            # float32 as written: the threshold is one of these values and must stay on the same side
            vp = pd.read_csv(val_file, dtype={"p": np.float32}, usecols=["id", "label", "p"])
        except ValueError as exc:
            raise ExamplesError(f"{val_file}: needs columns id, label, p ({exc})") from exc
        return vp.astype({"id": str}), threshold, f"the bundle's {VAL_PRED_FILE} (8-view TTA)"
    pred = Predictor.load(bundle)
    rows = [pd.DataFrame({"id": ids, "label": labels, "p": pred.predict(tiles, tta=True).p})
            for tiles, ids, labels in iter_batches(source)]
    return pd.concat(rows, ignore_index=True), pred.threshold(True), "a fresh 8-view TTA scoring run"


def check_against(scores: pd.DataFrame, source: FileSource, where: str) -> pd.DataFrame:
    """Scores restricted to tiles the dataset holds, refusing any whose label disagrees with it."""
    truth = dict(zip(source.ids, source.labels.tolist()))
    known = scores[scores["id"].isin(truth)]
    if known.empty:
        raise ExamplesError(f"{where}: none of its ids is a tile of {source.description}")
    wrong = known[known["label"].to_numpy() != known["id"].map(truth).to_numpy()]
    if len(wrong):
        raise ExamplesError(f"{where}: label of {wrong['id'].iloc[0]} disagrees with {source.description}")
    return known


def write(picked: pd.DataFrame, source: FileSource, out: Path, readme: str) -> None:
    """Replace the tiles in ``out`` with the picked files (copied byte for byte), labels.csv and README."""
    paths = dict(zip(source.ids, source.paths))
    for tid in picked["id"]:
        read_tile(paths[tid])  # raises TileError naming the file: only readable 96x96 tiles are shipped
    out.mkdir(parents=True, exist_ok=True)
    # Old tiles are deleted below, so never work in a folder that holds anything else.
    foreign = [f.name for f in out.iterdir()
               if not (f.is_file() and (f.suffix.lower() in IMAGE_EXTS or f.name in OWN_FILES))]
    if foreign:
        raise ExamplesError(f"{out}: holds {', '.join(sorted(foreign)[:3])}, which is not an example tile; "
                            "write to an empty folder or to an example folder")
    for old in out.iterdir():
        if old.is_file() and old.suffix.lower() in IMAGE_EXTS:
            old.unlink()
    for tid in picked["id"]:
        shutil.copyfile(paths[tid], out / paths[tid].name)
    cols = ["id", "label", "outcome_at_selection", "p_at_selection", "chosen_as"]
    safe_frame(picked.rename(columns={"outcome": "outcome_at_selection", "p": "p_at_selection"})[cols]).to_csv(
        out / LABELS_FILE, index=False, float_format="%.6f")
    (out / OWN_FILES[1]).write_text(readme)


def shown(path: Path) -> str:
    """A path as a re-selection command should show it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def command(bundle: Path, out: Path, n: int, seed: int, rescore: bool) -> str:
    """The command line that re-makes a selection (data as $PATHREVIEW_DATA, paths repository-relative)."""
    return (f".venv/bin/python -m model_training.cli.examples --data $PATHREVIEW_DATA --bundle {shown(bundle)} "
            f"--out {shown(out)} --n {n} --seed {seed}" + (" --rescore" if rescore else ""))


def readme_text(picked: pd.DataFrame, card: dict, threshold: float, scored_by: str, cmd: str) -> str:
    """The README written beside the tiles: what they are, their licence, how they were chosen."""
    counts = picked["outcome"].value_counts()
    groups = picked["chosen_as"].value_counts()
    return f"""# Example tiles

{len(picked)} H&E tiles of 96×96 pixels from the **validation split of PatchCamelyon (PCam)**, shipped so that
PathReview has something to score on a machine with no data: *Try the example tiles* on the Analyze page, and
the example dataset of the Validation browser and the Performance page. They are the only data PathReview
ships.

- `<id>.jpg`: the tiles, copied byte for byte from the PCam validation split (JPEG as published); the id is
  the SHA-1 of the tile's raw RGB pixels, the Kaggle *Histopathologic Cancer Detection* convention.
- `{LABELS_FILE}`: `id,label` (1 = at least one tumour pixel in the centre 32×32 region), then the outcome and
  P(tumour) under the model that chose them, and the group each tile was drawn for.

## Licence

PCam: B. S. Veeling, J. Linmans, J. Winkens, T. Cohen, M. Welling, "Rotation Equivariant CNNs for Digital
Pathology", MICCAI 2018 (arXiv:1806.03962). The data set is released under **CC0 1.0** (public domain
dedication) on Zenodo, record 2546921 (https://zenodo.org/record/2546921). These tiles are therefore CC0 as
well; no attribution is required, the citation above is a courtesy.

## How they were chosen

Model `{card.get('name', '?')}` (sha256 `{str(card.get('sha256', '?'))[:12]}…`), P(tumour) from {scored_by},
TTA threshold {threshold:.4f}. With a fixed seed, by group: close calls (within {NEAR} of the threshold,
any outcome), clear true positives (P ≥ halfway from the threshold to 1), clear true negatives (P below half
the threshold), false positives and false negatives.

| outcome at selection | TP | FP | FN | TN |
|---|---|---|---|---|
| tiles | {' | '.join(str(int(counts.get(k, 0))) for k in ('TP', 'FP', 'FN', 'TN'))} |

Groups: {', '.join(f'{g} {int(k)}' for g, k in groups.items())}. The false positives and negatives were
chosen on purpose: these tiles show what the model does, not how often it is right.

Re-select (after a new model is shipped) with:

```bash
{cmd}
```
"""


def make_examples(data: Path, bundle: Path, out: Path, n: int = MAX_EXAMPLES, seed: int = SEED,
                  rescore: bool = False) -> pd.DataFrame:
    """Select ``n`` example tiles from ``data``'s valid split with ``bundle`` and write them to ``out``."""
    source = open_source(data, SPLIT)
    if not isinstance(source, FileSource):
        raise ExamplesError(f"{data}: {source.description} has no image files to copy; use the folder layout "
                            f"({SPLIT}/ + {SPLIT}_labels.csv)")
    scores, threshold, scored_by = bundle_scores(bundle, source, rescore)
    scores = check_against(scores, source, str(bundle / VAL_PRED_FILE) if not rescore else str(bundle))
    picked = select(scores, threshold, n, seed)
    cmd = command(bundle, out, n, seed, rescore)
    write(picked, source, out, readme_text(picked, read_card(bundle), threshold, scored_by, cmd))
    return picked
