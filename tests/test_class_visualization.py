"""Reference ascent steps checked against hand-computed steps on models whose gradient has a closed form."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.core.tiny_models import build_tiny
from utils.reference import class_visualization_update_step, neuron_visualization_update_step


class LinearScores(nn.Module):
    """s = W vec(I) + b, with a ``features`` block so it looks like the other models."""

    def __init__(self, shape=(3, 6, 5), num_classes=4, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        d = shape[0] * shape[1] * shape[2]
        self.W = nn.Parameter(torch.randn(num_classes, d, generator=g, dtype=torch.float64), requires_grad=False)
        self.b = nn.Parameter(torch.randn(num_classes, generator=g, dtype=torch.float64), requires_grad=False)
        self.features = nn.Sequential(nn.Identity())

    def forward(self, x):
        return x.flatten(1) @ self.W.T + self.b


def _img(seed, shape=(1, 3, 6, 5), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(True)


def test_class_step_matches_hand_computed_linear():
    model = LinearScores()
    img = _img(1)
    I0 = img.detach().clone()
    lam, lr, y = 0.3, 0.7, 2
    g = model.W[y].view(1, 3, 6, 5) - 2 * lam * I0              # d/dI [w_y . I + b_y - lam ||I||^2]
    expected = I0 + lr * g / g.norm()
    class_visualization_update_step(img, model, y, lam, lr)
    torch.testing.assert_close(img.detach(), expected, rtol=1e-12, atol=1e-12)
    assert img.is_leaf and img.requires_grad


def test_class_step_repeated_calls_do_not_accumulate():
    """k calls equal k hand-computed steps, also when img.grad holds stale values on entry."""
    model = LinearScores(seed=4)
    img = _img(5)
    img.grad = torch.full_like(img, 123.0)
    expected = img.detach().clone()
    lam, lr, y = 0.05, 0.4, 1
    for _ in range(4):
        g = model.W[y].view(1, 3, 6, 5) - 2 * lam * expected
        expected = expected + lr * g / g.norm()
        class_visualization_update_step(img, model, y, lam, lr)
    torch.testing.assert_close(img.detach(), expected, rtol=1e-12, atol=1e-12)


def test_class_step_length_and_ascent_on_cnn():
    model = build_tiny("tiny_cnn", seed=0)
    img = _img(2, (1, 3, 16, 16), torch.float32)
    I0 = img.detach().clone()
    lam, lr, y = 1e-3, 1e-2, 3

    def objective(x):
        with torch.no_grad():
            return (model(x)[0, y] - lam * x.pow(2).sum()).item()

    class_visualization_update_step(img, model, y, lam, lr)
    assert torch.linalg.vector_norm(img.detach() - I0).item() == pytest.approx(lr, rel=1e-4)
    assert objective(img.detach()) > objective(I0)


def test_class_step_against_finite_difference_gradient():
    """Direction of the step = finite-difference gradient of the objective (float64, tiny CNN)."""
    model = build_tiny("tiny_cnn", seed=7).double()
    img = _img(3, (1, 3, 8, 8))
    I0 = img.detach().clone()
    lam, lr, y = 0.01, 1.0, 5

    eps = 1e-6
    d = I0.numel()
    E = (eps * torch.eye(d, dtype=torch.float64)).view(d, *I0.shape[1:])     # every +-eps perturbation at once
    with torch.no_grad():
        fp = model(I0 + E)[:, y] - lam * (I0 + E).pow(2).flatten(1).sum(1)
        fm = model(I0 - E)[:, y] - lam * (I0 - E).pow(2).flatten(1).sum(1)
    g = ((fp - fm) / (2 * eps)).view_as(I0)
    class_visualization_update_step(img, model, y, lam, lr)
    torch.testing.assert_close(img.detach(), I0 + lr * g / g.norm(), rtol=1e-6, atol=1e-8)


def test_neuron_step_matches_hand_computed_1x1_conv():
    """For a 1x1 conv, mean_{h,w} A[k] = W_k . mean_{h,w} I + b_k, so d/dI[c,h,w] = W_k[c] / (H W)."""
    torch.manual_seed(0)
    model = nn.Sequential()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 1).double(), nn.ReLU(), nn.Conv2d(4, 2, 3).double())
    img = _img(6, (1, 3, 6, 5))
    I0 = img.detach().clone()
    lam, lr, k = 0.2, 0.5, 3
    Wk = model.features[0].weight.detach()[k, :, 0, 0]                          # (3,)
    g = Wk.view(1, 3, 1, 1).expand_as(I0) / (6 * 5) - 2 * lam * I0
    expected = I0 + lr * g / g.norm()
    neuron_visualization_update_step(img, model, 0, k, lam, lr)
    torch.testing.assert_close(img.detach(), expected, rtol=1e-12, atol=1e-12)


def test_neuron_step_layer_prefix_and_negative_index():
    model = build_tiny("tiny_cnn", seed=1)
    lam, lr = 1e-3, 0.1
    for layer_index in (0, 3, 7, -1):
        img = _img(8, (1, 3, 16, 16), torch.float32)
        I0 = img.detach().clone()
        stop = layer_index % len(model.features) + 1
        x = I0.clone().requires_grad_(True)
        obj = model.features[:stop](x)[0, 2].mean() - lam * x.pow(2).sum()
        (g,) = torch.autograd.grad(obj, x)
        neuron_visualization_update_step(img, model, layer_index, 2, lam, lr)
        torch.testing.assert_close(img.detach(), I0 + lr * g / g.norm(), rtol=1e-5, atol=1e-7)


def test_drivers_run_and_stay_in_valid_range():
    """Smoke test of the provided drivers on a tiny model: right shape, finite, inside the valid pixel range,
    and the class score goes up."""
    from utils.image import valid_range
    from utils.models import ModelCard
    from utils.reference.class_visualization import (create_class_visualization, create_neuron_visualization,
                                                     create_yosinski_visualization)

    card = ModelCard(name="tiny", classes=tuple("abcdefghij"), mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3),
                     input_size=24, source="test")
    model = build_tiny("tiny_cnn", seed=0)
    low, high = valid_range(card)
    g = torch.Generator().manual_seed(0)
    init = 0.1 * torch.randn(1, 3, 24, 24, generator=g)
    with torch.no_grad():
        start = model(init)[0, 4].item()
    outs = [create_class_visualization(4, model, card, num_iterations=15, learning_rate=2.0, init=init,
                                       generator=g, progress=False),
            create_yosinski_visualization(4, model, card, num_iterations=15, learning_rate=2.0, init=init,
                                          norm_percentile=20, contribution_percentile=20, generator=g,
                                          progress=False),
            create_neuron_visualization(model, 3, 1, card, num_iterations=5, learning_rate=2.0, init=init,
                                        generator=g, progress=False)]
    for out in outs:
        assert out.shape == (1, 3, 24, 24) and torch.isfinite(out).all()
        assert (out >= low - 1e-6).all() and (out <= high + 1e-6).all()
    with torch.no_grad():
        assert model(outs[0])[0, 4].item() > start
        assert model(outs[1])[0, 4].item() > start
