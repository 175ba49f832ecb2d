"""The one way to score tiles: load a verified bundle, run a compiled inference function, calibrate."""
from __future__ import annotations

import importlib.util
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_training.bundle.contract import TILE
from model_training.bundle.files import (INT8_FILE, MODEL_FILE, BundleError, read_card, verified_int8, verified_onnx,
                                        verify)
from model_training.inference.engines import PROBE_TOLERANCE, Int8Engine, KerasEngine, OnnxEngine
from model_training.inference.explain import explain, explain_all
from model_training.inference.gate import NOT_ASSESSED, OK, Gate, load_gate
from model_training.inference.look_head import LookHead
from model_training.inference.quality import measure

log = logging.getLogger("pathreview")
ENGINES = ("keras", "onnx", "onnx-int8", "auto")
ENGINE_HELP = ("what scores: keras (the model of record), onnx (its float32 export, same scores), "
               "onnx-int8 (its int8 copy, 2-3x faster on CPUs; see the card's onnx_int8 check) or auto (the int8 "
               "copy where the bundle has one, else the float export, else Keras)")

N_VIEWS = 8
# A tile needs a second look when its probability is this close to the threshold or its TTA views disagree.
REVIEW_MARGIN = 0.10
REVIEW_SPREAD = 0.15


def _measuring_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="quality-measures")


# The quality gate's measures are numpy work on the tiles that needs no scores: they run here while the engine,
# which leaves Python's lock while it works, scores the same batch (on 2 cores they were a tenth of a slide's
# scoring time when run after it).
_MEASURING = _measuring_pool()


def _new_measuring_pool() -> None:
    # a forked child has none of the parent's threads, but its copy of the pool believes one is idle and would
    # queue work that never runs: a child (a fork-based multiprocessing pool, say) starts a pool of its own
    global _MEASURING
    _MEASURING = _measuring_pool()


os.register_at_fork(after_in_child=_new_measuring_pool)


def sigmoid(z):
    """1 / (1 + e^-z) of a number or array, as (1 + tanh(z / 2)) / 2: scipy.special.expit to float64 rounding,
    without overflow, and without importing scipy.special (0.3 s of CPU on the app's first scored tile, 0.1 s at
    the start of every batch worker)."""
    return 0.5 + 0.5 * np.tanh(0.5 * np.asarray(z, np.float64))


def needs_review(p, spread, threshold: float) -> np.ndarray:
    """Which tiles need a second look: P within ``REVIEW_MARGIN`` of the threshold, or TTA spread above
    ``REVIEW_SPREAD``."""
    p, spread = np.asarray(p, float), np.asarray(spread, float)
    return (np.abs(p - threshold) < REVIEW_MARGIN) | (spread > REVIEW_SPREAD)


def dihedral_views(tiles: np.ndarray) -> np.ndarray:
    """The 8 dihedral views of each tile, shape (N, 8, 96, 96, 3); view 0 is the tile itself."""
    views = []
    for t in (tiles, np.swapaxes(tiles, 1, 2)):
        for k in range(4):
            views.append(np.rot90(t, k, axes=(1, 2)))
    return np.stack(views, axis=1)


@dataclass
class Prediction:
    """Scores for a batch of N tiles (per-view arrays only when TTA ran), with the quality gate's verdicts
    (all "ok", ood NaN, for a bundle without a gate)."""

    p: np.ndarray  # (N,) calibrated P(tumour), mean over views with TTA
    logit: np.ndarray  # (N,) raw (uncalibrated) logit, mean over views with TTA
    views: np.ndarray | None  # (N, 8) calibrated P(tumour) of each dihedral view
    spread: np.ndarray  # (N,) std of the view probabilities (0 without TTA)
    threshold: float
    quality: np.ndarray | None = None  # (N,) "ok" or why the tile is not assessed
    ood: np.ndarray | None = None  # (N,) distance from the training tiles; above 1.0 is out of distribution
    stain: np.ndarray | None = None  # (N,) the stain statistics' part of ood

    def __post_init__(self) -> None:
        n = len(self.p)
        if self.quality is None:
            self.quality = np.full(n, OK, dtype=object)
        if self.ood is None:
            self.ood = np.full(n, np.nan, np.float32)
        if self.stain is None:
            self.stain = np.full(n, np.nan, np.float32)

    @property
    def assessed(self) -> np.ndarray:
        """Tiles the gate lets the model answer."""
        return self.quality == OK

    @property
    def decision(self) -> np.ndarray:
        """Called tumour: P at or above the threshold on an assessed tile (a tile not assessed is no call)."""
        return (self.p >= self.threshold) & self.assessed

    @property
    def call(self) -> np.ndarray:
        """(N,) "tumour", "normal" or "not assessed"."""
        return np.where(~self.assessed, NOT_ASSESSED, np.where(self.p >= self.threshold, "tumour", "normal"))

    @property
    def needs_review(self) -> np.ndarray:
        return needs_review(self.p, self.spread, self.threshold) & self.assessed


def onnx_runtime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def auto_engine(card: dict) -> str:
    """The engine ``load(..., engine="auto")`` picks for a bundle with this card (files not yet checked): the
    int8 copy when there is one, else model.onnx, else Keras (and Keras when ONNX Runtime is not installed)."""
    if not card.get("onnx") or not onnx_runtime_installed():
        return "keras"
    return "onnx-int8" if card.get("onnx_int8") else "onnx"


def scores_with_keras(bundle: Path, engine: str) -> bool:
    """True when ``Predictor.load(bundle, engine)`` would score with Keras (and so import TensorFlow); False
    too for a bundle whose card cannot be read, whose load then says why."""
    if engine != "auto":
        return engine == "keras"
    try:
        return auto_engine(read_card(bundle)) == "keras"
    except (BundleError, OSError):
        return False


class Predictor:
    """Loads a model bundle once and scores uint8 tiles with the bundle's calibration and threshold.

    Scoring runs on ``engine``: Keras by default, or ONNX Runtime on the bundle's verified ``model.onnx`` or on
    its int8 copy (``load(..., engine="onnx"|"onnx-int8"|"auto")``), which need no TensorFlow. ``model`` is
    always the Keras model of record; with an ONNX engine it is loaded on first use.
    """

    def __init__(self, model, card: dict, bundle: Path, engine=None, gate: Gate | None = None):
        self._model, self.card, self.bundle, self.gate = model, card, Path(bundle), gate
        cal = card.get("calibration", {})
        # (temperature, bias, threshold) per scoring mode; older cards carry a temperature only
        self._cal = {mode: tuple(float(cal.get(mode, {}).get(key, card.get(key, default)))
                                 for key, default in (("temperature", 1.0), ("bias", 0.0), ("threshold", 0.5)))
                     for mode in ("single", "tta")}
        self.look_head = LookHead.from_card(card)
        self.engine = engine if engine is not None else KerasEngine(model)
        self._keras_engine = self.engine if isinstance(self.engine, KerasEngine) else None

    @classmethod
    def load(cls, bundle: str | Path, warm_up: bool = True, engine: str = "keras",
             threads: int | None = None) -> "Predictor":
        """Verify the bundle's sha256 against its card, load, compile and warm up.

        ``engine``: "keras" (the default), "onnx" (the bundle must carry a verified model.onnx), "onnx-int8"
        (and a verified model.int8.onnx), or "auto" (the first of int8, ONNX and Keras the bundle and the
        installed libraries allow). ``threads``: ONNX Runtime's threads (default all cores; a batch of N worker
        processes gives each its share).
        """
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
        bundle = Path(bundle)
        card = verify(bundle)
        chosen = auto_engine(card) if engine == "auto" else engine
        if chosen in ("onnx", "onnx-int8"):
            onnx_path = verified_onnx(bundle, card)
            if onnx_path is None:
                raise BundleError(f"{bundle}: no model.onnx; export one with python -m model_training.cli.onnx_export "
                                  f"{bundle}")
            runtime = (_int8_engine(bundle, card, onnx_path, strict=engine == "onnx-int8", threads=threads)
                       if chosen == "onnx-int8" else OnnxEngine(onnx_path, threads))
            pred = cls(None, card, bundle, runtime, load_gate(bundle, card))
        else:
            if importlib.util.find_spec("keras") is None:
                raise BundleError(f"{bundle}: no model.onnx, and Keras is not installed to load model.keras; "
                                  f"export one with python -m model_training.cli.onnx_export {bundle} where "
                                  "requirements.txt is installed")
            pred = cls(_load_keras(bundle), card, bundle, gate=load_gate(bundle, card))
        if warm_up:
            pred.logits(np.zeros((1, TILE, TILE, 3), np.uint8))
            pred.logits(np.zeros((N_VIEWS, TILE, TILE, 3), np.uint8))
        return pred

    @property
    def model(self):
        """The Keras model of record (loaded from the already verified bundle on first use)."""
        if self._model is None:
            self._model = _load_keras(self.bundle)
        return self._model

    @property
    def logit_model(self):
        """The Keras model up to the pre-sigmoid ``logit``."""
        if self._keras_engine is None:
            self._keras_engine = KerasEngine(self.model)
        return self._keras_engine.logit_model

    @property
    def sha256(self) -> str:
        return self.card["sha256"]

    def threshold(self, tta: bool = True) -> float:
        return self._cal["tta" if tta else "single"][2]

    def temperature(self, tta: bool = True) -> float:
        return self._cal["tta" if tta else "single"][0]

    def bias(self, tta: bool = True) -> float:
        return self._cal["tta" if tta else "single"][1]

    @staticmethod
    def _checked(tiles: np.ndarray) -> np.ndarray:
        tiles = np.asarray(tiles)
        if tiles.ndim != 4 or tiles.shape[1:] != (TILE, TILE, 3):
            raise ValueError(f"tiles must have shape (N, 96, 96, 3), got {tiles.shape}")
        return tiles if tiles.dtype == np.uint8 else tiles.astype(np.float32, copy=False)

    def logits(self, tiles: np.ndarray, batch: int = 256) -> np.ndarray:
        """Raw logits for uint8 tiles (N, 96, 96, 3); the model does its own pixel scaling."""
        tiles = self._checked(tiles)
        out = [self.engine.logits(tiles[i:i + batch]) for i in range(0, len(tiles), batch)]
        return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)

    def logits_and_features(self, tiles: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw logits and the pooled features the quality gate reads (None when the engine has none)."""
        tiles = self._checked(tiles)
        out = [self.engine.run(tiles[i:i + batch]) for i in range(0, len(tiles), batch)]
        if not out:
            return np.zeros(0, np.float32), None
        z = np.concatenate([o[0] for o in out]).reshape(-1)
        return z, (None if out[0][1] is None else np.concatenate([o[1] for o in out]))

    def calibrate(self, logits: np.ndarray, tta: bool = True) -> np.ndarray:
        """P(tumour) = sigmoid(logit / temperature + bias), with the card's values for the scoring mode."""
        z = np.asarray(logits, np.float64) / self.temperature(tta) + self.bias(tta)
        return sigmoid(z).astype(np.float32)

    def predict(self, tiles: np.ndarray, tta: bool = False, batch: int = 256, *, look: bool = False) -> Prediction:
        """Calibrated P(tumour) for uint8 tiles; with ``tta`` also the 8 dihedral views and their spread; with
        the bundle's quality gate, each tile's verdict and ood score (from the tile as given: view 0).

        ``look`` (a slide's second look at its highest tiles; implies ``tta``): where the bundle has a look head,
        it scores the views' pooled features instead of the tile head, with its own calibration and threshold.
        """
        tiles = np.asarray(tiles)
        head = self.look_head if look else None
        measuring = _MEASURING.submit(measure, tiles) if self.gate is not None else None
        score = (self.logits_and_features if self.gate is not None or head is not None
                 else (lambda x, b: (self.logits(x, b), None)))
        if not (tta or look):
            z, features = score(tiles, batch)
            out = Prediction(self.calibrate(z, False), z, None, np.zeros(len(z), np.float32), self.threshold(False))
        else:
            n = len(tiles)
            views = dihedral_views(tiles).reshape(n * N_VIEWS, TILE, TILE, 3)
            z, features = score(views, batch)
            if head is not None:
                if features is None:
                    raise BundleError(f"{self.bundle}: the {self.engine.name} engine gives no pooled features for "
                                      "the card's look head; export model.onnx again")
                z = head.logits(features)
            z = z.reshape(n, N_VIEWS)
            features = None if features is None else features.reshape(n, N_VIEWS, -1)[:, 0]
            t, b, threshold = (self._cal["tta"] if head is None
                               else (head.temperature, head.calibration_bias, head.threshold))
            view_p = sigmoid(np.asarray(z, np.float64) / t + b).astype(np.float32)
            zmean = z.mean(axis=1)
            out = Prediction(sigmoid(np.asarray(zmean, np.float64) / t + b).astype(np.float32), zmean, view_p,
                             view_p.std(axis=1), threshold)
        if self.gate is not None:
            verdict = self.gate.judge(measuring.result(), features)
            out.quality, out.ood, out.stain = verdict.quality, verdict.ood, verdict.stain
        return out

    def explain(self, tile: np.ndarray, method: str = "gradcam") -> np.ndarray:
        """Grad-CAM / Grad-CAM++ heat map (96, 96) in [0, 1] on the pre-sigmoid logit."""
        return explain(self, tile, method)

    def explain_all(self, tile: np.ndarray) -> dict[str, np.ndarray]:
        """{"gradcam": map, "gradcam++": map} for one tile, both from a single gradient pass."""
        return explain_all(self, tile)


def _int8_engine(bundle: Path, card: dict, onnx_path: Path, strict: bool, threads: int | None = None) -> OnnxEngine:
    """The engine on the bundle's verified int8 copy, checked on the card's probe tiles.

    When this CPU scores them differently (or the card has none), ``strict`` (engine "onnx-int8" asked for by
    name) refuses; otherwise ("auto") the engine on model.onnx scores instead, with a warning.
    """
    int8_path = verified_int8(bundle, card)
    if int8_path is None:
        raise BundleError(f"{bundle}: no {INT8_FILE}; make one with python -m model_training.cli.quantize {bundle} "
                          "--data PCAM_ROOT")
    runtime = Int8Engine(int8_path, onnx_path, threads)
    expected = (card["onnx_int8"].get("probe") or {}).get("logits")
    diff = runtime.probe_difference(expected) if expected else None
    if diff is not None and diff <= PROBE_TOLERANCE:
        return runtime
    problem = ("the model card records no probe logits for it" if diff is None else
               f"on this CPU it scores the probe tiles differently from the model card (largest logit difference "
               f"{diff:.3g}, more than {PROBE_TOLERANCE:g})")
    if strict:
        raise BundleError(f"{int8_path}: {problem}; score with engine onnx")
    log.warning("%s: %s; scoring with %s instead", int8_path, problem, onnx_path.name)
    return runtime.explainer


def _load_keras(bundle: Path):
    """model.keras of an already verified bundle, in safe mode."""
    import keras

    from model_training.bundle import layers  # noqa: F401  (registers custom layers for safe-mode loading)

    return keras.saving.load_model(Path(bundle) / MODEL_FILE, compile=False, safe_mode=True)
