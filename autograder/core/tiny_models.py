"""Tiny, public, deterministic models used as arguments of graded cases.

Their weights are drawn from a seed when references are generated and then stored in the case file, so grading
never depends on the RNG of the machine that grades. Both follow the bundled model's layout: a ``features``
sequence of conv stages and a ``classifier`` head, so student code written against ``model.features`` works.
"""
from __future__ import annotations

import torch
from torch import nn


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    """Three conv stages + linear head. Input ``(N, 3, H, W)`` with H, W >= 8; output ``(N, num_classes)``."""
    model = nn.Sequential()
    model.features = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
    )
    model.pool = nn.AdaptiveAvgPool2d(1)
    model.flatten = nn.Flatten()
    model.classifier = nn.Linear(16, num_classes)
    return model


def tiny_mlp(in_features: int = 16, out_features: int = 8) -> nn.Module:
    """Embedding net for metric-learning cases: ``(N, in_features) -> (N, out_features)``."""
    return nn.Sequential(nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, out_features))


TINY_MODELS = {"tiny_cnn": tiny_cnn, "tiny_mlp": tiny_mlp}


def build_tiny(name: str, seed: int | None = None) -> nn.Module:
    """Build a tiny model by name in eval mode with frozen parameters; draw its weights from ``seed`` if given."""
    if name not in TINY_MODELS:
        raise KeyError(f"unknown tiny model {name!r}; valid: {', '.join(sorted(TINY_MODELS))}")
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TINY_MODELS[name]()
    else:
        model = TINY_MODELS[name]()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
