"""Feature inversion (02) references: closed forms, float64 loops, finite differences, simple facts."""
from __future__ import annotations

import pytest
import torch

from utils.image import valid_range
from autograder.core.tiny_models import build_tiny
from utils.reference import alpha_norm, feature_reconstruction_loss, tv_norm
from utils.models import layer_output
from utils.reference.feature_inversion import TV_EPS, invert_features


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


def test_feature_reconstruction_loss_sums_over_every_entry_of_any_shape():
    g = torch.Generator().manual_seed(1)
    for shape in [(3, 10), (4, 2, 3, 5), (7,)]:
        f, t = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
        num = sum((a - b) ** 2 for a, b in zip(f.double().reshape(-1).tolist(), t.double().reshape(-1).tolist()))
        den = sum(b * b for b in t.double().reshape(-1).tolist())
        assert feature_reconstruction_loss(f, t).item() == pytest.approx(num / den, rel=1e-5)
        assert feature_reconstruction_loss(f, t).dim() == 0
    with pytest.raises(ValueError):
        feature_reconstruction_loss(torch.zeros(1, 3, 4, 4), torch.ones(3, 4, 4))   # would broadcast


@pytest.mark.parametrize("alpha", [1.0, 2.5, 3.0, 6.0])
def test_alpha_norm_against_a_float64_loop(alpha):
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(2))
    expected = sum(abs(v) ** alpha for v in x.double().reshape(-1).tolist())
    assert alpha_norm(x, alpha).item() == pytest.approx(expected, rel=1e-5)
    assert alpha_norm(x, alpha).dim() == 0
    xd = x.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: alpha_norm(z, alpha), (xd,))


def _tv_loops(x: torch.Tensor, beta: float, eps: float = TV_EPS) -> float:
    a = x.double().numpy()
    n, c, h, w = a.shape
    total = 0.0
    for i in range(n):
        for k in range(c):
            for r in range(h - 1):
                for q in range(w - 1):
                    s = (a[i, k, r, q + 1] - a[i, k, r, q]) ** 2 + (a[i, k, r + 1, q] - a[i, k, r, q]) ** 2
                    total += (s + eps) ** (beta / 2)
    return total


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5, 2.0, 3.0])
def test_tv_norm_against_float64_loops(beta):
    x = torch.randn(2, 2, 5, 7, generator=torch.Generator().manual_seed(3))
    assert tv_norm(x, beta).item() == pytest.approx(_tv_loops(x, beta), rel=1e-5)
    assert tv_norm(x, beta).item() == pytest.approx(_tv_loops(x, beta, eps=0.0), rel=1e-5)   # eps is negligible
    xd = x.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: tv_norm(z, beta), (xd,))


def test_tv_norm_closed_forms():
    assert tv_norm(torch.full((2, 3, 6, 6), 0.7), 1.0).item() == pytest.approx(2 * 3 * 25 * TV_EPS ** 0.5)
    ramp = torch.arange(6.0).repeat(1, 1, 4, 1)               # rows 0..5: dx = 1, dy = 0 at 3 x 5 pixels
    assert tv_norm(ramp, 2.0).item() == pytest.approx(15.0, rel=1e-6)
    assert tv_norm(ramp, 3.0).item() == pytest.approx(15.0, rel=1e-6)
    diag = torch.arange(5.0).view(1, 1, 1, 5) + \
        torch.arange(5.0).view(1, 1, 5, 1)                   # dx = dy = 1: each of 16 terms is 2^(beta/2)
    assert tv_norm(diag, 1.0).item() == pytest.approx(16 * 2 ** 0.5, rel=1e-6)
    # the last row and column carry no term: changing them alone changes nothing ...
    x = torch.zeros(1, 1, 5, 5)
    y = x.clone()
    y[..., -1, -1] = 9.0
    assert tv_norm(y, 2.0).item() == pytest.approx(tv_norm(x, 2.0).item())
    # ... unlike assignment 04's squared TV, which sums each direction over its full range
    from utils.reference.neural_style import tv_loss

    img = torch.randn(1, 3, 6, 8, generator=torch.Generator().manual_seed(4))
    border = ((img[:, :, -1, 1:] - img[:, :, -1, :-1]) ** 2).sum() + ((img[:, :, 1:, -1] - img[:, :, :-1, -1]) ** 2).sum()
    assert tv_loss(img, 1.0).item() == pytest.approx(tv_norm(img, 2.0).item() - 3 * 5 * 7 * TV_EPS + border.item(),
                                                     rel=1e-5)


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5])
def test_tv_norm_gradient_is_finite_where_neighbours_are_equal(beta):
    x = torch.zeros(1, 3, 6, 6)
    x[..., 2:4, 2:4] = 1.0                                    # flat regions around a block
    x.requires_grad_(True)
    tv_norm(x, beta).backward()
    assert bool(torch.isfinite(x.grad).all())
    assert float(x.grad[..., 0, 0].abs().max()) == 0.0        # deep inside a flat region: no pull at all
    # without the guard the same gradient is NaN (the reason for TV_EPS)
    z = x.detach().clone().requires_grad_(True)
    right, down = z[:, :, :-1, 1:] - z[:, :, :-1, :-1], z[:, :, 1:, :-1] - z[:, :, :-1, :-1]
    (right ** 2 + down ** 2).pow(beta / 2).sum().backward()
    assert not bool(torch.isfinite(z.grad).all())


def test_inverting_an_early_layer_reproduces_its_features(shapes_model, shapes_image):
    layer = shapes_model.feature_layers[0]
    target = layer_output(shapes_image, shapes_model, layer)
    kept = target.clone()
    low, high = valid_range()
    rec = invert_features(target, shapes_model, layer, tuple(shapes_image.shape[-2:]), (low, high), num_iterations=200,
                          tv_weight=1e-4, progress=False, generator=torch.Generator().manual_seed(0))
    assert torch.equal(target, kept)
    assert rec.shape == shapes_image.shape and not rec.requires_grad
    assert bool(((rec >= low - 1e-6) & (rec <= high + 1e-6)).all())
    noise = 0.1 * torch.randn(shapes_image.shape, generator=torch.Generator().manual_seed(0))
    start = feature_reconstruction_loss(layer_output(noise, shapes_model, layer), target).item()
    end = feature_reconstruction_loss(layer_output(rec, shapes_model, layer), target).item()
    assert end < 0.1 < start


def test_inversion_of_a_batch_is_the_inversions_of_its_images():
    """Adam is elementwise and every image has its own relative error: a batch of two, started from the same
    (zero) image, gives exactly what two separate runs give. A whole-batch denominator would not."""
    tiny = build_tiny("tiny_cnn", seed=0)
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(2, 3, 12, 12, generator=g) * torch.tensor([0.3, 3.0]).view(2, 1, 1, 1)   # very unequal codes
    target = layer_output(x0, tiny, 4)
    kw = dict(num_iterations=30, learning_rate=0.05, alpha_weight=1e-3, tv_weight=1e-2, beta=1.5, init_std=0.0)
    both = invert_features(target, tiny, 4, (12, 12), **kw)
    alone = torch.cat([invert_features(target[i:i + 1], tiny, 4, (12, 12), **kw) for i in range(2)])
    torch.testing.assert_close(both, alone, rtol=1e-4, atol=1e-5)
    assert not torch.equal(both[0], both[1])


def test_inversion_stays_finite_when_clamping_makes_neighbours_equal(monkeypatch):
    import utils.reference.feature_inversion as fi

    tiny = build_tiny("tiny_cnn", seed=1)
    x0 = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(6))
    target = layer_output(x0, tiny, 2)
    bounds = (torch.full((1, 3, 1, 1), -0.5), torch.full((1, 3, 1, 1), 0.5))

    def run():
        return invert_features(target, tiny, 2, (12, 12), bounds, num_iterations=20, beta=1.0, tv_weight=1e-2,
                               init_std=3.0, generator=torch.Generator().manual_seed(0))

    assert bool(torch.isfinite(run()).all())
    monkeypatch.setattr(fi, "TV_EPS", 0.0)                    # without the guard: NaN from the first clamp on
    assert not bool(torch.isfinite(run()).all())
