"""Device selection and seeding.

``get_device()`` picks the fastest backend present (CUDA, then Apple's MPS, then the CPU) and, on the CPU, runs
torch on one thread (see :func:`get_device` for why); ``seed_everything`` seeds every random number generator a
notebook touches so a run is repeatable on the same machine.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "exact_float32"]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    if backend is None:
        return False
    try:
        return bool(backend.is_available())
    except Exception:  # pragma: no cover - very old / unusual builds
        return False


#: torch intra-op threads :func:`get_device` sets when it returns the CPU.
CPU_THREADS = 1


def get_device(cpu_threads: int | None = CPU_THREADS) -> torch.device:
    """The best available device: ``cuda`` if a CUDA GPU is usable, else ``mps`` (Apple silicon), else ``cpu``.

    On the CPU it also sets torch to ``cpu_threads`` intra-op threads (default 1; ``None`` leaves torch's setting).
    The course's loops are many small steps (one image, a small network), where extra threads mostly wait for each
    other, and on a shared or busy machine they fight over the cores: measured on a loaded 2-core machine, one
    forward+backward of the shapes model took 12 ms on one thread and 568 ms on two, of EfficientNet-Lite0 at
    160 px 69 ms vs 1.9 s.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    if cpu_threads is not None:
        torch.set_num_threads(int(cpu_threads))
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


def exact_float32() -> None:
    """Turn TensorFloat-32 off for matrix products and cuDNN convolutions (a no-op without CUDA).

    The kit's precision policy: reference tensors are generated on the CPU in exact float32, and a reference run
    on a GPU must reproduce them within the questions' tolerances, which TF32 (10-bit mantissa products, cuDNN's
    default on Ampere and later) does not: measured on an H200, 11 of 97 reference cases missed their tolerances
    with TF32 on (saliency by up to 0.6 % relative), none with it off. Notebooks may keep TF32 for speed; the GPU
    checks (``pytest -m cuda``, ``benchmarks/gpu_check.py``) call this first.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
