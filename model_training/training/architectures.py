"""Model architectures. Every model honours the contract in ``model_training.bundle.contract``."""
from __future__ import annotations

import keras
from keras import layers

from model_training.bundle.contract import LAST_CONV, LOGIT, OUTPUT, TILE
from model_training.bundle.layers import ChannelReverse
from model_training.training.config import ARCHITECTURES, TRANSFER


def _conv_bn(x, filters: int, stride: int = 1, name: str = "", kernel: int = 3):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9: running statistics settle within tens of steps, so short runs evaluate sanely too
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _head(features, dropout: float, name: str) -> keras.Model:
    features = layers.Activation("linear", name=LAST_CONV)(features)
    x = layers.GlobalAveragePooling2D(name="gap")(features)
    x = layers.Dropout(dropout, name="dropout")(x)
    logit = layers.Dense(1, name=LOGIT)(x)
    out = layers.Activation("sigmoid", name=OUTPUT, dtype="float32")(logit)
    return features, out


def _residual_stage(x, filters: int, stage: int, pool: bool):
    """Optionally halve the map, widen to ``filters``, then one residual block."""
    if pool:
        x = layers.MaxPooling2D(2, name=f"s{stage}_pool")(x)
    x = _conv_bn(x, filters, name=f"s{stage}_expand")
    shortcut = x
    y = _conv_bn(x, filters, name=f"s{stage}_a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"s{stage}_b_conv")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"s{stage}_b_bn")(y)
    return layers.ReLU(name=f"s{stage}_out")(layers.Add(name=f"s{stage}_add")([shortcut, y]))


def pathcnn(widths: tuple[int, ...] = (24, 48, 96, 192), dropout: float = 0.3,
            name: str = "pathcnn", fine: bool = False) -> keras.Model:
    """CPU-lean residual CNN: two stride-2 convs take the tile to 24x24 at once, then one residual block per
    stage at 24, 12 and 6 pixels, so most channels live where the resolution is small.

    ``fine`` keeps a residual stage at 48x48 (one stride-2 stem conv, then stages at 48, 24, 12 and 6): the
    same depth of channels, but the first block sees nuclei at twice the resolution. It is a second opinion
    built to disagree with the default where the default is weakest, not a faster model.
    """
    inp = keras.Input((TILE, TILE, 3), dtype="float32", name="tile")
    # The model owns its scaling: callers always pass raw [0, 255] pixels.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inp)
    if fine:
        x = _conv_bn(x, widths[0], stride=2, name="stem1")  # 48x48
        for stage, filters in enumerate(widths):
            x = _residual_stage(x, filters, stage, pool=stage > 0)  # 48, 24, 12, 6
    else:
        x = _conv_bn(x, widths[0] // 2, stride=2, name="stem1")  # 48x48
        x = _conv_bn(x, widths[0], stride=2, name="stem2")  # 24x24
        for stage, filters in enumerate(widths[1:], start=1):
            x = _residual_stage(x, filters, stage, pool=stage > 1)  # 24, 12, 6
    _, out = _head(x, dropout, name)
    return keras.Model(inp, out, name=name)


def _transfer(arch: str, weights: str | None, dropout: float) -> keras.Model:
    """An ImageNet backbone built flat on our input, with the backbone's own preprocessing in-graph."""
    apps = keras.applications
    inp = keras.Input((TILE, TILE, 3), dtype="float32", name="tile")
    if arch == "resnet50":
        # caffe-style: RGB->BGR and ImageNet mean subtraction
        x = ChannelReverse(name="rgb_to_bgr")(inp)
        x = layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0], name="imagenet_mean")(x)
        ctor = apps.ResNet50
    elif arch == "mobilenetv2":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inp)
        ctor = apps.MobileNetV2
    else:  # EfficientNet rescales inside its own layers and expects [0, 255]
        x = layers.Identity(name="rescale")(inp)
        ctor = apps.EfficientNetB0
    try:
        base = ctor(include_top=False, weights=weights, input_tensor=x)
    except Exception as exc:  # network errors surface as many exception types
        raise RuntimeError(f"could not load {weights} weights for {arch}: {exc}. ImageNet weights need an "
                           "internet connection (or a pre-filled ~/.keras/models); use --weights none to "
                           "train from scratch") from exc
    # Rebuild flat: the application's layers are already connected to our input tensor.
    features, out = _head(base.output, dropout, arch)
    model = keras.Model(inp, out, name=arch)
    model.backbone_layers = [l.name for l in base.layers]
    return model


def build_model(arch: str = "pathcnn", weights: str | None = None, dropout: float = 0.3,
                width: int | None = None) -> keras.Model:
    """Build an architecture by name (see ``ARCHITECTURES``)."""
    if arch == "pathcnn":
        # width 24 measured fastest per unit of capacity on a 2-core CPU (width 32 fell off a cache cliff)
        return pathcnn(tuple(w * (width or 24) for w in (1, 2, 4, 8)), dropout)
    if arch == "pathcnn-small":
        return pathcnn((16, 32, 64, 128), dropout, name="pathcnn_small")
    if arch == "pathcnn-fine":
        # 16 channels at 48x48, then the default's widths: 209 MFLOPs against the default's 184
        return pathcnn((16, 48, 96, 192), dropout, name="pathcnn_fine", fine=True)
    if arch in TRANSFER:
        return _transfer(arch, None if weights in (None, "none") else weights, dropout)
    raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")


def set_trainable_top(model: keras.Model, n_layers: int) -> None:
    """Freeze the backbone except its top ``n_layers``; BatchNorm stays frozen (small-batch fine-tuning)."""
    names = getattr(model, "backbone_layers", None)
    if names is None:
        return
    backbone = [model.get_layer(n) for n in names if n in {l.name for l in model.layers}]
    cut = len(backbone) - max(n_layers, 0)
    for i, layer in enumerate(backbone):
        layer.trainable = i >= cut and not isinstance(layer, layers.BatchNormalization)


def count_flops(model: keras.Model) -> int:
    """Forward-pass FLOPs per image (2 x multiply-adds of conv and dense layers)."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            per_out = kh * kw * (cin if isinstance(layer, layers.Conv2D) and
                                 not isinstance(layer, layers.DepthwiseConv2D) else 1)
            if isinstance(layer, layers.Conv2D) and layer.groups > 1:
                per_out //= layer.groups
            flops += 2 * out[1] * out[2] * out[3] * per_out
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)
