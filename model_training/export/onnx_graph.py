"""A second, light runtime for a bundle's model: ``model.onnx``, scored with ONNX Runtime.

Importing TensorFlow and Keras takes 4-8 s on a 2-core machine; ONNX Runtime imports in about 0.1 s. The app
scores through ``model.onnx`` when the bundle carries one, so its first page is ready before TensorFlow would
be. ``model.keras`` stays the model of record: the ONNX file is derived from it, checked against it on export
(logits and Grad-CAM inputs), and listed in the card with its own sha256.

    python -m model_training.cli.onnx_export assets/pathcnn-v6 [--data PCAM_ROOT]

The graph is built layer by layer from the Keras model (tf2onnx pins a protobuf that TensorFlow 2.21 cannot
use). Only the layers this project's architectures use are converted; anything else is refused by name, and
that bundle is simply scored by Keras. Besides ``logit`` the graph outputs ``last_conv`` (NHWC) and
``logit_grad``, the gradient of the logit with respect to ``last_conv``: for the project's head
(global average pooling, dropout, one Dense unit) that gradient is the Dense kernel over the map's area at every
position, so Grad-CAM needs no gradient machinery at run time.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model_training.bundle.contract import FEATURES, INPUT, LAST_CONV, LOGIT, TILE
from model_training.bundle.files import ONNX_FILE, sha256, write_card
from model_training.data.sources import open_source
from model_training.inference.engines import OnnxEngine
from model_training.inference.predictor import Predictor

OPSET = 17
# Export refuses a graph whose logits differ from Keras by more than this on the check tiles.
MAX_LOGIT_DIFF = 1e-3


class ExportError(ValueError):
    """A Keras model this exporter cannot convert (the message names the layer and why)."""


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding: the extra pixel, when the total is odd, goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Graph:
    """Collects ONNX nodes and initializers while Keras layers are converted in topological order."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _tensor(layer_name: str) -> str:
    """The ONNX name of a Keras layer's output (prefixed, so that no layer name collides with the graph's
    own input and output names)."""
    return f"keras/{layer_name}"


def _inputs(layer) -> list[str]:
    tensors = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history.operation.name for t in tensors]


def _activation(g: _Graph, name: str, x: str, activation) -> str:
    act = getattr(activation, "__name__", str(activation))
    if act == "linear":
        return x
    ops = {"relu": "Relu", "sigmoid": "Sigmoid"}
    if act not in ops:
        raise ExportError(f"layer {name!r}: activation {act!r} is not supported")
    return g.node(ops[act], [x], f"{name}/{act}")


def _conv(g: _Graph, layer, x: str, shape: tuple, bn=None) -> str:
    """Conv2D (NCHW), with a following BatchNormalization folded into its kernel and bias."""
    cfg = layer.get_config()
    if cfg.get("groups", 1) != 1 or tuple(cfg["dilation_rate"]) != (1, 1) or cfg["data_format"] != "channels_last":
        raise ExportError(f"layer {layer.name!r}: only ungrouped, undilated channels_last Conv2D is supported")
    kernel = np.asarray(layer.kernel.numpy(), np.float64)  # (kh, kw, cin, cout)
    bias = np.asarray(layer.bias.numpy(), np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    if bn is not None:
        scale = 1.0 / np.sqrt(np.asarray(bn.moving_variance.numpy(), np.float64) + bn.epsilon)
        if bn.scale:
            scale = scale * np.asarray(bn.gamma.numpy(), np.float64)
        beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else 0.0
        kernel = kernel * scale
        bias = (bias - np.asarray(bn.moving_mean.numpy(), np.float64)) * scale + beta
    (kh, kw), (sh, sw) = kernel.shape[:2], tuple(cfg["strides"])
    if cfg["padding"] == "same":
        (top, bottom), (left, right) = _same_pads(shape[0], kh, sh), _same_pads(shape[1], kw, sw)
    else:
        top = bottom = left = right = 0
    out = _tensor(bn.name if bn is not None else layer.name)
    w = g.const(f"{layer.name}/kernel", kernel.transpose(3, 2, 0, 1).astype(np.float32))
    b = g.const(f"{layer.name}/bias", bias.astype(np.float32))
    y = g.node("Conv", [x, w, b], out if cfg["activation"] == "linear" else f"{layer.name}/pre",
               kernel_shape=[kh, kw], strides=[sh, sw], pads=[top, left, bottom, right])
    return y if cfg["activation"] == "linear" else _activation(g, layer.name, y, cfg["activation"])


def _head_gradient(model) -> np.ndarray:
    """d logit / d last_conv at every position: (1, 1, 1, C). Refuses any head but GAP -> Dropout -> Dense(1)."""
    from keras import layers

    names = {layer.name for layer in model.layers}
    if not {LOGIT, LAST_CONV} <= names:
        raise ExportError(f"the model has no {LAST_CONV!r} and {LOGIT!r} layers (the PathReview model contract)")
    dense = model.get_layer(LOGIT)
    chain = [dense]
    while chain[-1].name != LAST_CONV:
        parents = _inputs(chain[-1])
        if len(parents) != 1:
            break
        chain.append(model.get_layer(parents[0]))
    kinds = [type(layer) for layer in chain[1:-1]]
    if (chain[-1].name != LAST_CONV or not isinstance(dense, layers.Dense) or dense.units != 1
            or dense.get_config()["activation"] != "linear"
            or kinds not in ([layers.Dropout, layers.GlobalAveragePooling2D], [layers.GlobalAveragePooling2D])):
        raise ExportError(f"the head from {LAST_CONV!r} to {LOGIT!r} is not global average pooling, dropout and "
                          "one linear Dense unit, so its gradient is not a constant")
    _, h, w, _ = model.get_layer(LAST_CONV).output.shape
    return (dense.kernel.numpy()[:, 0] / (h * w)).reshape(1, 1, 1, -1).astype(np.float32)


def to_onnx(model):
    """The Keras functional ``model`` as an ONNX ModelProto with outputs ``logit``, ``features`` (the logit
    layer's input), ``last_conv`` and ``logit_grad``."""
    # Keras is loaded by the time a Keras model is exported; importing it here keeps the module light for
    # the commands that only read ``model.onnx``
    from keras import layers
    from onnx import TensorProto, checker

    from model_training.bundle.layers import ChannelReverse

    head = _head_gradient(model)  # refuses an unsuitable head before any layer is converted
    g = _Graph()
    consumers: dict[str, list] = {}
    for layer in model.layers:
        if len(layer._inbound_nodes) > 1:
            raise ExportError(f"layer {layer.name!r} is used more than once; shared layers are not supported")
        if not isinstance(layer, layers.InputLayer):
            for parent in _inputs(layer):
                consumers.setdefault(parent, []).append(layer)
    shapes: dict[str, tuple] = {}  # spatial (h, w) of each 4-D tensor, for "same" padding
    folded: set[str] = set()
    for layer in model.layers:
        name, cfg, out = layer.name, layer.get_config(), _tensor(layer.name)
        if isinstance(layer, layers.InputLayer):
            if tuple(layer.output.shape[1:]) != (TILE, TILE, 3):
                raise ExportError(f"input {name!r} has shape {layer.output.shape}; (None, 96, 96, 3) is expected")
            g.node("Transpose", [INPUT], out, perm=[0, 3, 1, 2])
            shapes[out] = (TILE, TILE)
            continue
        if name in folded:
            continue
        srcs = [_tensor(parent) for parent in _inputs(layer)]
        x = srcs[0]
        if isinstance(layer, layers.Conv2D) and type(layer) is layers.Conv2D:
            nxt = consumers.get(name, [])
            bn = (nxt[0] if len(nxt) == 1 and isinstance(nxt[0], layers.BatchNormalization)
                  and cfg["activation"] == "linear" else None)
            _conv(g, layer, x, shapes[x], bn)
            if bn is not None:
                folded.add(bn.name)
                shapes[_tensor(bn.name)] = tuple(bn.output.shape[1:3])
            if cfg["activation"] != "linear":
                g.node("Identity", [f"{name}/{cfg['activation']}"], out)
        elif isinstance(layer, layers.BatchNormalization):
            raise ExportError(f"layer {name!r}: a BatchNormalization not directly after a Conv2D is not supported")
        elif isinstance(layer, layers.Rescaling):
            y = g.node("Mul", [x, g.const(f"{name}/scale", np.float32(cfg["scale"]))], f"{name}/mul")
            g.node("Add", [y, g.const(f"{name}/offset", np.float32(cfg["offset"]))], out)
        elif isinstance(layer, layers.ReLU):
            if cfg.get("max_value") is not None or cfg.get("negative_slope") or cfg.get("threshold"):
                raise ExportError(f"layer {name!r}: only a plain ReLU is supported")
            g.node("Relu", [x], out)
        elif isinstance(layer, layers.Activation):
            g.node("Identity", [_activation(g, name, x, layer.activation)], out)
        elif isinstance(layer, layers.MaxPooling2D):
            (ph, pw), (sh, sw) = tuple(cfg["pool_size"]), tuple(cfg["strides"] or cfg["pool_size"])
            pads = [0, 0, 0, 0]
            if cfg["padding"] == "same":
                (t, b), (lt, r) = _same_pads(shapes[x][0], ph, sh), _same_pads(shapes[x][1], pw, sw)
                pads = [t, lt, b, r]
            g.node("MaxPool", [x], out, kernel_shape=[ph, pw], strides=[sh, sw], pads=pads)
        elif isinstance(layer, layers.Add):
            y = srcs[0]
            for i, other in enumerate(srcs[1:]):
                y = g.node("Add", [y, other], out if i == len(srcs) - 2 else f"{name}/{i}")
        elif isinstance(layer, layers.GlobalAveragePooling2D):
            if cfg.get("keepdims"):
                raise ExportError(f"layer {name!r}: keepdims=True is not supported")
            g.node("Flatten", [g.node("GlobalAveragePool", [x], f"{name}/pool")], out, axis=1)
        elif isinstance(layer, layers.Dropout):
            g.node("Identity", [x], out)
        elif isinstance(layer, layers.Dense):
            w = g.const(f"{name}/kernel", layer.kernel.numpy().astype(np.float32))
            b = g.const(f"{name}/bias", (layer.bias.numpy() if layer.use_bias else np.zeros(layer.units))
                        .astype(np.float32))
            y = g.node("Gemm", [x, w, b], out if cfg["activation"] == "linear" else f"{name}/pre")
            if cfg["activation"] != "linear":
                g.node("Identity", [_activation(g, name, y, layer.activation)], out)
        elif isinstance(layer, layers.Concatenate):
            if len(layer.output.shape) != 4 or cfg["axis"] not in (-1, 3):
                raise ExportError(f"layer {name!r}: only channel concatenation of feature maps is supported")
            g.node("Concat", srcs, out, axis=1)
        elif isinstance(layer, ChannelReverse):
            g.node("Slice", [x, g.const(f"{name}/starts", [-1]), g.const(f"{name}/ends", [-(2 ** 62)]),
                             g.const(f"{name}/axes", [1]), g.const(f"{name}/steps", [-1])], out)
        else:
            raise ExportError(f"layer {name!r} ({type(layer).__name__}) is not supported by the ONNX export")
        if len(layer.output.shape) == 4:
            shapes[out] = tuple(layer.output.shape[1:3])
    g.node("Identity", [_tensor(LOGIT)], "logit")
    head_inputs = _inputs(model.get_layer(LOGIT))
    g.node("Identity", [_tensor(head_inputs[0])], FEATURES)
    n_features = int(model.get_layer(LOGIT).input.shape[-1])
    g.node("Transpose", [_tensor(LAST_CONV)], "last_conv", perm=[0, 2, 3, 1])
    g.node("Identity", [g.const("head_gradient", head)], "logit_grad")
    _, fh, fw, channels = model.get_layer(LAST_CONV).output.shape
    h = g.helper
    graph = h.make_graph(
        g.nodes, model.name, [h.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", TILE, TILE, 3])],
        [h.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1]),
         h.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["N", n_features]),
         h.make_tensor_value_info("last_conv", TensorProto.FLOAT, ["N", fh, fw, channels]),
         h.make_tensor_value_info("logit_grad", TensorProto.FLOAT, list(head.shape))], g.inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="pathreview")
    proto.ir_version = 8  # what every ONNX Runtime since 1.14 reads
    checker.check_model(proto)
    return proto


def check_tiles(data: Path | None, n: int = 256) -> np.ndarray:
    """Tiles to compare the two runtimes on: real validation tiles when a dataset is given, plus fixed noise."""
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, (32, TILE, TILE, 3), dtype=np.uint8)]
    if data is not None:
        source = open_source(Path(data), "valid")
        tiles.append(source.subset(range(min(n, len(source)))).load_all()[0])
    return np.concatenate(tiles)


def write_onnx(bundle: Path, keras_pred, tiles: np.ndarray) -> dict:
    """Write ``bundle/model.onnx`` from ``keras_pred`` (a Keras-engine Predictor of this bundle's model.keras),
    compare both on ``tiles``, and return the card's ``onnx`` entry; the card itself is the caller's to write."""
    import onnxruntime

    path = Path(bundle) / ONNX_FILE
    tmp = path.with_suffix(".onnx.part")
    tmp.write_bytes(to_onnx(keras_pred.model).SerializeToString())
    onnx_engine = OnnxEngine(tmp)
    diff = float(np.abs(onnx_engine.logits(tiles) - keras_pred.logits(tiles)).max())
    grads = [np.abs(onnx_engine.cam_inputs(t)[1] - keras_pred.engine.cam_inputs(t)[1]).max() for t in tiles[:8]]
    if diff > MAX_LOGIT_DIFF or max(grads) > MAX_LOGIT_DIFF:
        tmp.unlink()
        raise ExportError(f"{bundle}: ONNX logits differ from Keras by {diff:.2g} (gradient {max(grads):.2g}); "
                          f"more than {MAX_LOGIT_DIFF:g}, so model.onnx was not written")
    tmp.replace(path)
    return {"file": ONNX_FILE, "sha256": sha256(path), "opset": OPSET, "onnxruntime": onnxruntime.__version__,
            "check_tiles": int(len(tiles)), "max_abs_logit_diff": diff,
            "source_sha256": keras_pred.sha256, "command": "python -m model_training.cli.onnx_export BUNDLE"}


def export_bundle(bundle: Path, tiles: np.ndarray) -> dict:
    """Export an existing bundle: load its verified model.keras, write model.onnx, record it in the card."""
    keras_pred = Predictor.load(bundle, warm_up=False, engine="keras")
    card = keras_pred.card
    card["onnx"] = write_onnx(bundle, keras_pred, tiles)
    write_card(bundle, card)
    return card["onnx"]


def export_if_supported(bundle: Path, keras_pred, tiles: np.ndarray) -> dict | None:
    """``write_onnx``, or None with one warning line when the model has a layer the export does not convert
    (such a bundle is scored by Keras, as before)."""
    try:
        return write_onnx(bundle, keras_pred, tiles)
    except ExportError as exc:
        logging.getLogger("pathreview").warning("no model.onnx written (the app will load TensorFlow): %s", exc)
        return None
