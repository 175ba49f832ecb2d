"""Typed training settings: what a run trains, on what data, with which augmentation (no framework import, so
commands can list the choices without loading Keras)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

TRANSFER = frozenset({"resnet50", "efficientnetb0", "mobilenetv2"})
ARCHITECTURES = ("pathcnn", "pathcnn-small", "pathcnn-fine", *sorted(TRANSFER))
STAINS = ("hed", "hsv", "hed+hsv", "none")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "plateau")
JIT = ("auto", "on", "off")
DISTRIBUTE = ("none", "mirrored", "multiworker")
SWEEPABLE = {"lr": float, "batch_size": int, "optimizer": str}


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run and how strong they are.

    ``stain`` is 'hed', 'hsv', 'hed+hsv' (HED at ``stain_strength``, then HSV at ``hsv_strength``) or 'none'.
    """

    dihedral: bool = True
    shift: float = 0.05  # max shift as a fraction of the tile side
    zoom: float = 0.10  # max zoom-in as a fraction
    brightness: float = 0.10  # fraction of 255
    contrast: float = 0.15
    stain: str = "hed+hsv"
    stain_strength: float = 0.2
    hsv_strength: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def off(cls) -> "AugmentConfig":
        return cls(dihedral=False, shift=0.0, zoom=0.0, brightness=0.0, contrast=0.0, stain="none")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. The defaults are those of the shipped model's recipe; ``command`` is recorded in the
    card so the run can be repeated."""

    data: str
    out: str = "runs/pathcnn"
    train_split: str = "train"
    val_split: str = "valid"
    arch: str = "pathcnn"
    width: int | None = None  # pathcnn base width (default 24)
    weights: str = "none"  # 'imagenet' for transfer learning
    finetune_layers: int = 0  # transfer only: after the head warm-up, unfreeze the top N backbone layers
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    dropout: float = 0.3
    patience: int = 6
    limit: int | None = None  # stratified subset of N training tiles
    val_limit: int | None = None
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)  # None: no augmentation
    ema: float = 0.0  # per-step momentum of a weight average shipped instead of the best epoch (0: off)
    class_weights: bool = True
    target_sensitivity: float = 0.95
    seed: int = 42
    jit: str = "auto"
    distribute: str = "none"
    stream: bool = False  # decode from disk each epoch instead of caching in RAM
    verbose: int | None = None  # keras verbosity (default: bar on a terminal)
    command: str = ""  # the command line that made this run, for the card

    def __post_init__(self) -> None:
        for name, value, allowed in (("arch", self.arch, ARCHITECTURES), ("optimizer", self.optimizer, OPTIMIZERS),
                                     ("schedule", self.schedule, SCHEDULES), ("jit", self.jit, JIT),
                                     ("distribute", self.distribute, DISTRIBUTE)):
            if value not in allowed:
                raise ValueError(f"{name} {value!r}: choose from {', '.join(allowed)}")
        if self.augment is not None and self.augment.stain not in STAINS:
            raise ValueError(f"unknown stain augmentation {self.augment.stain!r}; use one of {', '.join(STAINS)}")

    @property
    def transfer(self) -> bool:
        """True when the backbone starts from pretrained weights."""
        return self.weights not in (None, "none")


def parse_sweep(items: list[str]) -> dict[str, list]:
    """``["lr=1e-3,3e-3", "optimizer=adamw,sgd"]`` → ``{"lr": [0.001, 0.003], "optimizer": ["adamw", "sgd"]}``."""
    grid = {}
    for item in items:
        key, _, vals = item.partition("=")
        key = key.replace("-", "_")
        if key not in SWEEPABLE or not vals:
            raise ValueError(f"--sweep {item!r}: use lr=, batch_size= or optimizer= with comma-separated values")
        grid[key] = [SWEEPABLE[key](v) for v in vals.split(",")]
    return grid
