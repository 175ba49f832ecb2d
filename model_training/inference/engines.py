"""The two runtimes a Predictor can score with: Keras (the model of record) and ONNX Runtime (its export).

Both take uint8 or float32 tiles (N, 96, 96, 3) in [0, 255] and return raw logits, with the pooled features
the ``logit`` layer reads (the quality gate's input) when asked; both give Grad-CAM its
inputs for one tile: the logit, its gradient with respect to ``last_conv``, and ``last_conv`` itself (NHWC).
Pixel scaling happens inside either graph.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from model_training.bundle.contract import FEATURES, INPUT, LAST_CONV, LOGIT, TILE


class KerasEngine:
    """Scores with one compiled TensorFlow function over the model's ``logit`` output."""

    name = "keras"

    def __init__(self, model):
        import keras

        self.model = model
        head = model.get_layer(LOGIT)
        self.logit_model = keras.Model(model.inputs, head.output, name="logit_model")
        self._both = keras.Model(model.inputs, [head.output, head.input], name="logit_features_model")
        self._fn = self._compile(self.logit_model)
        self._fn_both = self._compile(self._both)
        self._cams = None  # compiled on the first cam_inputs() call

    @staticmethod
    def _compile(net):
        import keras

        if keras.backend.backend() != "tensorflow":
            return lambda x: keras.tree.map_structure(np.asarray, net(x.astype(np.float32), training=False))
        import tensorflow as tf

        def compiled(dtype):
            # uint8 tiles are cast inside the graph: a float32 copy of a TTA batch is 4x its size
            return tf.function(lambda x: net(tf.cast(x, tf.float32), training=False),
                               autograph=False, input_signature=[tf.TensorSpec((None, TILE, TILE, 3), dtype)])

        fns = {np.dtype(np.uint8): compiled(tf.uint8), np.dtype(np.float32): compiled(tf.float32)}
        return lambda x: tf.nest.map_structure(lambda t: t.numpy(), fns[x.dtype](tf.constant(x)))

    def logits(self, tiles: np.ndarray) -> np.ndarray:
        """(N,) logits for a uint8 or float32 batch."""
        return np.asarray(self._fn(tiles)).reshape(-1)

    def run(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,) logits and (N, C) pooled features for a uint8 or float32 batch, in one pass."""
        logit, features = self._fn_both(tiles)
        return np.asarray(logit).reshape(-1), np.asarray(features, np.float32)

    def cam_inputs(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logit (1,), d logit / d last_conv (1, h, w, C), last_conv (1, h, w, C)) for one tile."""
        import tensorflow as tf

        if self._cams is None:
            import keras

            net = keras.Model(self.logit_model.inputs,
                              [self.logit_model.output, self.logit_model.get_layer(LAST_CONV).output],
                              name="explain_model")

            def cams(x):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x)
                    logit, conv = net(x, training=False)
                    score = logit[:, 0]
                return score, tape.gradient(score, conv), conv

            self._cams = tf.function(cams, autograph=False,
                                     input_signature=[tf.TensorSpec((1, TILE, TILE, 3), tf.float32)])
        score, grads, conv = self._cams(tf.constant(np.asarray(tile, np.float32)[None]))
        return score.numpy(), grads.numpy(), conv.numpy()


class OnnxEngine:
    """Scores with ONNX Runtime on the CPU; importing it takes about 0.1 s where TensorFlow takes seconds."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        # Idle worker threads would otherwise spin for a while after each call, taking the cores from the
        # web server and the other sessions.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        # graphs exported before the quality gate have no features output
        self.has_features = FEATURES in {o.name for o in self.session.get_outputs()}

    def logits(self, tiles: np.ndarray) -> np.ndarray:
        """(N,) logits for a uint8 or float32 batch."""
        x = np.ascontiguousarray(tiles, dtype=np.float32)
        return self.session.run(["logit"], {INPUT: x})[0].reshape(-1)

    def run(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N,) logits and (N, C) pooled features (None from a graph without them), in one pass."""
        if not self.has_features:
            return self.logits(tiles), None
        x = np.ascontiguousarray(tiles, dtype=np.float32)
        logit, features = self.session.run(["logit", FEATURES], {INPUT: x})
        return logit.reshape(-1), features

    def cam_inputs(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logit (1,), d logit / d last_conv (1, h, w, C), last_conv (1, h, w, C)) for one tile."""
        x = np.asarray(tile, np.float32)[None]
        logit, conv, grad = self.session.run(["logit", "last_conv", "logit_grad"], {INPUT: x})
        return logit[:, 0], np.broadcast_to(grad, conv.shape).copy(), conv


PROBE_SEED, PROBE_TILES = 0, 8
# Largest logit difference from the card's probe logits that the int8 graph may show on another CPU. Integer
# kernels differ only in float rounding when they rescale; an int8 graph that overflows 16-bit sums (CPUs
# without VNNI and full-range weights) is off by whole logits.
PROBE_TOLERANCE = 0.05


def probe_tiles() -> np.ndarray:
    """Fixed noise tiles (N, 96, 96, 3) whose int8 logits the card records when the copy is made."""
    return np.random.default_rng(PROBE_SEED).integers(0, 256, (PROBE_TILES, TILE, TILE, 3), dtype=np.uint8)


class Int8Engine(OnnxEngine):
    """Scores with the int8 copy of model.onnx (model_training.cli.quantize); Grad-CAM runs on model.onnx itself,
    since the int8 graph has only the ``logit`` and ``features`` outputs."""

    name = "onnx-int8"

    def __init__(self, path: Path, explain_path: Path, threads: int | None = None):
        super().__init__(path, threads)
        self.explainer = OnnxEngine(explain_path, threads)

    def cam_inputs(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.explainer.cam_inputs(tile)

    def probe_difference(self, expected) -> float:
        """Largest difference between this CPU's logits for ``probe_tiles()`` and ``expected`` (the card's)."""
        got = self.logits(probe_tiles())
        expected = np.asarray(expected, np.float32)
        return float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
