"""The model bundle: a directory with model.keras, model_card.json, history.csv, val_predictions.csv."""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"  # optional: derived from model.keras by model_training.cli.onnx_export
INT8_FILE = "model.int8.onnx"  # optional: derived from model.onnx by model_training.cli.quantize
GATE_FILE = "quality_gate.npz"  # optional: the quality gate, fitted by model_training.cli.fit_gate
CARD_FILE = "model_card.json"
HISTORY_FILE = "history.csv"
VAL_PRED_FILE = "val_predictions.csv"
FIGURES_DIR = "figures"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO_ROOT / "assets" / "pathcnn-v6"


class BundleError(RuntimeError):
    """A bundle directory that is missing files or whose model does not match its card."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_bundle() -> Path:
    """The bundle named by PATHREVIEW_MODEL, else the one shipped in assets/."""
    return Path(os.environ.get("PATHREVIEW_MODEL") or DEFAULT_BUNDLE)


def read_card(bundle: Path) -> dict:
    path = Path(bundle) / CARD_FILE
    if not path.exists():
        raise BundleError(f"{bundle}: no {CARD_FILE}; not a PathReview model bundle")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON ({exc})") from exc


def write_card(bundle: Path, card: dict) -> None:
    (Path(bundle) / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=False, default=float) + "\n")


def verify(bundle: Path) -> dict:
    """Read the card and check model.keras against its sha256; return the card."""
    bundle = Path(bundle)
    card = read_card(bundle)
    model = bundle / MODEL_FILE
    if not model.exists():
        raise BundleError(f"{bundle}: no {MODEL_FILE}")
    expected = card.get("sha256")
    actual = sha256(model)
    if expected != actual:
        raise BundleError(f"{model}: sha256 {actual[:12]}… does not match the model card ({str(expected)[:12]}…); "
                          "the model file was changed or corrupted, refusing to load it")
    return card


def _listed_file(bundle: Path, path: Path, expected: str | None) -> Path:
    """``path``, which the card lists with sha256 ``expected``; an error when it is missing or altered."""
    if not path.exists():
        raise BundleError(f"{bundle}: the model card lists {path.name}, but the file is missing")
    actual = sha256(path)
    if actual != expected:
        raise BundleError(f"{path}: sha256 {actual[:12]}… does not match the model card "
                          f"({str(expected)[:12]}…); the file was changed or corrupted, refusing to load it")
    return path


def _derived_file(bundle: Path, card: dict, entry: str, default: str, source_sha256: str | None,
                  stale: str) -> Path | None:
    """The file the card's ``entry`` lists, made from the file whose sha256 is ``source_sha256``; None when the
    card lists none. A listed file that is missing, altered or made from another source is an error (``stale``
    says what it was made from and the command that makes it again)."""
    info = card.get(entry)
    if not info:
        return None
    path = Path(bundle) / info.get("file", default)
    if info.get("source_sha256") != source_sha256:
        raise BundleError(f"{path}: {stale} again")
    return _listed_file(bundle, path, info.get("sha256"))


def verified_onnx(bundle: Path, card: dict) -> Path | None:
    """The bundle's model.onnx when its card lists one exported from this model.keras; None when it has none.

    A listed file that is missing, altered, or exported from another model.keras is an error, as for
    model.keras itself: silently scoring with a stale export would be worse than refusing.
    """
    return _derived_file(bundle, card, "onnx", ONNX_FILE, card.get("sha256"),
                         f"exported from another model.keras; run python -m model_training.cli.onnx_export {bundle}")


def verified_int8(bundle: Path, card: dict) -> Path | None:
    """The bundle's model.int8.onnx when its card lists one made from the listed model.onnx; None when it has
    none. As for model.onnx, a listed file that is missing, altered or stale is an error."""
    return _derived_file(bundle, card, "onnx_int8", INT8_FILE, (card.get("onnx") or {}).get("sha256"),
                         f"made from another model.onnx; run python -m model_training.cli.quantize {bundle} "
                         "--data PCAM_ROOT")


def verified_gate(bundle: Path, card: dict) -> Path | None:
    """The bundle's quality-gate file when its card lists one fitted on this model.keras; None when it has
    none. A listed file that is missing, altered or fitted on another model is an error."""
    return _derived_file(bundle, card, "quality_gate", GATE_FILE, card.get("sha256"),
                         f"fitted on another model.keras; run python -m model_training.cli.fit_gate {bundle} "
                         "--data PCAM_ROOT")


def library_versions() -> dict:
    import keras
    import numpy
    import sklearn

    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": numpy.__version__,
                "scikit-learn": sklearn.__version__, "backend": keras.backend.backend()}
    try:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return versions
