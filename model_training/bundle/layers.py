"""The project's custom Keras layers, registered so that safe-mode loading of ``model.keras`` accepts them."""
from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="pathreview")
class ChannelReverse(layers.Layer):
    """RGB -> BGR for caffe-style backbones (a named layer, so safe-mode loading accepts it)."""

    def call(self, x):
        return x[..., ::-1]
