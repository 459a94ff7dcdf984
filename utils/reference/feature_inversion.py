"""Feature inversion (Mahendran and Vedaldi, *Understanding deep image representations by inverting them*, CVPR
2015): which image does a layer "see"?

Given the code ``Phi0 = Phi(x0)`` of an image at some layer, look for an image whose code matches it while looking
like a natural image:

    x* = argmin_x  ||Phi(x) - Phi0||^2 / ||Phi0||^2  +  lambda_alpha * N_alpha(x)  +  lambda_tv * V_beta(x)

* the data term is a *relative* squared error: about 1 at the start whatever the layer's scale, so the same
  regularization weights work at every depth;
* ``N_alpha(x) = sum |x|^alpha`` (alpha = 6 in the paper) keeps pixel values in a natural range;
* ``V_beta(x) = sum_{i<H-1, j<W-1} ((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2)^(beta / 2)`` is the total
  variation of the image *raised to the power beta / 2 per pixel*: beta = 1 is the usual (isotropic) TV, which
  favours piecewise-constant images; beta = 2 (the paper's choice for deep layers) penalizes the squared gradient
  and gives smoother images without the "spikes" that beta < 2 leaves. A tiny ``TV_EPS`` inside the power keeps the
  gradient finite where neighbouring pixels are equal (``d/ds s^(beta/2)`` is infinite at ``s = 0`` for
  beta < 2).

Early layers give back the image almost exactly; deep layers keep what the classifier needs (parts, texture,
rough layout) and lose position, colour and fine detail.

Graded: :func:`feature_reconstruction_loss`, :func:`alpha_norm`, :func:`tv_norm`, :func:`invert_features`.
:func:`utils.models.layer_output` gives a layer's features (DeepDream and neuron visualization use it too).
"""
from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from utils.image import clamp_to_bounds
from utils.models import layer_output

__all__ = ["feature_reconstruction_loss", "alpha_norm", "tv_norm", "invert_features"]

#: Added to the squared gradient magnitude inside ``(.)^(beta / 2)`` so that the gradient of :func:`tv_norm` stays
#: finite where neighbouring pixels are equal. Small enough that the value is the exact formula's to float32
#: precision wherever neighbours differ (``(s + eps)^(1/2) - s^(1/2) <= eps / (2 sqrt(s))``).
TV_EPS = 1e-8


def feature_reconstruction_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared error ``||features - target||^2 / ||target||^2`` (sums over every entry).

    Args:
        features: features of the image being optimized, any shape, e.g. ``(N, C, H, W)`` or ``(N, K)``.
        target: features to reproduce, the same shape (not all zero).
    Returns:
        0-d tensor; 1 for ``features = 0``, 0 for a perfect match.
    Raises:
        ValueError: the shapes differ (no broadcasting: that would compare features of different layers).
    """
    if features.shape != target.shape:
        raise ValueError(f"feature_reconstruction_loss: features {tuple(features.shape)} and target "
                         f"{tuple(target.shape)} differ; take both from the same layer")
    return (features - target).pow(2).sum() / target.pow(2).sum()


def alpha_norm(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``sum |x|^alpha`` over every entry (the alpha-norm raised to the power alpha; no root).

    Args:
        x: any shape, e.g. ``(N, 3, H, W)`` images.
        alpha: exponent (> 0; 6 in Mahendran and Vedaldi).
    Returns:
        0-d tensor.
    """
    return x.abs().pow(alpha).sum()


def tv_norm(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Mahendran and Vedaldi's total variation ``V^beta`` of images ``(N, C, H, W)``.

    Per image and channel, ``sum_{i<H-1, j<W-1} ((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2 + TV_EPS)^(beta/2)``
    (both differences taken at the same pixel, so the last row and column have no term), summed over images and
    channels. Unlike the squared TV of neural style transfer (assignment 04: ``sum dx^2 + sum dy^2``, each
    direction over its full range, i.e. beta = 2 without the crop), the power applies to the *sum* of the two
    squared differences at a pixel, so beta controls how much large jumps cost relative to many small ones.

    Args:
        x: ``(N, C, H, W)`` with ``H, W >= 2``.
        beta: exponent (> 0); 1 is isotropic TV, 2 the squared gradient magnitude.
    Returns:
        0-d tensor, with a finite gradient everywhere (also where neighbours are equal, also for beta < 2).
    """
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return (right.pow(2) + down.pow(2) + TV_EPS).pow(beta / 2).sum()


def _relative_errors(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(N,)`` per-image relative squared errors (image ``i``'s own ``||Phi0_i||^2`` in the denominator)."""
    diff = (features - target).flatten(1).pow(2).sum(dim=1)
    return diff / target.flatten(1).pow(2).sum(dim=1)


def invert_features(target: torch.Tensor, model: nn.Module, layer_index: int, size, bounds=None, *,
                    num_iterations: int = 200, learning_rate: float = 0.05, alpha: float = 6.0,
                    alpha_weight: float = 0.0, beta: float = 2.0, tv_weight: float = 0.0, init_std: float = 0.1,
                    generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
    """Reconstruct images ``(N, 3, H, W)`` from the features ``target`` of layer ``layer_index``.

    Adam on the image, from Gaussian noise ``init_std * randn`` drawn from ``generator`` (default: a generator seeded
    with ``torch.initial_seed()``, so the start depends on the last seed set, not on what drew from the global RNG
    since; building a tiny model between seeding and the call, as the reference generator does, changes nothing),
    minimizing per image ``relative error + alpha_weight * alpha_norm(x_i, alpha) + tv_weight * tv_norm(x_i, beta)``
    (summed over the N images, which are independent), and clamped into ``bounds`` after every step.

    Args:
        target: ``(N, C, h, w)`` features, e.g. ``layer_output(x0, model, layer_index)``. Not modified.
        model: frozen model with a ``features`` sequence.
        layer_index: index into ``model.features`` (negative counts from the end).
        size: ``(H, W)`` of the images to reconstruct.
        bounds: ``None`` or ``(lo, hi)`` tensors broadcastable to the image (``utils.image.valid_range(card)``).
        num_iterations, learning_rate: Adam's steps and step size.
        alpha, alpha_weight: the alpha-norm regularizer and its weight.
        beta, tv_weight: the TV regularizer and its weight.
        init_std: standard deviation of the noise the images start from.
        generator: for the starting noise (several random starts: a batch of copies of one target, or other
            generators).
        progress: show a tqdm bar.
    Returns:
        ``(N, 3, H, W)`` reconstructions, detached, in the model's input space.
    """
    H, W = (int(s) for s in size)
    target = target.detach()
    lims = None
    if bounds is not None:
        lims = tuple(torch.as_tensor(b, dtype=target.dtype, device=target.device) for b in bounds)
    if generator is None:   # not the global RNG itself: whatever drew from it since it was seeded changes nothing
        generator = torch.Generator().manual_seed(torch.initial_seed())
    x = init_std * torch.randn(target.shape[0], 3, H, W, generator=generator, dtype=target.dtype)
    x = x.to(target.device)
    x = clamp_to_bounds(x, lims)
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=learning_rate)
    with torch.enable_grad():
        for _ in tqdm(range(num_iterations), desc=f"inverting layer {layer_index}", disable=not progress,
                      leave=False):
            opt.zero_grad(set_to_none=True)
            loss = _relative_errors(layer_output(x, model, layer_index), target).sum()
            if alpha_weight:
                loss = loss + alpha_weight * alpha_norm(x, alpha)
            if tv_weight:
                loss = loss + tv_weight * tv_norm(x, beta)
            loss.backward()
            opt.step()
            if lims is not None:
                with torch.no_grad():
                    x.copy_(clamp_to_bounds(x, lims))
    return x.detach()


# ----------------------------------------------------------------------------------------------------------------
# INSTRUCTOR-ONLY typical wrong answers (not in ``__all__``): the grader calls them on a case's inputs and, when a
# student's wrong output matches one, names the mistake (``Question.mistakes`` in
# autograder/questions/02_feature_inversion.py). tests/test_mutants_02.py checks each names its mutant.
# ----------------------------------------------------------------------------------------------------------------


def _mistake_loss_not_normalized(features, target):
    return (features - target).pow(2).sum()


def _mistake_loss_mse(features, target):
    return (features - target).pow(2).mean()


def _mistake_loss_norm_not_squared(features, target):
    return (features - target).pow(2).sum() / target.norm()


def _mistake_loss_per_image_mean(features, target):
    return _relative_errors(features, target).mean()


def _mistake_alpha_no_abs(x, alpha):
    out = x.pow(alpha).sum()
    if not bool(torch.isfinite(out)):   # NaN for fractional alpha: a NaN "expected" value would match any answer
        raise ValueError("this mistake gives NaN here")
    return out


def _mistake_alpha_root(x, alpha):
    return x.abs().pow(alpha).sum().pow(1.0 / alpha)


def _mistake_tv_beta_not_half(x, beta):
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return (right.pow(2) + down.pow(2) + TV_EPS).pow(beta).sum()


def _mistake_tv_power_per_direction(x, beta):
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return (right.abs().pow(beta) + down.abs().pow(beta)).sum()


def _mistake_tv_full_range(x, beta):
    import torch.nn.functional as F

    right = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    down = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return (right.pow(2) + down.pow(2) + TV_EPS).pow(beta / 2).sum()


def _mistake_tv_squared_of_04(x, beta):
    return (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum() + (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum()
