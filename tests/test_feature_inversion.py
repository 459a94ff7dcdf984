"""Feature inversion (02) and DeepDream (03) references: closed forms, finite differences, simple facts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.data import make_shapes
from utils.image import preprocess, valid_range
from utils.models import load_model
from utils.reference import deepdream_step, feature_reconstruction_loss
from utils.reference.deepdream import GRAD_EPS, deepdream
from utils.reference.feature_inversion import invert_features, layer_features


@pytest.fixture(scope="module")
def model():
    return load_model("shapes", "cpu")


@pytest.fixture(scope="module")
def image():
    imgs, _, _ = make_shapes(1, seed=3)
    return preprocess(imgs, device="cpu")


class _Linear1x1(nn.Module):
    """features = one fixed 1x1 convolution: A = W x at every pixel, so d(1/2 ||A||^2)/dx = W^T W x."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1, bias=False, dtype=weight.dtype)
        conv.weight.data.copy_(weight[:, :, None, None])
        conv.weight.requires_grad_(False)
        self.features = nn.Sequential(conv)


def test_feature_reconstruction_loss_closed_form():
    g = torch.Generator().manual_seed(0)
    f, t = torch.randn(1, 4, 3, 5, generator=g), torch.randn(1, 4, 3, 5, generator=g)
    a, b = f.double().numpy(), t.double().numpy()
    assert feature_reconstruction_loss(f, t).item() == pytest.approx(((a - b) ** 2).sum() / (b ** 2).sum(), rel=1e-5)
    assert feature_reconstruction_loss(torch.zeros_like(t), t).item() == pytest.approx(1.0)
    assert feature_reconstruction_loss(t, t).item() == 0.0
    x = f.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: feature_reconstruction_loss(z, t.double()), (x,))
    with pytest.raises(ValueError, match="same layer"):
        feature_reconstruction_loss(f, t[:, :2])


def test_inverting_an_early_layer_reproduces_its_features(model, image):
    layer = model.feature_layers[0]
    target = layer_features(image, model, layer)
    rec = invert_features(target, model, layer, tuple(image.shape[-2:]), num_iterations=200, progress=False,
                          generator=torch.Generator().manual_seed(0))
    assert rec.shape == image.shape
    low, high = valid_range()
    assert bool(((rec >= low - 1e-6) & (rec <= high + 1e-6)).all())
    noise = 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    start = feature_reconstruction_loss(layer_features(noise, model, layer), target).item()
    end = feature_reconstruction_loss(layer_features(rec, model, layer), target).item()
    assert end < 0.1 < start                                   # measured: 0.04 from about 1


def test_deepdream_step_closed_form_on_a_linear_layer():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64)
    x0 = torch.randn(2, 3, 4, 6, generator=g, dtype=torch.float64)
    img = x0.clone().requires_grad_(True)
    deepdream_step(img, _Linear1x1(w), 0, learning_rate=0.05)
    a, wn = x0.numpy(), w.numpy()
    grad = np.einsum("ji,jk,nkhw->nihw", wn, wn, a)            # W^T W x, pixel by pixel
    expected = a + 0.05 * grad / (np.abs(grad).mean() + GRAD_EPS)
    np.testing.assert_allclose(img.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    assert img.grad is None                                    # taken with autograd.grad, nothing accumulates
    assert np.abs(img.detach().numpy() - a).mean() == pytest.approx(0.05, rel=1e-6)


def test_deepdream_step_strengthens_the_layer(model, image):
    layer = model.feature_layers[2]
    img = image.clone().requires_grad_(True)
    before = layer_features(image, model, layer).pow(2).sum().item()
    for _ in range(3):
        deepdream_step(img, model, layer, learning_rate=0.01)
    assert layer_features(img.detach(), model, layer).pow(2).sum().item() > before


def test_deepdream_octaves_keep_the_size_and_the_valid_range(model, image):
    small = image[..., :40, :48]
    out = deepdream(small, model, model.feature_layers[2], octaves=3, iterations=3, progress=False,
                    generator=torch.Generator().manual_seed(0))
    low, high = valid_range()
    assert out.shape == small.shape and torch.isfinite(out).all()
    assert bool(((out >= low - 1e-6) & (out <= high + 1e-6)).all())
    assert not torch.equal(out, small)


def test_one_octave_without_jitter_is_plain_clamped_steps(model, image):
    from utils.image import clamp_to_valid

    layer = model.feature_layers[1]
    out = deepdream(image, model, layer, octaves=1, iterations=4, max_jitter=0, learning_rate=0.03, progress=False)
    x = image.clone().requires_grad_(True)
    for _ in range(4):
        deepdream_step(x, model, layer, 0.03)
        with torch.no_grad():
            x.copy_(clamp_to_valid(x))
    torch.testing.assert_close(out, x.detach())
