"""Yosinski's regularizers checked against plain NumPy loops (np.percentile, pixel by pixel) and simple facts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.reference import blur_image, zero_small_contribution_pixels, zero_small_norm_pixels


def _imgs(seed, n=3, c=3, h=9, w=11, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    scales = torch.rand(n, 1, 1, 1, generator=g) * 3 + 0.1        # images of very different scales
    return (torch.randn(n, c, h, w, generator=g) * scales).to(dtype)


def _numpy_prune(img: np.ndarray, v: np.ndarray, percentile: float) -> np.ndarray:
    out = img.copy()
    for i in range(img.shape[0]):
        t = np.percentile(v[i].astype(np.float64), percentile)        # linear interpolation
        for h in range(img.shape[2]):
            for w in range(img.shape[3]):
                if v[i, h, w] < t:
                    out[i, :, h, w] = 0
    return out


@pytest.mark.parametrize("percentile", [0, 10, 20, 37.5, 50, 90, 100])
def test_zero_small_norm_pixels_against_numpy(percentile):
    x = _imgs(1)
    got = zero_small_norm_pixels(x, percentile)
    a = x.double().numpy()
    v = np.sqrt((a ** 2).sum(axis=1))
    np.testing.assert_allclose(got.numpy(), _numpy_prune(a, v, percentile), rtol=0, atol=0)


@pytest.mark.parametrize("percentile", [0, 10, 25, 50, 80, 100])
def test_zero_small_contribution_pixels_against_numpy(percentile):
    x, grad = _imgs(2), _imgs(3)
    got = zero_small_contribution_pixels(x, grad, percentile)
    a, gr = x.double().numpy(), grad.double().numpy()
    v = np.abs((a * gr).sum(axis=1))
    np.testing.assert_allclose(got.numpy(), _numpy_prune(a, v, percentile), rtol=0, atol=0)


def test_pruning_is_per_image_and_counts():
    x = _imgs(4, n=4, h=10, w=10)          # 100 pixels: the 20th percentile sits on element 19.8 -> 20 zeroed
    out = zero_small_norm_pixels(x, 20)
    zeroed = (out.abs().sum(dim=1) == 0).flatten(1).sum(dim=1)
    assert zeroed.tolist() == [20, 20, 20, 20]
    # the kept pixels are untouched, the input too
    kept = out.abs().sum(dim=1, keepdim=True) > 0
    assert torch.equal(out * kept, x * kept)


def test_percentile_edges_and_input_untouched():
    x, grad = _imgs(5), _imgs(6)
    x0 = x.clone()
    assert torch.equal(zero_small_norm_pixels(x, 0), x)
    assert torch.equal(zero_small_contribution_pixels(x, grad, 0), x)
    top = zero_small_norm_pixels(x, 100)
    assert ((top.abs().sum(dim=1) > 0).flatten(1).sum(dim=1) == 1).all()   # only the largest pixel survives
    assert torch.equal(x, x0)


def test_contribution_is_first_order_change():
    """Setting pixel p to zero changes a linear objective <grad, x> by exactly -sum_c x*grad at p."""
    x, grad = _imgs(7, n=1), _imgs(8, n=1)
    out = zero_small_contribution_pixels(x, grad, 60)
    dropped = (out != x).any(dim=1)                          # (1, H, W)
    change = ((out - x) * grad).sum(dim=1).abs()
    contrib = (x * grad).sum(dim=1).abs()
    torch.testing.assert_close(change[dropped], contrib[dropped])
    assert contrib[dropped].max() <= contrib[~dropped].min()


def test_blur_sigma_zero_is_identity_copy():
    x = _imgs(9)
    out = blur_image(x, 0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.0, 7.0])
def test_blur_against_scipy(sigma):
    from scipy.ndimage import gaussian_filter

    x = _imgs(10, n=2, h=13, w=9, dtype=torch.float64)
    got = blur_image(x, sigma)
    expected = np.stack([np.stack([gaussian_filter(x[i, c].numpy(), sigma, mode="reflect", truncate=4.0)
                                   for c in range(3)]) for i in range(2)])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_blur_keeps_constant_images_and_mass():
    x = torch.full((1, 3, 8, 8), 0.7)
    torch.testing.assert_close(blur_image(x, 1.5), x)
