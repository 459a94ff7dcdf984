"""Device selection and seeding.

``get_device()`` picks the fastest backend present (CUDA, then Apple's MPS, then the CPU); ``seed_everything``
seeds every random number generator a notebook touches so a run is repeatable on the same machine.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything"]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    if backend is None:
        return False
    try:
        return bool(backend.is_available())
    except Exception:  # pragma: no cover - very old / unusual builds
        return False


def get_device() -> torch.device:
    """The best available device: ``cuda`` if a CUDA GPU is usable, else ``mps`` (Apple silicon), else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    Also sets ``PYTHONHASHSEED`` for child processes. This makes a run repeatable on one machine; bit-identical
    results across different hardware are not promised by torch.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
