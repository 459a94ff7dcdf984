"""utils.training: the one loop behind ``utils.train_bundled`` and ``utils.train_second``.

The augmentations are checked against NumPy re-statements fed the same random draws; the loop and the scripts on
runs of a few steps (the committed weights are never rewritten here)."""
from __future__ import annotations

import json

import numpy as np
import torch

from utils.data import make_shapes
from utils.image import normalize, uint8_to_float
from utils.models import ShapesNet, model_card, sha256_file
from utils.training import accuracy, augment_per_quarter, flip_rotate_shift, train_classifier


def _batch(n=8, size=6, seed=0, width=None):
    return torch.randn(n, 3, size, width or size, generator=torch.Generator().manual_seed(seed))


def _numpy_flip_rotate_shift(x: np.ndarray, flip: bool, k: int, rows: int, cols: int) -> np.ndarray:
    if flip:
        x = x[..., ::-1]
    x = np.rot90(x, k=k, axes=(-2, -1))
    return np.roll(x, shift=(rows, cols), axis=(-2, -1))


def test_flip_rotate_shift_is_flip_then_rot90_then_roll_with_its_draws():
    x = _batch(width=7)                                             # not square: rows and columns told apart
    for seed in range(12):
        out = flip_rotate_shift(x, torch.Generator().manual_seed(seed))
        h = torch.Generator().manual_seed(seed)                   # the same draws, in the documented order
        flip = bool(torch.rand((), generator=h) < 0.5)
        k = int(torch.randint(0, 4, (), generator=h))
        rows, cols = torch.randint(-4, 5, (2,), generator=h).tolist()
        expected = _numpy_flip_rotate_shift(x.numpy(), flip, k, rows, cols)
        assert np.array_equal(out.numpy(), expected), seed


def test_flip_rotate_shift_with_given_quarter_turns_draws_no_rotation():
    x = _batch(seed=1)
    out = flip_rotate_shift(x, torch.Generator().manual_seed(4), quarter_turns=3, max_shift=2)
    h = torch.Generator().manual_seed(4)
    flip = bool(torch.rand((), generator=h) < 0.5)
    rows, cols = torch.randint(-2, 3, (2,), generator=h).tolist()
    assert np.array_equal(out.numpy(), _numpy_flip_rotate_shift(x.numpy(), flip, 3, rows, cols))


def test_augment_per_quarter_rotates_quarter_i_by_i_turns():
    x = _batch(n=10, size=5, seed=2)
    out = augment_per_quarter(x, torch.Generator().manual_seed(7))
    h = torch.Generator().manual_seed(7)
    perm = torch.randperm(10, generator=h).numpy()
    expected = np.empty_like(x.numpy())
    size = -(-10 // 4)                                              # torch.chunk: groups of ceil(n / 4): 3, 3, 3, 1
    for turns, idx in enumerate([perm[i:i + size] for i in range(0, 10, size)]):
        flip = bool(torch.rand((), generator=h) < 0.5)
        rows, cols = torch.randint(-4, 5, (2,), generator=h).tolist()
        expected[idx] = _numpy_flip_rotate_shift(x.numpy()[idx], flip, turns, rows, cols)
    assert np.array_equal(out.numpy(), expected)


def _tiny_run(seed, steps_seed=0):
    images, labels, _ = make_shapes(48, seed=11, size=16)
    x, y = normalize(uint8_to_float(images), model_card("shapes")), torch.from_numpy(labels)
    torch.manual_seed(steps_seed)
    model = ShapesNet(widths=(4, 4, 4, 4, 4)).to(memory_format=torch.channels_last)
    history = train_classifier(model, x, y, augment=flip_rotate_shift, epochs=2, batch_size=16, lr=1e-2,
                               weight_decay=5e-4, seed=seed, monitor=(x[:8], y[:8]), progress=False)
    return model, history, x, y


def test_train_classifier_is_reproducible_from_its_seed():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                        # bit-reproducible for a given thread count
    try:
        a, hist_a, x, y = _tiny_run(seed=3)
        b, hist_b, _, _ = _tiny_run(seed=3)
        c, _, _, _ = _tiny_run(seed=4)                             # another batch order and other augmentations
    finally:
        torch.set_num_threads(threads)
    state_a, state_b, state_c = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)
    assert hist_a == hist_b and [h["epoch"] for h in hist_a] == [1, 2]
    assert set(hist_a[0]) == {"epoch", "loss", "train_acc", "monitor_acc"}
    assert hist_a[-1]["monitor_acc"] == accuracy(a, x[:8], y[:8])
    fresh = ShapesNet(widths=(4, 4, 4, 4, 4))
    assert not all(torch.equal(v, fresh.state_dict()[k]) for k, v in state_a.items())   # it did train
    assert int(state_a["features.1.num_batches_tracked"]) == 2 * 3                     # 48 / 16 steps per epoch


def test_accuracy_counts_the_share_classified_right():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 3).float()

    x = torch.zeros(7, 3, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    y = torch.tensor([0, 1, 2, 1, 1, 0, 0])
    assert abs(accuracy(Fixed(), x, y, batch=3) - 5 / 7) < 1e-7


def test_train_bundled_smoke_fits_its_normalization_and_monitors(tmp_path):
    from utils.train_bundled import train

    meta = train(epochs=1, n_train=64, out=tmp_path, batch_size=32, threads=1)
    on_disk = json.loads((tmp_path / "shapes.json").read_text())
    assert on_disk == meta and meta["name"] == "shapes" and meta["widths"] == list(ShapesNet.widths)
    assert meta["sha256"] == sha256_file(tmp_path / "shapes.safetensors")
    pixels = uint8_to_float(make_shapes(64, seed=1_000_000, size=64)[0])     # the training images of seed 0
    assert meta["mean"] == [round(float(v), 4) for v in pixels.mean(dim=(0, 2, 3))]
    assert meta["std"] == [round(float(v), 4) for v in pixels.std(dim=(0, 2, 3))]
    assert set(meta["training"]["history"][0]) == {"epoch", "loss", "train_acc", "monitor_acc"}
    assert meta["training"]["command"].startswith("python -m utils.train_bundled --seed 0")
