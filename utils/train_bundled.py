"""Train the bundled classifier (:class:`utils.models.ShapesNet`) on the procedural shapes data set.

    python -m utils.train_bundled [--seed 0] [--epochs 6] [--n-train 15000] [--out utils/weights]

Reproducible from ``--seed`` (same machine, same thread count). The training images come from
``make_shapes(n_train, seed=1_000_000 + seed)`` and the progress-monitoring images from
``make_shapes(1000, seed=2_000_000 + seed)``; both seed ranges are disjoint from the evaluation seed 12345 that the
final held-out accuracy (and ``benchmarks/bundled_accuracy.py``) uses on 2000 images. Nothing is selected on the
held-out set: it is measured once, after training. The normalization (per-channel mean and std) is fitted on the
training images. Augmentation: random flips and 90-degree rotations (every class is invariant to them) and small
circular shifts, one choice per quarter of a batch (:func:`utils.training.augment_per_quarter`).

Writes ``<out>/shapes.safetensors`` (the state dict) and ``<out>/shapes.json`` (classes, normalization, input
size, architecture, the safetensors file's sha256, the training settings, held-out accuracy and train time). The
loop itself is :func:`utils.training.train_shapes_model`, shared with :mod:`utils.train_second`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .training import augment_per_quarter, train_shapes_model

__all__ = ["train", "TRAIN_SEED_BASE", "MONITOR_SEED_BASE", "INPUT_SIZE"]

TRAIN_SEED_BASE = 1_000_000
MONITOR_SEED_BASE = 2_000_000
INPUT_SIZE = 64


def train(seed: int = 0, epochs: int = 6, n_train: int = 15000, out: str | Path = "utils/weights",
          batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 5e-4, threads: int = 2) -> dict:
    """Train the bundled model and write ``shapes.safetensors`` / ``shapes.json`` into ``out``; return the JSON."""
    return train_shapes_model(
        "shapes", seed=seed, epochs=epochs, n_train=n_train, out=out, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, threads=threads, train_seed_base=TRAIN_SEED_BASE,
        monitor_seed_base=MONITOR_SEED_BASE, input_size=INPUT_SIZE, augment=augment_per_quarter,
        augmentation="flips, 90-degree rotations, circular shifts <= 4 px")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n-train", type=int, default=15000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "weights"))
    a = p.parse_args(argv)
    train(seed=a.seed, epochs=a.epochs, n_train=a.n_train, out=a.out, batch_size=a.batch_size, lr=a.lr,
          threads=a.threads)


if __name__ == "__main__":
    main()
