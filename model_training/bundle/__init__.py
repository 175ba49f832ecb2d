"""The model bundle on disk (files, card, sha256 checks) and the model contract every part relies on.

The front below is what most callers need; ``files``, ``contract``, ``layers`` (Keras custom layers, imported
only where Keras is) and ``disclaimer`` hold the rest.
"""
from model_training.bundle.contract import LAST_CONV, LOGIT, OUTPUT, TILE, TILE_MPP
from model_training.bundle.files import (CARD_FILE, DEFAULT_BUNDLE, BundleError, default_bundle, read_card, sha256,
                                         verify, write_card)

__all__ = ["CARD_FILE", "DEFAULT_BUNDLE", "LAST_CONV", "LOGIT", "OUTPUT", "TILE", "TILE_MPP", "BundleError",
           "default_bundle", "read_card", "sha256", "verify", "write_card"]
