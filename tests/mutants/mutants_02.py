"""Variants of the graded functions of 02_feature_inversion, written as a student might.

``WRONG[question_id]`` maps a mutant's name to a function that must lose points on that question (and only
there); ``CORRECT[question_id]`` maps a name to a function written differently from the reference that must get
full marks. ``tests/test_mutants_02.py`` grades every one of them through the engine.

Every function is self-contained: each variant replaces exactly one function of an otherwise correct submission.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


# ----------------------------------------------------------------------------- feature_reconstruction_loss


def loss_not_normalized(features, target):
    return (features - target).pow(2).sum()


def loss_mse(features, target):
    return ((features - target) ** 2).mean()


def loss_norm_not_squared(features, target):
    return (features - target).pow(2).sum() / target.norm()


def loss_per_image_mean(features, target):
    """Relative error of each image, averaged: not what "sums over every entry" asks for when N > 1."""
    n = features.shape[0]
    d = (features - target).reshape(n, -1).pow(2).sum(1)
    return (d / target.reshape(n, -1).pow(2).sum(1)).mean()


def loss_spatial_dims_only(features, target):
    """Sums over dims (1, 2, 3) then over the batch: breaks on 2-D class scores."""
    return (features - target).pow(2).sum(dim=(1, 2, 3)).sum() / target.pow(2).sum(dim=(1, 2, 3)).sum()


def loss_reference_like(features, target):
    if features.shape != target.shape:
        raise ValueError("shapes differ")
    return torch.sum((features - target) ** 2) / torch.sum(target ** 2)


def loss_float64_loop(features, target):
    if features.shape != target.shape:
        raise ValueError("shapes differ")
    f, t = features.double().reshape(-1).tolist(), target.double().reshape(-1).tolist()
    num = sum((a - b) ** 2 for a, b in zip(f, t))
    den = sum(b * b for b in t)
    return torch.tensor(num / den, dtype=features.dtype)


def loss_norms(features, target):
    if features.shape != target.shape:
        raise ValueError("shapes differ")
    return torch.linalg.vector_norm(features - target) ** 2 / torch.linalg.vector_norm(target) ** 2


def loss_mse_ratio(features, target):
    """Ratio of two means: the entry counts cancel (another valid formulation)."""
    if features.shape != target.shape:
        raise ValueError("shapes differ")
    return F.mse_loss(features, target, reduction="mean") / target.pow(2).mean()


# ---------------------------------------------------------------------------------------------- alpha_norm


def alpha_no_abs(x, alpha):
    return x.pow(alpha).sum()


def alpha_root(x, alpha):
    return x.abs().pow(alpha).sum() ** (1.0 / alpha)


def alpha_mean(x, alpha):
    return x.abs().pow(alpha).mean()


def alpha_per_image(x, alpha):
    """One value per image instead of a 0-d total."""
    return x.abs().pow(alpha).flatten(1).sum(1)


def alpha_vector_norm(x, alpha):
    return torch.linalg.vector_norm(x, ord=alpha) ** alpha


def alpha_float64_loop(x, alpha):
    total = 0.0
    for v in x.double().reshape(-1).tolist():
        total += abs(v) ** alpha
    return torch.tensor(total, dtype=x.dtype)


def alpha_sqrt_square(x, alpha):
    """|x| written as sqrt(x^2)."""
    return (x * x).sqrt().pow(alpha).sum()


# ------------------------------------------------------------------------------------------------- tv_norm


def _diffs(x):
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return right, down


def tv_beta_not_half(x, beta):
    right, down = _diffs(x)
    return (right ** 2 + down ** 2 + EPS).pow(beta).sum()


def tv_power_per_direction(x, beta):
    right, down = _diffs(x)
    return (right.abs().pow(beta) + down.abs().pow(beta)).sum()


def tv_crop_full_range(x, beta):
    """The horizontal differences over every row (the last one included) and the vertical ones over every
    column, zero-padded to a common grid."""
    right = F.pad(x[:, :, :, 1:] - x[:, :, :, :-1], (0, 1))
    down = F.pad(x[:, :, 1:, :] - x[:, :, :-1, :], (0, 0, 0, 1))
    return (right ** 2 + down ** 2 + EPS).pow(beta / 2).sum()


def tv_squared_of_04(x, beta):
    """Assignment 04's squared TV: ignores beta and the crop."""
    return (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).sum() + (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).sum()


def tv_swapped_axes(x, beta):
    """Both differences taken along the same axis."""
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    return (2 * right ** 2 + EPS).pow(beta / 2).sum()


def tv_mean(x, beta):
    right, down = _diffs(x)
    return (right ** 2 + down ** 2 + EPS).pow(beta / 2).mean()


def tv_vectorized_diff(x, beta):
    dx = torch.diff(x, dim=3)[:, :, :-1, :]
    dy = torch.diff(x, dim=2)[:, :, :, :-1]
    return torch.sum((dx * dx + dy * dy + 1e-8) ** (beta / 2))


def tv_float64_loop(x, beta):
    n, c, h, w = x.shape
    a = x.double()
    total = torch.zeros((), dtype=torch.float64)
    for i in range(h - 1):
        for j in range(w - 1):
            s = (a[:, :, i, j + 1] - a[:, :, i, j]) ** 2 + (a[:, :, i + 1, j] - a[:, :, i, j]) ** 2
            total = total + (s + 1e-8).pow(beta / 2).sum()
    return total.to(x.dtype)


def tv_no_eps_for_beta2(x, beta):
    """No guard when beta >= 2 (the gradient is finite there anyway), a larger one below."""
    right, down = _diffs(x)
    s = right ** 2 + down ** 2
    return (s if beta >= 2 else s + 1e-10).pow(beta / 2).sum()


def tv_hypot(x, beta):
    """sqrt(dx^2 + dy^2 + eps) raised to beta: the same number, written through the gradient magnitude."""
    right, down = _diffs(x)
    return torch.sqrt(right ** 2 + down ** 2 + EPS).pow(beta).sum()


# ----------------------------------------------------------------------------------------- invert_features


def _clamp(x, bounds):
    if bounds is None:
        return x
    lo, hi = bounds
    return torch.max(torch.min(x, hi), lo)


def _tv(x, beta, eps=EPS):
    right, down = _diffs(x)
    return (right ** 2 + down ** 2 + eps).pow(beta / 2).sum()


def _invert(target, model, layer_index, size, bounds=None, *, num_iterations=200, learning_rate=0.05, alpha=6.0,
            alpha_weight=0.0, beta=2.0, tv_weight=0.0, init_std=0.1, generator=None, progress=False,
            sign=1.0, clamp=True, tv=True, relative=True, tv_fn=None, init=None, step_fn=None):
    """A configurable inversion loop the variants below are made of."""
    N = target.shape[0]
    H, W = size
    if init is None:
        x = init_std * torch.randn(N, 3, H, W)
    else:
        x = init(N, H, W, init_std, bounds)
    if clamp:
        x = _clamp(x, bounds)
    x = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=learning_rate)
    t = target.detach()
    den = t.flatten(1).pow(2).sum(1) if relative else torch.ones(N)
    for _ in range(num_iterations):
        opt.zero_grad()
        phi = model.features[:layer_index + 1](x)
        loss = ((phi - t).flatten(1).pow(2).sum(1) / den).sum()
        loss = loss + alpha_weight * x.abs().pow(alpha).sum()
        if tv:
            loss = loss + tv_weight * (tv_fn or _tv)(x, beta)
        (sign * loss).backward()
        opt.step()
        if clamp:
            with torch.no_grad():
                x.copy_(_clamp(x, bounds))
    return x.detach()


def invert_reference_like(target, model, layer_index, size, bounds=None, **kw):
    return _invert(target, model, layer_index, size, bounds, **kw)


def invert_no_clamp(target, model, layer_index, size, bounds=None, **kw):
    return _invert(target, model, layer_index, size, bounds, clamp=False, **kw)


def invert_ascent(target, model, layer_index, size, bounds=None, **kw):
    return _invert(target, model, layer_index, size, bounds, sign=-1.0, **kw)


def invert_no_tv(target, model, layer_index, size, bounds=None, **kw):
    return _invert(target, model, layer_index, size, bounds, tv=False, **kw)


def invert_no_optimization(target, model, layer_index, size, bounds=None, **kw):
    kw["num_iterations"] = 0
    return _invert(target, model, layer_index, size, bounds, **kw)


def invert_tv_without_eps(target, model, layer_index, size, bounds=None, **kw):
    """(dx^2 + dy^2)^(beta/2) with no guard: NaN gradients where clamped neighbours are equal and beta < 2."""
    return _invert(target, model, layer_index, size, bounds, tv_fn=lambda x, b: _tv(x, b, eps=0.0), **kw)


def invert_whole_batch_loss(target, model, layer_index, size, bounds=None, **kw):
    """One relative error for the whole batch (sum over every entry, as feature_reconstruction_loss does)."""
    kw = dict(kw)
    N = target.shape[0]
    H, W = size
    x = _clamp(kw.get("init_std", 0.1) * torch.randn(N, 3, H, W), bounds).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=kw.get("learning_rate", 0.05))
    for _ in range(kw.get("num_iterations", 200)):
        opt.zero_grad()
        phi = model.features[:layer_index + 1](x)
        loss = (phi - target).pow(2).sum() / target.pow(2).sum()
        loss = loss + kw.get("alpha_weight", 0.0) * x.abs().pow(kw.get("alpha", 6.0)).sum()
        loss = loss + kw.get("tv_weight", 0.0) * _tv(x, kw.get("beta", 2.0))
        loss.backward()
        opt.step()
        x.data = _clamp(x.data, bounds)
    return x.detach()


def invert_per_image_loop(target, model, layer_index, size, bounds=None, **kw):
    """One image at a time, each with its own optimizer."""
    return torch.cat([_invert(target[i:i + 1], model, layer_index, size, bounds, **kw)
                      for i in range(target.shape[0])])


def invert_uniform_start(target, model, layer_index, size, bounds=None, **kw):
    """Starts from uniform noise over the valid range instead of N(0, init_std^2)."""
    def init(N, H, W, std, b):
        lo, hi = b
        return lo + (hi - lo) * torch.rand(N, 3, H, W)
    return _invert(target, model, layer_index, size, bounds, init=init, **kw)


def invert_float64(target, model, layer_index, size, bounds=None, **kw):
    """The whole loop in float64 (a copy of the model), the result back in float32."""
    import copy

    m = copy.deepcopy(model).double()
    out = _invert(target.double(), m, layer_index, size,
                  tuple(b.double() for b in bounds) if bounds is not None else None,
                  init=lambda N, H, W, std, b: std * torch.randn(N, 3, H, W, dtype=torch.float64), **kw)
    return out.float()


WRONG = {
    "feature_reconstruction_loss": {
        "not_normalized": loss_not_normalized,
        "mse": loss_mse,
        "norm_not_squared": loss_norm_not_squared,
        "per_image_mean": loss_per_image_mean,
        "spatial_dims_only": loss_spatial_dims_only,
    },
    "alpha_norm": {
        "no_abs": alpha_no_abs,
        "root": alpha_root,
        "mean": alpha_mean,
        "per_image": alpha_per_image,
    },
    "tv_norm": {
        "beta_not_half": tv_beta_not_half,
        "power_per_direction": tv_power_per_direction,
        "crop_full_range": tv_crop_full_range,
        "squared_of_04": tv_squared_of_04,
        "swapped_axes": tv_swapped_axes,
        "mean": tv_mean,
    },
    "invert_features": {
        "no_clamp": invert_no_clamp,
        "ascent": invert_ascent,
        "no_tv": invert_no_tv,
        "no_optimization": invert_no_optimization,
        "tv_without_eps": invert_tv_without_eps,
    },
}

CORRECT = {
    "feature_reconstruction_loss": {
        "reference_like": loss_reference_like,
        "float64_loop": loss_float64_loop,
        "norms": loss_norms,
        "mse_ratio": loss_mse_ratio,
    },
    "alpha_norm": {
        "vector_norm": alpha_vector_norm,
        "float64_loop": alpha_float64_loop,
        "sqrt_square": alpha_sqrt_square,
    },
    "tv_norm": {
        "vectorized_diff": tv_vectorized_diff,
        "float64_loop": tv_float64_loop,
        "no_eps_for_beta2": tv_no_eps_for_beta2,
        "hypot": tv_hypot,
    },
    "invert_features": {
        "reference_like": invert_reference_like,
        "whole_batch_loss": invert_whole_batch_loss,
        "per_image_loop": invert_per_image_loop,
        "uniform_start": invert_uniform_start,
        "float64": invert_float64,
    },
}
