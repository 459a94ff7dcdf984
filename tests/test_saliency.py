"""Reference saliency maps checked against independent formulations: finite differences, a per-image loop, a
closed form for a linear model."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autograder.core.tiny_models import build_tiny
from utils.reference import compute_saliency_maps


def _batch(seed: int, n: int, size: int, num_classes: int = 10):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, size, size, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return X, y


def test_shape_dtype_and_inputs_untouched():
    model = build_tiny("tiny_cnn", seed=0)
    X, y = _batch(0, 3, 16)
    X0 = X.clone()
    out = compute_saliency_maps(X, y, model)
    assert out.shape == (3, 16, 16)
    assert out.dtype == X.dtype
    assert (out >= 0).all()
    assert torch.equal(X, X0)
    assert X.grad is None and not X.requires_grad


def test_against_finite_differences():
    """Central differences of the raw correct-class score in float64, pixel by pixel, channel by channel."""
    model = build_tiny("tiny_cnn", seed=3).double()
    X, y = _batch(3, 2, 8)
    X = X.double()
    out = compute_saliency_maps(X, y, model)
    eps = 1e-6
    d = 3 * 8 * 8
    E = (eps * torch.eye(d, dtype=torch.float64)).view(d, 3, 8, 8)      # every +-eps perturbation at once
    expected = []
    with torch.no_grad():
        for i in range(2):
            diff = (model(X[i] + E)[:, y[i]] - model(X[i] - E)[:, y[i]]) / (2 * eps)   # (3 * 8 * 8,)
            expected.append(diff.view(3, 8, 8).abs().max(dim=0).values)
    expected = torch.stack(expected)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-8)


def test_against_per_image_loop_and_batch_independence():
    model = build_tiny("tiny_cnn", seed=1)
    X, y = _batch(1, 7, 20)
    batched = compute_saliency_maps(X, y, model)
    looped = []
    for i in range(7):
        xi = X[i:i + 1].clone().requires_grad_(True)
        model(xi)[0, y[i]].backward()
        looped.append(xi.grad[0].abs().max(dim=0).values)
    torch.testing.assert_close(batched, torch.stack(looped), rtol=1e-5, atol=1e-7)
    # the map of an image does not depend on its neighbours in the batch
    torch.testing.assert_close(compute_saliency_maps(X[2:3], y[2:3], model), batched[2:3], rtol=1e-5, atol=1e-7)


def test_linear_model_closed_form():
    """For s = W vec(x) + b the gradient of s_y is W[y]: saliency = max_c |W[y]| (and not the softmax's)."""
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 6, 4))
    X = torch.randn(3, 3, 5, 6)
    y = torch.tensor([2, 0, 2])
    out = compute_saliency_maps(X, y, lin)
    W = lin[1].weight.detach().view(4, 3, 5, 6)
    expected = W[y].abs().amax(dim=1)
    torch.testing.assert_close(out, expected)


def test_parameters_get_no_gradient():
    model = copy.deepcopy(build_tiny("tiny_cnn", seed=2))
    for p in model.parameters():
        p.requires_grad_(True)
    X, y = _batch(2, 2, 16)
    compute_saliency_maps(X, y, model)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_input(dtype):
    model = build_tiny("tiny_cnn", seed=0).to(dtype)
    X, y = _batch(0, 2, 12)
    assert compute_saliency_maps(X.to(dtype), y, model).dtype == dtype
