"""Style-transfer losses (04) checked against float64 NumPy loops, gradcheck and simple facts; extract_features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.models import extract_features, load_model
from utils.reference import content_loss, gram_matrix, style_loss, tv_loss


def _rand(seed, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _gram_loop(f: np.ndarray, normalize: bool) -> np.ndarray:
    n, c, h, w = f.shape
    out = np.zeros((n, c, c))
    for b in range(n):
        for i in range(c):
            for j in range(c):
                out[b, i, j] = sum(f[b, i, y, x] * f[b, j, y, x] for y in range(h) for x in range(w))
    return out / (c * h * w) if normalize else out


def test_content_loss_is_the_weighted_sum_of_squares():
    cur, orig = _rand(0, 1, 4, 5, 6), _rand(1, 1, 4, 5, 6)
    expected = 0.3 * sum(float(a - b) ** 2 for a, b in zip(cur.double().flatten(), orig.double().flatten()))
    assert content_loss(0.3, cur, orig).item() == pytest.approx(expected, rel=1e-5)
    assert content_loss(2.0, cur, cur).item() == 0.0


def test_content_loss_rejects_mismatched_layers():
    with pytest.raises(ValueError, match="same layer"):
        content_loss(1.0, _rand(0, 1, 4, 5, 6), _rand(1, 1, 8, 5, 6))


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 4, 3, 3), (3, 1, 1, 7)])
def test_gram_matrix_against_loops(shape, normalize):
    f = _rand(2, *shape)
    got = gram_matrix(f, normalize=normalize)
    np.testing.assert_allclose(got.double().numpy(), _gram_loop(f.double().numpy(), normalize), rtol=1e-5,
                               atol=1e-6)
    assert torch.equal(got, got.transpose(1, 2))


def test_gram_matrix_of_each_image_ignores_the_rest_of_the_batch():
    f = _rand(3, 4, 5, 6, 7)
    alone = torch.cat([gram_matrix(f[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(gram_matrix(f), alone)


def test_style_loss_against_loops():
    feats = [_rand(10 + i, 1, c, s, s) for i, (c, s) in enumerate([(3, 6), (4, 5), (5, 3), (6, 2)])]
    layers, weights = [0, 2, 3], [10.0, 0.5, 2.0]
    targets = [gram_matrix(_rand(20 + i, *feats[l].shape)) for i, l in enumerate(layers)]
    expected = 0.0
    for l, t, w in zip(layers, targets, weights):
        diff = _gram_loop(feats[l].double().numpy(), True) - t.double().numpy()
        expected += w * float((diff ** 2).sum())
    assert style_loss(feats, layers, targets, weights).item() == pytest.approx(expected, rel=1e-5)
    matching = [gram_matrix(feats[l]) for l in layers]
    assert style_loss(feats, layers, matching, weights).item() == 0.0


def test_style_loss_needs_one_target_and_weight_per_layer():
    feats = [_rand(0, 1, 3, 4, 4)]
    with pytest.raises(ValueError, match="one target and one weight per layer"):
        style_loss(feats, [0], [gram_matrix(feats[0])], [1.0, 2.0])


def test_tv_loss_against_loops():
    img = _rand(4, 2, 3, 5, 6)
    a = img.double().numpy()
    n, c, h, w = a.shape
    total = 0.0
    for b in range(n):
        for k in range(c):
            for y in range(h):
                for x in range(w):
                    if y + 1 < h:
                        total += (a[b, k, y + 1, x] - a[b, k, y, x]) ** 2
                    if x + 1 < w:
                        total += (a[b, k, y, x + 1] - a[b, k, y, x]) ** 2
    assert tv_loss(img, 0.7).item() == pytest.approx(0.7 * total, rel=1e-5)


def test_tv_loss_facts():
    assert tv_loss(torch.full((1, 3, 8, 8), 2.5), 1.0).item() == 0.0                 # a flat image
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 4, 5)                     # +1 per column
    assert tv_loss(ramp, 1.0).item() == pytest.approx(4 * 4)                          # 4 rows x 4 steps of 1


def test_gradients_match_finite_differences():
    x = _rand(5, 1, 2, 4, 3, dtype=torch.float64).requires_grad_(True)
    y = _rand(6, 1, 2, 4, 3, dtype=torch.float64)
    target = gram_matrix(_rand(7, 1, 2, 4, 3, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: tv_loss(t, 0.3), (x,))
    assert torch.autograd.gradcheck(lambda t: content_loss(0.5, t, y), (x,))
    assert torch.autograd.gradcheck(lambda t: gram_matrix(t), (x,))
    assert torch.autograd.gradcheck(lambda t: style_loss([t], [0], [target], [2.0]), (x,))


def test_extract_features_gives_every_layer_of_features():
    model = load_model("shapes", "cpu")
    x = _rand(8, 2, 3, 32, 32)
    feats = extract_features(x, model)
    assert len(feats) == len(model.features)
    for i, f in enumerate(feats):
        torch.testing.assert_close(f, model.features[:i + 1](x))


def test_extract_features_needs_a_features_sequence():
    with pytest.raises(TypeError, match="features"):
        extract_features(torch.zeros(1, 3, 8, 8), nn.Linear(3, 3))
