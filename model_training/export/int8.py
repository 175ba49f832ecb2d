"""An int8 copy of a bundle's model.onnx for scoring on CPUs: ``model.int8.onnx``.

On a CPU with int8 dot-product instructions (VNNI, AMX) ONNX Runtime scores the int8 graph about 2.5x faster
than the float32 one: 200 tiles x 8 TTA views in about 0.6 s instead of 1.5 s on 2 cores. The app scores with
it when the bundle carries one (``Predictor.load(..., engine="auto")``), as do the scoring commands (``score``,
``slides``, ``slide_level``; ``--engine`` keeps the choice); ``model.keras`` stays the model of record.

    python -m model_training.cli.quantize assets/pathcnn-v6 --data PCAM_ROOT

Training and the head refit make it too, from the same draw of training tiles (``calibration_tiles``).

How: ONNX Runtime's static quantization (QDQ) of the ``logit`` and ``features`` part of model.onnx, int8
weights per output channel, uint8 activations whose ranges come from real training tiles. The convolutional body
is quantized; the head (the global pooling that gives ``features`` and the ``logit`` layer) stays float32: it
costs nothing measurable, and a quantized logit takes about 220 distinct values over 2,888 tiles (a step of
0.095), so tiles tie in every ranking and sit further from model.onnx (mean logit difference 0.086 against
0.060). Weights use 7 of their 8 bits
(``reduce_range``), as ONNX Runtime advises: CPUs without VNNI multiply uint8 by int8 in pairs summed into
16 bits, which full-range weights can overflow. Grad-CAM still runs on model.onnx.

The copy is kept only if it agrees with the float model on labelled validation tiles, scored with TTA as the
app scores: at most 1% of decisions at the card's threshold may change and the AUC may drop by at most 0.005.
What it measured goes into the card's ``onnx_int8`` entry, which the Model card page shows, with the copy's
logits for a few fixed noise tiles: the Predictor scores those again when it loads the copy, and a CPU that
gives other logits gets model.onnx instead.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from model_training.bundle.contract import FEATURES, INPUT
from model_training.bundle.files import INT8_FILE, sha256, write_card
from model_training.data.sources import TileSource, open_source
from model_training.data.subsets import stratified_subset
from model_training.evaluation.metrics import at_threshold
from model_training.inference.engines import PROBE_SEED, PROBE_TILES, Int8Engine, OnnxEngine, probe_tiles
from model_training.inference.predictor import Predictor

MAX_CHANGED = 0.01  # largest fraction of check tiles whose decision may change
MAX_AUC_DROP = 0.005
CALIBRATION_TILES = 512
HEAD_OPS = frozenset({"GlobalAveragePool", "Flatten", "Gemm", "MatMul"})  # left in float32 (module docstring)
CHUNK = 64  # tiles per calibration batch
METHOD = ("ONNX Runtime static quantization (QDQ) of the convolutional body: int8 weights per output channel in "
          "7 bits (reduce_range), uint8 activations, min-max ranges; the pooling and logit layer in float32")


class QuantizeError(ValueError):
    """An int8 copy that could not be made, or that disagrees with the float model (the message says how)."""


def quantize_onnx(src: Path, dst: Path, calibration: np.ndarray) -> None:
    """Write the int8 graph of ``src``'s ``logit`` and ``features`` outputs to ``dst``, with activation ranges
    from ``calibration`` (uint8 tiles, N x 96 x 96 x 3)."""
    import onnx
    from onnx.utils import extract_model
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Tiles(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(calibration[i:i + CHUNK].astype(np.float32)
                                 for i in range(0, len(calibration), CHUNK))

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT: batch}

    with tempfile.TemporaryDirectory(prefix="pathreview-int8-") as tmp:
        logit_only, prepared = Path(tmp) / "logit.onnx", Path(tmp) / "prepared.onnx"
        extract_model(str(src), str(logit_only), [INPUT], ["logit", FEATURES])
        quant_pre_process(str(logit_only), str(prepared), skip_symbolic_shape=True)
        body = sorted({n.op_type for n in onnx.load(str(prepared)).graph.node} - HEAD_OPS)
        quantize_static(str(prepared), str(dst), Tiles(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=body)


def agreement(float_pred, int8_engine, tiles: np.ndarray, labels: np.ndarray) -> dict:
    """How the int8 graph's TTA scores compare with the float model's on labelled ``tiles``."""
    from sklearn.metrics import roc_auc_score

    int8_pred = Predictor(None, float_pred.card, float_pred.bundle, int8_engine)
    ref, new = float_pred.predict(tiles, tta=True), int8_pred.predict(tiles, tta=True)
    threshold = float_pred.threshold(True)
    both = len(set(labels.tolist())) == 2
    # the model's own calls, whatever a quality gate would keep: the copy is checked as a model
    ref_call, new_call = ref.p >= threshold, new.p >= threshold
    out = {"tiles": int(len(tiles)), "tta": True, "threshold": threshold,
           "decisions_changed": int((ref_call != new_call).sum()),
           "same_decision": float((ref_call == new_call).mean()),
           "max_abs_p_diff": float(np.abs(ref.p - new.p).max()),
           "max_abs_logit_diff": float(np.abs(ref.logit - new.logit).max())}
    for name, pred in (("float", ref), ("int8", new)):
        rates = at_threshold(labels, pred.p, threshold)
        out[name] = {"auc": float(roc_auc_score(labels, pred.p)) if both else None,
                     "sensitivity": rates["sensitivity"], "specificity": rates["specificity"]}
    return out


def disagreement(check: dict, max_changed: float = MAX_CHANGED, max_auc_drop: float = MAX_AUC_DROP) -> str | None:
    """Why the copy ``agreement`` measured may not be kept, or None. The decisions are counted: 1 - 0.99 is a
    hair above 0.01 in floating point, so comparing fractions refused exactly 4 changes in 400 at "at most 1%"."""
    changed = check["decisions_changed"] / check["tiles"]
    auc_drop = (check["float"]["auc"] - check["int8"]["auc"]) if check["float"]["auc"] is not None else 0.0
    if check["decisions_changed"] <= max_changed * check["tiles"] + 1e-9 and auc_drop <= max_auc_drop:
        return None
    return (f"the int8 copy changes {check['decisions_changed']} of {check['tiles']} decisions ({changed:.1%}; at "
            f"most {max_changed:.1%}) and its AUC differs by {-auc_drop:+.4f} (at most -{max_auc_drop:g})")


def write_int8(bundle: Path, float_pred, calibration: np.ndarray, tiles: np.ndarray, labels: np.ndarray, *,
               calibration_source: str, max_changed: float = MAX_CHANGED,
               max_auc_drop: float = MAX_AUC_DROP) -> dict:
    """Write ``bundle/model.int8.onnx`` from its model.onnx, check it against ``float_pred`` (a Predictor on
    that model.onnx) and return the card's ``onnx_int8`` entry; the card itself is the caller's to write.

    Raises QuantizeError, and leaves no file, when the copy changes too many decisions or loses AUC.
    """
    import onnxruntime

    bundle = Path(bundle)
    source = bundle / float_pred.card["onnx"]["file"]
    path = bundle / INT8_FILE
    tmp = path.with_suffix(".onnx.part")
    try:
        quantize_onnx(source, tmp, calibration)
        int8_engine = Int8Engine(tmp, source)
        check = agreement(float_pred, int8_engine, tiles, labels)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    problem = disagreement(check, max_changed, max_auc_drop)
    if problem:
        tmp.unlink()
        raise QuantizeError(f"{bundle}: {problem}, so {INT8_FILE} was not written")
    probe = int8_engine.logits(probe_tiles())
    tmp.replace(path)
    return {"file": INT8_FILE, "sha256": sha256(path), "source_sha256": float_pred.card["onnx"]["sha256"],
            "method": METHOD, "calibration_tiles": int(len(calibration)), "calibration_source": calibration_source,
            "onnxruntime": onnxruntime.__version__, "check": check,
            "probe": {"seed": PROBE_SEED, "tiles": PROBE_TILES, "logits": [float(v) for v in probe]},
            "command": "python -m model_training.cli.quantize BUNDLE --data PCAM_ROOT"}


def quantize_if_supported(bundle: Path, card: dict, calibration: np.ndarray, tiles: np.ndarray,
                          labels: np.ndarray, calibration_source: str) -> dict | None:
    """``write_int8`` for a freshly written bundle, or None with one warning line when the copy is refused or
    cannot be made (the app then scores with model.onnx): a finished training run must not fail over it."""
    try:
        float_pred = Predictor(None, card, bundle, OnnxEngine(Path(bundle) / card["onnx"]["file"]))
        return write_int8(bundle, float_pred, calibration, tiles, labels, calibration_source=calibration_source)
    except Exception as exc:  # noqa: BLE001 (the quantizer's own errors are not typed)
        why = exc if isinstance(exc, QuantizeError) else f"{type(exc).__name__}: {exc}"
        logging.getLogger("pathreview").warning("no %s written (the app will score model.onnx): %s", INT8_FILE, why)
        return None


def calibration_tiles(train: TileSource, n: int = CALIBRATION_TILES) -> tuple[np.ndarray, str]:
    """The tiles whose activations set the int8 ranges (labels unused), and where they came from: a fixed
    stratified draw from the training tiles, so training, the head refit and the quantize command make the same
    copy of the same model."""
    calibration = stratified_subset(train, n, seed=0).load_all()[0]
    return calibration, f"{len(calibration)} tiles of {train.description}"


def data_tiles(data: Path, n_calibration: int, n_check: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Calibration tiles from the dataset's training split (labels unused) and labelled validation tiles."""
    calibration, source = calibration_tiles(open_source(data, "train"), n_calibration)
    tiles, labels, _ = stratified_subset(open_source(data, "valid"), n_check, seed=0).load_all()
    return calibration, tiles, labels, source


def quantize_bundle(bundle: Path, data: Path, n_calibration: int = CALIBRATION_TILES,
                    n_check: int | None = None) -> dict:
    """Make and check an existing bundle's model.int8.onnx and record it in the card."""
    float_pred = Predictor.load(bundle, warm_up=False, engine="onnx")  # verifies model.keras and model.onnx
    calibration, tiles, labels, source = data_tiles(Path(data), n_calibration, n_check)
    card = float_pred.card
    card["onnx_int8"] = write_int8(bundle, float_pred, calibration, tiles, labels, calibration_source=source)
    write_card(bundle, card)
    return card["onnx_int8"]
