import random

import numpy as np
import pytest
import torch

from utils import device as device_mod
from utils.device import get_device, seed_everything


def _set(monkeypatch, cuda: bool, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_get_device_priority(monkeypatch, cuda, mps, expected):
    _set(monkeypatch, cuda, mps)
    dev = get_device()
    assert isinstance(dev, torch.device)
    assert dev.type == expected


def test_mps_probe_uses_torch_backend(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device().type == "cpu"


def test_seed_everything_repeats_all_rngs():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(123)
    a = draw()
    seed_everything(123)
    b = draw()
    seed_everything(124)
    c = draw()
    assert a == b
    assert all(x != y for x, y in zip(a, c))


def test_cpu_device_runs_torch_on_one_thread(monkeypatch):
    _set(monkeypatch, False, False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert get_device().type == "cpu" and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        get_device(cpu_threads=None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
