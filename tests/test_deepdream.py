"""DeepDream (03) reference against independent formulations: finite differences, closed forms on a linear layer,
NumPy loops, the objective whose gradient guided dreaming follows; the provided helpers match the notebook's."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from autograder.core import casefile, registry
from utils.image import valid_range
from utils.reference import deepdream_octaves, deepdream_step, guided_gradient
from utils.models import layer_output
from utils.reference.deepdream import GRAD_EPS, deepdream, jittered, octave_sizes, resize

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_ID = "03_deepdream"


class _Smooth(nn.Module):
    """A smooth two-layer network (tanh), so finite differences are accurate everywhere."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        c1, c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 5, 3, stride=2, padding=1)
        for conv in (c1, c2):
            conv.weight.data = 0.5 * torch.randn(conv.weight.shape, generator=g)
            conv.bias.data = 0.1 * torch.randn(conv.bias.shape, generator=g)
        self.features = nn.Sequential(c1, nn.Tanh(), c2, nn.Tanh()).double()
        for p in self.parameters():
            p.requires_grad_(False)


class _Linear1x1(nn.Module):
    """features = one fixed 1x1 convolution: A = W x at every pixel, so d(1/2 ||A||^2)/dx = W^T W x."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1, bias=False, dtype=weight.dtype)
        conv.weight.data.copy_(weight[:, :, None, None])
        conv.weight.requires_grad_(False)
        self.features = nn.Sequential(conv)


def _half_sq(x: np.ndarray, model: nn.Module, layer_index: int) -> float:
    with torch.no_grad():
        a = model.features[:layer_index + 1](torch.from_numpy(x))
    return 0.5 * float((a.double() ** 2).sum())


def _numeric_gradient(x0: np.ndarray, model, layer_index, eps=1e-6) -> np.ndarray:
    g = np.zeros_like(x0)
    for idx in np.ndindex(*x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (_half_sq(xp, model, layer_index) - _half_sq(xm, model, layer_index)) / (2 * eps)
    return g


# ----------------------------------------------------------------------------------------------- the step


@pytest.mark.parametrize("layer_index", [1, 3])
def test_step_follows_the_finite_difference_gradient_of_half_squared_norm(layer_index):
    model = _Smooth()
    x0 = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = _numeric_gradient(x0.numpy(), model, layer_index)
    img = x0.clone().requires_grad_(True)
    deepdream_step(img, model, layer_index, learning_rate=0.3)
    expected = x0.numpy() + 0.3 * g / (np.abs(g).mean() + GRAD_EPS)       # one mean over the whole batch
    np.testing.assert_allclose(img.detach().numpy(), expected, rtol=1e-6, atol=1e-8)


def test_half_squared_norm_gradient_is_dx_equals_x():
    model = _Smooth(3)
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64,
                    requires_grad=True)
    a = model.features(x)
    (g1,) = torch.autograd.grad(0.5 * a.pow(2).sum(), x, retain_graph=True)
    (g2,) = torch.autograd.grad(a, x, grad_outputs=a.detach())
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-14)


def test_repeated_steps_on_a_linear_layer_match_numpy():
    """Three calls on the same img: each follows its own gradient W^T W x (nothing accumulates)."""
    g = torch.Generator().manual_seed(4)
    w = torch.randn(6, 3, generator=g, dtype=torch.float64)
    x0 = torch.randn(3, 3, 4, 5, generator=g, dtype=torch.float64)
    img = x0.clone().requires_grad_(True)
    a, wn = x0.numpy().copy(), w.numpy()
    for _ in range(3):
        deepdream_step(img, _Linear1x1(w), 0, learning_rate=0.1)
        grad = np.einsum("ji,jk,nkhw->nihw", wn, wn, a)
        a = a + 0.1 * grad / (np.abs(grad).mean() + GRAD_EPS)
    np.testing.assert_allclose(img.detach().numpy(), a, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------- the octaves


def _numpy_octaves(x0: np.ndarray, w: np.ndarray, num_octaves, scale, num_steps, lr) -> np.ndarray:
    """The octave loop written out for a 1x1 linear layer: steps in NumPy, only the resizing from torch."""
    def rs(a, size):
        return resize(torch.from_numpy(a), size).numpy()

    sizes = [(max(1, round(x0.shape[2] / scale ** k)), max(1, round(x0.shape[3] / scale ** k)))
             for k in range(num_octaves)][::-1]
    detail = np.zeros((x0.shape[0], x0.shape[1], *sizes[0]))
    for size in sizes:
        base = rs(x0, size)
        x = base + rs(detail, size)
        for _ in range(num_steps):
            grad = np.einsum("ji,jk,nkhw->nihw", w, w, x)
            x = x + lr * grad / (np.abs(grad).mean() + GRAD_EPS)
        detail = x - base
    return x


def test_octaves_on_a_linear_layer_match_a_numpy_loop():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64)
    x0 = torch.randn(2, 3, 19, 23, generator=g, dtype=torch.float64)
    out = deepdream_octaves(x0, _Linear1x1(w), 0, num_octaves=3, octave_scale=1.5, num_steps=4, learning_rate=0.1)
    expected = _numpy_octaves(x0.numpy(), w.numpy(), 3, 1.5, 4, 0.1)
    assert out.shape == x0.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9, atol=1e-11)


def test_one_octave_is_plain_steps_and_zero_learning_rate_changes_nothing():
    model = _Smooth(6)
    x0 = torch.randn(1, 3, 9, 7, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    for _ in range(3):
        deepdream_step(x, model, 3, 0.2)
    torch.testing.assert_close(deepdream_octaves(x0, model, 3, num_octaves=1, num_steps=3, learning_rate=0.2),
                               x.detach(), rtol=1e-10, atol=1e-12)
    same = deepdream_octaves(x0, model, 3, num_octaves=4, octave_scale=1.3, num_steps=2, learning_rate=0.0)
    torch.testing.assert_close(same, x0, rtol=0, atol=1e-12)          # zero detail everywhere, identity resize
    assert torch.equal(x0, x0.clone()) and not x0.requires_grad       # input untouched


def test_octave_sizes_shrink_by_the_scale_from_the_full_size():
    assert octave_sizes(224, 300, 3, 1.4) == [(224, 300), (160, 214), (114, 153)]
    assert octave_sizes(5, 5, 4, 2.0) == [(5, 5), (2, 2), (1, 1), (1, 1)]


def test_provided_loop_without_jitter_is_octaves_with_the_cards_bounds():
    from utils.data import make_shapes
    from utils.image import preprocess, valid_range
    from utils.models import load_model

    model = load_model("shapes", "cpu")
    imgs, _, _ = make_shapes(1, seed=3)
    x = preprocess(imgs, device="cpu")[..., :40, :44]
    out = deepdream(x, model, 6, octaves=3, iterations=3, max_jitter=0, learning_rate=0.05, progress=False)
    ref = deepdream_octaves(x, model, 6, num_octaves=3, num_steps=3, learning_rate=0.05, bounds=valid_range())
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_jittered_model_is_shift_step_unshift():
    """An ascent step through jittered(model) equals google/deepdream's roll, step, roll back."""
    from utils.data import make_shapes
    from utils.image import preprocess, valid_range
    from utils.models import load_model

    model = load_model("shapes", "cpu")
    imgs, _, _ = make_shapes(1, seed=4)
    x = preprocess(imgs, device="cpu")[..., :36, :40]
    out = deepdream(x, model, 2, octaves=2, iterations=4, max_jitter=5, learning_rate=0.05, progress=False,
                    generator=torch.Generator().manual_seed(9))
    wrapped = jittered(model, 5, torch.Generator().manual_seed(9))
    ref = deepdream_octaves(x, wrapped, 2, num_octaves=2, num_steps=4, learning_rate=0.05, bounds=valid_range())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(out, deepdream_octaves(x, model, 2, num_octaves=2, num_steps=4, learning_rate=0.05,
                                                     bounds=valid_range()), atol=1e-3)


def test_objective_hook_gets_the_activations_and_its_output_is_backpropagated():
    """objective=lambda A: A is the default; objective=lambda A: 2 * A doubles g, which the normalization removes."""
    model = _Smooth(7)
    x0 = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    kw = dict(num_octaves=2, num_steps=2, learning_rate=0.1)
    plain = deepdream_octaves(x0, model, 3, **kw)
    torch.testing.assert_close(deepdream_octaves(x0, model, 3, objective=lambda a: 2 * a, **kw), plain)
    assert not torch.allclose(deepdream_octaves(x0, model, 3, objective=lambda a: -a, **kw), plain)


# ------------------------------------------------------------------------------------------ guided dreaming


def test_guided_gradient_matches_loops_in_float64():
    g = torch.Generator().manual_seed(8)
    a = torch.randn(3, 6, 4, 5, generator=g)
    y = torch.randn(1, 6, 3, 7, generator=g)
    out = guided_gradient(a, y)
    an, yn = a.double().numpy(), y[0].double().numpy().reshape(6, -1)
    expected = np.zeros_like(an)
    for n in range(3):
        for r in range(4):
            for s in range(5):
                dots = [float(an[n, :, r, s] @ yn[:, q]) for q in range(yn.shape[1])]
                expected[n, :, r, s] = yn[:, int(np.argmax(dots))]
    assert out.shape == a.shape and out.dtype == a.dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=0)


def test_guided_gradient_is_the_gradient_of_the_best_match_objective():
    """sum over positions of max_q <a_p, y_q>: its gradient with respect to a is exactly the chosen guide vector."""
    g = torch.Generator().manual_seed(9)
    a = torch.randn(2, 5, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 5, 4, 2, generator=g, dtype=torch.float64)
    objective = torch.einsum("ncp,cq->npq", a.flatten(2), y.reshape(5, -1)).max(dim=2).values.sum()
    (grad,) = torch.autograd.grad(objective, a)
    torch.testing.assert_close(guided_gradient(a.detach(), y), grad, rtol=0, atol=0)


def test_guided_gradient_with_a_basis_guide_picks_the_strongest_channel():
    a = torch.randn(1, 4, 3, 3, generator=torch.Generator().manual_seed(10))
    basis = torch.eye(4).reshape(1, 4, 2, 2)                          # guide vectors e_0 .. e_3
    expected = torch.nn.functional.one_hot(a.argmax(dim=1), 4).permute(0, 3, 1, 2).float()
    assert torch.equal(guided_gradient(a, basis), expected)
    one = torch.randn(1, 4, 1, 1)                                     # a single guide vector: it is everywhere
    assert torch.equal(guided_gradient(a, one), one.expand_as(a))


# ---------------------------------------------------------------------------------------- cases and notebook


def test_octave_and_step_cases_are_stable_in_float64():
    """The float32 references agree with a float64 run far inside the tolerance (no maxpool/ReLU switch flips)."""
    entry = registry.get(ASSIGNMENT_ID)
    for qid in ("deepdream_step", "deepdream_octaves"):
        q = entry.assignment.question(qid)
        for case in q.cases:
            cf = casefile.read(entry.case_path(q, case))
            args = casefile.build_args(cf)
            model = args["model"].double()
            args64 = {k: (v.detach().double().requires_grad_(v.requires_grad) if isinstance(v, torch.Tensor)
                          else tuple(t.double() for t in v) if isinstance(v, tuple) else v) for k, v in args.items()}
            args64["model"] = model
            fn = entry.reference_function(q)
            for _ in range(q.repeat):
                result = fn(**args64)
            got = args64["img"].detach() if q.inplace else result
            exp = cf.expected["out"].double()
            err = ((got - exp).abs() - q.compare.rtol * exp.abs()).max().item()
            assert err < q.compare.atol / 10, (qid, case.name, err)


def test_notebook_helpers_are_the_reference_helpers():
    """The solution notebook's provided cell defines octave_sizes, resize and jittered exactly as the reference."""
    nb = nbformat.read(ROOT / "solutions" / ASSIGNMENT_ID / f"{ASSIGNMENT_ID}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def octave_sizes(" in c.source)
    assert not cell.metadata.get("nbgrader", {}).get("solution")
    ns: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn\n" + cell.source, ns)
    for args in [(224, 300, 3, 1.4), (17, 9, 4, 1.6), (5, 5, 4, 2.0)]:
        assert ns["octave_sizes"](*args) == octave_sizes(*args)
    x = torch.randn(2, 3, 13, 11, generator=torch.Generator().manual_seed(0))
    for size in [(7, 5), (13, 11), (20, 30)]:
        assert torch.equal(ns["resize"](x, size), resize(x, size))
    from autograder.core.tiny_models import build_tiny

    model = build_tiny("tiny_cnn", seed=0)
    a = ns["jittered"](model, 3, torch.Generator().manual_seed(1)).features[:5](x)
    b = jittered(model, 3, torch.Generator().manual_seed(1)).features[:5](x)
    assert torch.equal(a, b)


# ------------------------------------------------------------------ the provided loop on the bundled model


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


def test_deepdream_step_strengthens_the_layer(shapes_model, shapes_image):
    layer = shapes_model.feature_layers[2]
    img = shapes_image.clone().requires_grad_(True)
    before = layer_output(shapes_image, shapes_model, layer).pow(2).sum().item()
    for _ in range(3):
        deepdream_step(img, shapes_model, layer, learning_rate=0.01)
    assert layer_output(img.detach(), shapes_model, layer).pow(2).sum().item() > before


def test_deepdream_octaves_keep_the_size_and_the_valid_range(shapes_model, shapes_image):
    small = shapes_image[..., :40, :48]
    out = deepdream(small, shapes_model, shapes_model.feature_layers[2], octaves=3, iterations=3, progress=False,
                    generator=torch.Generator().manual_seed(0))
    low, high = valid_range()
    assert out.shape == small.shape and torch.isfinite(out).all()
    assert bool(((out >= low - 1e-6) & (out <= high + 1e-6)).all())
    assert not torch.equal(out, small)


def test_one_octave_without_jitter_is_plain_clamped_steps(shapes_model, shapes_image):
    from utils.image import clamp_to_valid

    layer = shapes_model.feature_layers[1]
    out = deepdream(shapes_image, shapes_model, layer, octaves=1, iterations=4, max_jitter=0, learning_rate=0.03,
                    progress=False)
    x = shapes_image.clone().requires_grad_(True)
    for _ in range(4):
        deepdream_step(x, shapes_model, layer, 0.03)
        with torch.no_grad():
            x.copy_(clamp_to_valid(x))
    torch.testing.assert_close(out, x.detach())
