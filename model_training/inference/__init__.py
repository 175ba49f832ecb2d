"""Scoring tiles: the one ``Predictor``, the runtimes it scores with, and Grad-CAM.

``Predictor.load(bundle, engine=...)`` verifies and loads a bundle; ``predict`` scores uint8 tiles.
"""
from model_training.inference.predictor import ENGINES, N_VIEWS, Prediction, Predictor, dihedral_views

__all__ = ["ENGINES", "N_VIEWS", "Prediction", "Predictor", "dihedral_views"]
