"""The model contract every bundle honours, as names and sizes (no framework import, so anyone may read it).

* functional Keras 3 model, no nested sub-models (Grad-CAM tools must see every layer);
* input float32 (N, 96, 96, 3) RGB in [0, 255], rescaled inside the graph;
* a last convolutional feature layer named ``last_conv``;
* a Dense layer named ``logit`` (pre-sigmoid) followed by the sigmoid output ``p_tumour``; its input (the
  pooled features, N x C) is what the quality gate's out-of-distribution score measures;
* the ONNX export's graph input is named ``tiles`` (NHWC float32 in [0, 255]); its outputs ``logit`` and
  ``features`` (the int8 copy keeps both).
"""
from __future__ import annotations

TILE = 96
TILE_MPP = 0.972  # µm per pixel of PCam tiles; the model card records where the figure comes from
LAST_CONV = "last_conv"
LOGIT = "logit"
OUTPUT = "p_tumour"
FEATURES = "features"  # the ONNX output holding the logit layer's input
INPUT = "tiles"  # the ONNX graph's input, NHWC float32 in [0, 255]
