"""Unit tests of the assignment-05 reference (utils/reference/fooling.py).

The reference is checked against independent formulations, never against itself: a linear classifier whose
input gradient is a row of its weight matrix (closed form, float64, simulated step by step in NumPy), central
finite differences of a small ConvNet, and plain properties (fooled, early stop, bounds, input untouched).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from autograder.core.tiny_models import build_tiny
from utils.reference.fooling import (
    fooling_step,
    make_fooling_image,
    make_unrecognizable_image,
    make_untargeted_fooling_image,
)

H = W = 6
C = 5


def linear_model(seed: int = 0, classes: int = C, size: int = H) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(3 * size * size, classes).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(classes, 3 * size * size, generator=g, dtype=torch.float64) * 0.1)
        lin.bias.copy_(torch.randn(classes, generator=g, dtype=torch.float64))
    model = nn.Sequential(nn.Flatten(), lin).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def weights(model: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    lin = model[1]
    return lin.weight.numpy().copy(), lin.bias.numpy().copy()


def image(seed: int, n: int = 1, h: int = H, w: int = W, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, h, w, generator=g, dtype=dtype)


BOUNDS = (torch.full((1, 3, 1, 1), -1.5, dtype=torch.float64), torch.full((1, 3, 1, 1), 1.5, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- fooling_step
def test_step_linear_closed_form_batched_targets():
    model = linear_model(1)
    Wm, _ = weights(model)
    X = image(2, n=3)
    X0 = X.clone()
    targets = torch.tensor([4, 0, 2])
    out = fooling_step(X, targets, model, learning_rate=0.7)
    expected = X.numpy().reshape(3, -1).copy()
    for i, t in enumerate(targets.tolist()):
        expected[i] += 0.7 * Wm[t] / np.sqrt((Wm[t] ** 2).sum())
    np.testing.assert_allclose(out.numpy().reshape(3, -1), expected, rtol=0, atol=1e-12)
    assert torch.equal(X, X0), "fooling_step must not modify its input"
    assert out.shape == X.shape and out.dtype == X.dtype and not out.requires_grad


def test_step_int_target_applies_to_every_image():
    model = linear_model(3)
    X = image(4, n=2)
    a = fooling_step(X, 3, model)
    b = fooling_step(X, torch.tensor([3, 3]), model)
    assert torch.equal(a, b)


def test_step_is_clamped_into_bounds():
    model = linear_model(5)
    Wm, _ = weights(model)
    X = image(6) * 2  # many pixels start outside [-1.5, 1.5]
    out = fooling_step(X, 1, model, learning_rate=2.0, bounds=BOUNDS)
    raw = X.numpy().reshape(-1) + 2.0 * Wm[1] / np.linalg.norm(Wm[1])
    np.testing.assert_allclose(out.numpy().reshape(-1), np.clip(raw, -1.5, 1.5), rtol=0, atol=1e-12)
    assert (out >= -1.5).all() and (out <= 1.5).all()


def test_step_matches_finite_differences_per_image():
    torch.manual_seed(0)
    model = build_tiny("tiny_cnn", seed=3).double()
    X = image(7, n=2, h=8, w=8)
    targets = [2, 7]
    out = fooling_step(X, torch.tensor(targets), model, learning_rate=0.5)
    step = (out - X).reshape(2, -1)
    eps = 1e-6
    n = 3 * 8 * 8
    for i, t in enumerate(targets):
        basis = torch.eye(n, dtype=torch.float64).view(n, 3, 8, 8) * eps
        with torch.no_grad():  # all central differences in one batch
            grad = (model(X[i] + basis)[:, t] - model(X[i] - basis)[:, t]) / (2 * eps)
        expected = 0.5 * grad / grad.norm()
        torch.testing.assert_close(step[i], expected, rtol=1e-5, atol=1e-7)
        assert abs(step[i].norm().item() - 0.5) < 1e-9  # each image's own step has length learning_rate


def test_step_follows_float32_and_no_grad_context():
    model = build_tiny("tiny_cnn", seed=0)
    X = image(8, n=1, h=8, w=8, dtype=torch.float32)
    with torch.no_grad():
        out = fooling_step(X, 4, model)
    assert out.dtype == torch.float32
    assert abs((out - X).norm().item() - 1.0) < 1e-4


# ---------------------------------------------------------------------------------------- make_fooling_image
def simulate_targeted(X: np.ndarray, target: int, Wm, b, lr, max_steps):
    """Independent NumPy simulation of normalized ascent on a linear model: returns (image, steps)."""
    x = X.reshape(-1).copy()
    d = Wm[target] / np.linalg.norm(Wm[target])
    for k in range(max_steps + 1):
        if int(np.argmax(Wm @ x + b)) == target:
            return x, k
        x = x + lr * d
    raise AssertionError("simulation did not converge")


@pytest.mark.parametrize("seed,rank,lr", [(0, 1, 1.0), (1, 2, 0.25), (2, 4, 2.0), (3, 3, 0.5)])
def test_targeted_linear_matches_simulation(seed, rank, lr):
    model = linear_model(seed)
    Wm, b = weights(model)
    X = image(10 + seed)
    X0 = X.clone()
    target = int(model(X)[0].argsort(descending=True)[rank])  # the rank-th best class, never the prediction
    expected, steps = simulate_targeted(X.numpy(), target, Wm, b, lr, 1000)
    out = make_fooling_image(X, target, model, learning_rate=lr, max_steps=1000)
    np.testing.assert_allclose(out.numpy().reshape(-1), expected, rtol=0, atol=1e-9)
    assert steps >= 1
    assert torch.equal(X, X0), "make_fooling_image must leave X unchanged"
    assert out is not X


def test_targeted_stops_at_first_fooled_iterate():
    model = build_tiny("tiny_cnn", seed=6)
    X = image(11, h=16, w=16, dtype=torch.float32)
    out = make_fooling_image(X, 1, model, learning_rate=0.5, max_steps=500)
    assert int(model(out).argmax()) == 1
    # replay the same steps one by one: the output must be the first fooled iterate
    x, steps = X.clone(), 0
    while int(model(x).argmax()) != 1:
        x = fooling_step(x, 1, model, learning_rate=0.5)
        steps += 1
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)
    assert steps > 1


def test_targeted_already_fooled_returns_copy():
    model = linear_model(4)
    X = image(12)
    pred = int(model(X).argmax())
    out = make_fooling_image(X, pred, model)
    assert torch.equal(out, X) and out is not X
    out.add_(1.0)
    assert not torch.equal(out, X)


def test_targeted_gives_up_with_clear_message():
    model = linear_model(6)
    X = image(13)
    target = int(model(X).argmin())
    with pytest.raises(RuntimeError, match=r"gave up after 2 steps"):
        make_fooling_image(X, target, model, learning_rate=1e-4, max_steps=2)


def test_targeted_respects_bounds_and_rejects_batches():
    model = linear_model(7)
    X = image(14).clamp(-1.5, 1.5)
    target = int(model(X).argmin())
    out = make_fooling_image(X, target, model, learning_rate=0.5, max_steps=500, bounds=BOUNDS)
    assert int(model(out).argmax()) == target
    assert (out >= -1.5).all() and (out <= 1.5).all()
    with pytest.raises(ValueError):
        make_fooling_image(image(15, n=2), 0, model)


# ------------------------------------------------------------------------------ make_untargeted_fooling_image
def test_untargeted_linear_matches_simulation():
    model = linear_model(8)
    Wm, b = weights(model)
    X = image(16)
    y = int(model(X).argmax())
    x = X.numpy().reshape(-1).copy()
    for _ in range(1000):
        s = Wm @ x + b
        if int(np.argmax(s)) != y:
            break
        rival = int(np.argmax(np.where(np.arange(C) == y, -np.inf, s)))
        d = Wm[rival] - Wm[y]
        x = x + 0.3 * d / np.linalg.norm(d)
    out = make_untargeted_fooling_image(X, y, model, learning_rate=0.3, max_steps=1000)
    np.testing.assert_allclose(out.numpy().reshape(-1), x, rtol=0, atol=1e-9)
    assert int(model(out).argmax()) != y


def test_untargeted_gives_up_and_keeps_input():
    model = linear_model(9)
    X = image(17)
    X0 = X.clone()
    y = int(model(X).argmax())
    with pytest.raises(RuntimeError, match="gave up"):
        make_untargeted_fooling_image(X, y, model, learning_rate=1e-6, max_steps=3)
    assert torch.equal(X, X0)


# ---------------------------------------------------------------------------------- make_unrecognizable_image
@pytest.mark.parametrize("confidence", [0.9, 0.996])
def test_unrecognizable_every_class_batched(confidence):
    model = linear_model(10)
    X_init = torch.zeros(C, 3, H, W, dtype=torch.float64)
    targets = torch.arange(C)
    out = make_unrecognizable_image(targets, model, confidence=confidence, X_init=X_init, learning_rate=0.5,
                                    max_steps=2000, bounds=(-4.0, 4.0))
    probs = model(out).softmax(dim=1)[torch.arange(C), targets]
    assert (probs >= confidence).all(), probs
    assert (out.abs() <= 4.0).all()
    assert torch.equal(X_init, torch.zeros_like(X_init))
    # early stop per image: one step less would not have been enough, so no image is pushed far past the bar
    assert (probs < 1 - (1 - confidence) / 50).all(), probs


def test_unrecognizable_freezes_finished_images():
    model = linear_model(11)
    X_init = image(18, n=2)
    easy = int(model(X_init[:1]).argmax())
    probs0 = model(X_init).softmax(1)
    conf = float(probs0[0, easy]) * 0.99  # image 0 already satisfies it
    target = torch.tensor([easy, int(probs0[1].argmin())])
    out = make_unrecognizable_image(target, model, confidence=conf, X_init=X_init, learning_rate=0.2,
                                    max_steps=5000)
    assert torch.equal(out[0], X_init[0])
    assert model(out).softmax(1)[1, target[1]] >= conf


def test_unrecognizable_default_start_is_seeded_noise_64():
    model = linear_model(13, size=64).float()
    out = make_unrecognizable_image(2, model, learning_rate=1.0, max_steps=500)
    assert out.shape == (1, 3, 64, 64) and out.dtype == torch.float32
    assert model(out).softmax(1)[0, 2] >= 0.996
    start = 0.5 * torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    same = make_unrecognizable_image(2, model, learning_rate=1.0, max_steps=500, X_init=start)
    assert torch.equal(out, same)


def test_unrecognizable_moves_the_bundled_model_from_noise(shapes_model):
    """The bundled model is a ReLU network without conv biases: the default start must not be a dead point."""
    out = make_unrecognizable_image(4, shapes_model, confidence=0.99, max_steps=100)
    assert shapes_model(out).softmax(1)[0, 4] >= 0.99


def test_unrecognizable_gives_up():
    model = linear_model(12)
    with pytest.raises(RuntimeError, match="class 3"):
        make_unrecognizable_image(torch.tensor([3]), model, confidence=0.999,
                                  X_init=torch.zeros(1, 3, H, W, dtype=torch.float64), learning_rate=1e-3,
                                  max_steps=2)


# ------------------------------------------------------------------------------ the second model (transfer)
def test_second_model_loads_and_agrees_with_the_bundled_one(shapes_model):
    from utils.data import make_shapes
    from utils.image import preprocess
    from utils.models import model_card
    from utils.models import load_model
    from utils.train_second import SMALL_WIDTHS

    second = load_model("shapes_small", "cpu")
    assert tuple(second.widths) == SMALL_WIDTHS and not second.training
    assert all(not p.requires_grad for p in second.parameters())
    images, labels, _ = make_shapes(100, seed=777)
    X = preprocess(images, model_card("shapes"))
    with torch.no_grad():
        p1, p2 = shapes_model(X).argmax(1), second(X).argmax(1)
    y = torch.from_numpy(labels)
    assert (p2 == y).float().mean() >= 0.95
    assert (p1 == p2).float().mean() >= 0.95
    assert not torch.equal(second.features[0].weight[:12], shapes_model.features[0].weight[:12])


def test_second_model_checksum_and_missing_file(tmp_path, monkeypatch):
    import shutil

    import utils.models as models
    from utils.models import ModelUnavailableError, WeightsChecksumError, load_model

    def load_second_model(device):
        return load_model("shapes_small", device)

    for name in ("shapes.json", "shapes.safetensors", "shapes_small.json", "shapes_small.safetensors"):
        shutil.copy(models.WEIGHTS_DIR / name, tmp_path / name)
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    load_second_model("cpu")
    data = bytearray((tmp_path / "shapes_small.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "shapes_small.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsChecksumError, match="train_second"):
        load_second_model("cpu")
    (tmp_path / "shapes_small.json").unlink()
    with pytest.raises(ModelUnavailableError, match="train_second"):
        load_second_model("cpu")


def test_train_second_smoke(tmp_path):
    from utils.train_second import train

    meta = train(epochs=1, n_train=64, out=tmp_path, batch_size=32)
    assert (tmp_path / "shapes_small.safetensors").is_file()
    assert meta["widths"] and meta["sha256"] and 0.0 <= meta["heldout"]["accuracy"] <= 1.0
