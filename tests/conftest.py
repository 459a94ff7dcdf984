"""Shared pytest setup. Other test modules may append fixtures below; keep this file import-light."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # tests never open windows

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("TEST_TORCH_THREADS", "2")))


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test made."""
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture(scope="session")
def shapes_model():
    """The bundled classifier on the CPU (eval mode, frozen). Session-scoped: do not modify it in a test."""
    from utils.models import load_model

    return load_model("shapes", device="cpu")


@pytest.fixture(scope="session")
def shapes_image():
    """One procedural image (``make_shapes(1, seed=3)``) normalized for the shapes model: ``(1, 3, 64, 64)``."""
    from utils.data import make_shapes
    from utils.image import preprocess

    images, _, _ = make_shapes(1, seed=3)
    return preprocess(images, device="cpu")
