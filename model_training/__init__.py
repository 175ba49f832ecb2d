"""PathReview's model side: from tile files to a verified model bundle, and from a bundle to scores.

One job per subpackage, lower ones never importing higher ones:

- ``bundle``: the model bundle on disk (files, card, sha256 checks) and the model contract (layer names,
  custom layers) that every other part relies on;
- ``data``: tiles from files (decoding, dataset layouts, subsets, the PCam download, the stain space);
- ``inference``: scoring tiles (the one ``Predictor``, its engines, Grad-CAM);
- ``export``: light runtimes of a bundle (``model.onnx`` and its int8 copy);
- ``evaluation``: measuring a bundle (metrics, figures, colour-shift stress test, batch scoring, the example
  tiles picked by outcome);
- ``slides``: the whole-slide pipeline (reader, tissue, grid, tiles, scoring, outputs, labelled test slides);
- ``training``: building a model (typed config, augmentation, input pipelines, architectures, the loop,
  sweeps, finishing a bundle, ensembles, recalibration);
- ``cli``: one thin module per command, ``python -m model_training.cli.<command>``.
"""
