"""Saliency maps (Simonyan, Vedaldi & Zisserman, 2014): how much each pixel matters to the correct class score.

For one image ``x`` with label ``y`` the map is ``M[h, w] = max_c |d s_y(x) / d x[c, h, w]|`` where ``s_y`` is the
raw (pre-softmax) score of class ``y``. Batched: images do not interact, so the gradient of the *sum* of the selected
scores gives every image's own gradient at once.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["compute_saliency_maps"]


def compute_saliency_maps(X: torch.Tensor, y: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Saliency maps of a batch.

    Args:
        X: images ``(N, C, H, W)`` in the model's input space (already normalized).
        y: labels ``(N,)`` int64, the class whose raw score is differentiated for each image.
        model: a classifier in eval mode returning raw scores ``(N, K)``; its parameters are left untouched.

    Returns:
        ``(N, H, W)`` tensor, same dtype and device as ``X``: per pixel, the largest absolute gradient of the
        correct-class score over the channels. ``X`` itself is not modified and gets no ``.grad``.
    """
    X = X.detach().clone().requires_grad_(True)
    scores = model(X)                                      # (N, K) raw scores, no softmax
    correct = scores.gather(1, y.view(-1, 1).to(scores.device)).sum()
    (grad,) = torch.autograd.grad(correct, X)
    return grad.abs().amax(dim=1)


# ------------------------------------------------------------------------------------------------ known mistakes
# Typical wrong answers with the graded functions' signatures (not in ``__all__``). The grader runs them on a
# wrong answer's inputs to name the mistake (``Question.mistakes``); the mutant corpus grades them too.


def _class_grad(X, y, model, objective):
    X = X.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(objective(model(X)), X)
    return g


def saliency_softmax_probability(X, y, model):
    """Gradient of the softmax probability instead of the raw score."""
    g = _class_grad(X, y, model, lambda s: s.softmax(dim=1).gather(1, y.view(-1, 1)).sum())
    return g.abs().amax(dim=1)


def saliency_signed_gradient(X, y, model):
    """Max over channels of the signed gradient (no absolute value)."""
    return _class_grad(X, y, model, lambda s: s.gather(1, y.view(-1, 1)).sum()).amax(dim=1)


def saliency_sum_over_channels(X, y, model):
    """Sum of |gradient| over the colour channels instead of the max."""
    return _class_grad(X, y, model, lambda s: s.gather(1, y.view(-1, 1)).sum()).abs().sum(dim=1)
