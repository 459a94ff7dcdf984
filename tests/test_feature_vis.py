"""utils.feature_vis: the Fourier / decorrelated-colour parameterization and the robustness transforms."""
from __future__ import annotations

import torch

from utils.feature_vis import COLOR_CORRELATION_SQRT, FourierImage, normalize, random_transform
from utils.models import model_card


def test_fourier_image_is_a_valid_differentiable_image():
    param = FourierImage(batch=2, size=24, seed=3)
    x = param()
    assert x.shape == (2, 3, 24, 24) and 0 < x.min() and x.max() < 1
    x.sum().backward()
    assert torch.isfinite(param.spectrum.grad).all() and param.spectrum.grad.abs().sum() > 0


def test_fourier_image_is_the_inverse_fft_of_its_scaled_spectrum():
    """Independent check: one non-zero coefficient gives a single cosine (times the colour matrix) through the
    sigmoid, with amplitude set by the 1/f scale."""
    size = 16
    param = FourierImage(batch=1, size=size)
    with torch.no_grad():
        param.spectrum.zero_()
        param.spectrum[0, 0, 0, 2, 0] = 1.0                     # frequency (0, 2/16) in the first colour direction
    x = param().detach()
    logit = torch.log(x / (1 - x))                              # undo the sigmoid
    w = torch.arange(size, dtype=torch.float64)
    f = 2 / size
    amplitude = 2 * (1 / f) / size / 4.0                        # rfft2 "ortho": 2 Re(c e^{i w t}) / sqrt(H W), / 4
    cosine = amplitude * torch.cos(2 * torch.pi * f * w)        # (W,)
    colour = COLOR_CORRELATION_SQRT[:, 0] / COLOR_CORRELATION_SQRT.norm(dim=0).max()
    expected = colour.double().view(3, 1, 1) * cosine.view(1, 1, size)
    torch.testing.assert_close(logit[0].double(), expected.expand(3, size, size), atol=1e-5, rtol=1e-4)


def test_random_transform_without_change_is_the_identity():
    x = torch.rand(2, 3, 20, 20)
    y = random_transform(x, pad=0, jitter=0, scales=(1.0,), max_degrees=0.0)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_normalize_uses_the_card():
    card = model_card("efficientnet_lite0")
    px = torch.full((1, 3, 2, 2), 127 / 255)
    torch.testing.assert_close(normalize(px, card), torch.zeros_like(px), atol=1e-6, rtol=0)
