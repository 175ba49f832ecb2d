"""Building a model: typed config, augmentation, input pipelines, architectures, the loop, sweeps, finishing a
bundle, ensembles, recalibration and multi-worker training."""
