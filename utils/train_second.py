"""A second, independently trained shapes classifier, for the transfer experiment of assignment 05.

Szegedy et al. (2013) found that adversarial examples made for one network often fool *another* network trained
separately (other initialization, other training images, even another architecture). To measure that on the
offline default we need a second model. It is a narrower :class:`utils.models.ShapesNet` (:data:`SMALL_WIDTHS`:
three quarters of the bundled model's channels per stage, about 220 k parameters instead of 396 k), trained from
another seed on a disjoint set of procedural images, but fed exactly the same normalized input as the bundled
model (it reuses the bundled model card's mean and std), so one image tensor can be shown to both.

    python -m utils.train_second [--seed 1] [--epochs 8] [--n-train 15000] [--threads 2]

takes about 100 s on two CPU cores (99.75 % on the held-out ``make_shapes(2000, seed=12345)``) and writes
``utils/weights/shapes_small.safetensors`` (0.9 MB) and ``utils/weights/shapes_small.json`` (architecture,
normalization, sha256, settings, held-out accuracy). ``utils.models.load_model("shapes_small")`` loads it, checking
the checksum. The loop is :func:`utils.training.train_shapes_model`, shared with :mod:`utils.train_bundled`; this
module is its settings.
Same seed and thread count give the same training curve; the weights' last bits can differ between runs (CPU
convolution kernels are not bit-deterministic), so the checksum is of the committed file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .models import WEIGHTS_DIR, model_card
from .training import flip_rotate_shift, train_shapes_model

__all__ = ["SMALL_WIDTHS", "train"]

#: Channel widths of the second model's five conv stages (the bundled model uses 16, 32, 64, 128, 256).
SMALL_WIDTHS: tuple[int, ...] = (12, 24, 48, 96, 192)
NAME = "shapes_small"
#: Training images come from ``make_shapes(n_train, seed=TRAIN_SEED_BASE + seed)``: a seed range disjoint from the
#: bundled model's training (1_000_000 + s), monitoring (2_000_000 + s) and evaluation (12345) seeds.
TRAIN_SEED_BASE = 3_000_000


def train(seed: int = 1, epochs: int = 8, n_train: int = 15000, out: str | Path = WEIGHTS_DIR,
          batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 5e-4, threads: int = 2) -> dict:
    """Train the second model and write ``shapes_small.safetensors`` / ``shapes_small.json`` into ``out``.

    The bundled model's normalization (its card's mean, std and input size); every batch flipped, rotated and
    shifted as a whole (:func:`utils.training.flip_rotate_shift`); no monitoring set. Reproducible from ``seed`` on
    one machine with the same thread count. Returns the metadata written."""
    return train_shapes_model(
        NAME, seed=seed, epochs=epochs, n_train=n_train, out=out, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, threads=threads, train_seed_base=TRAIN_SEED_BASE, widths=SMALL_WIDTHS,
        card=model_card("shapes"), augment=flip_rotate_shift,
        augmentation="flips, 90-degree rotations, circular shifts <= 4 px", progress=False)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--n-train", type=int, default=15000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    a = p.parse_args(argv)
    train(seed=a.seed, epochs=a.epochs, n_train=a.n_train, out=a.out, threads=a.threads)


if __name__ == "__main__":
    main()
