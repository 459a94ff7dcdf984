import numpy as np
import pytest
import torch

from utils.data import (
    PHOTOS,
    SHAPE_CLASSES,
    DatasetUnavailableError,
    load_digits,
    load_mnist,
    load_photo,
    make_shapes,
    shift_images,
    split_digits,
)


def test_shape_classes():
    assert len(SHAPE_CLASSES) >= 10
    assert len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)
    for name in ("circle", "square", "triangle", "star", "cross", "ring", "stripes", "checkerboard", "dots"):
        assert name in SHAPE_CLASSES


def test_make_shapes_types_and_balance():
    n = 53
    images, labels, masks = make_shapes(n, seed=3)
    assert images.dtype == np.uint8 and images.shape == (n, 64, 64, 3)
    assert labels.dtype == np.int64 and labels.shape == (n,)
    assert masks.dtype == np.bool_ and masks.shape == (n, 64, 64)
    counts = np.bincount(labels, minlength=len(SHAPE_CLASSES))
    assert counts.max() - counts.min() <= 1
    assert labels.min() >= 0 and labels.max() < len(SHAPE_CLASSES)
    # every object is visible and not the whole image
    area = masks.mean(axis=(1, 2))
    assert (area > 0.02).all() and (area < 0.9).all()


def test_make_shapes_other_size():
    images, labels, masks = make_shapes(12, seed=0, size=32)
    assert images.shape == (12, 32, 32, 3) and masks.shape == (12, 32, 32)
    assert masks.any(axis=(1, 2)).all()


def test_make_shapes_deterministic():
    a = make_shapes(30, seed=7)
    b = make_shapes(30, seed=7)
    c = make_shapes(30, seed=8)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])


def test_make_shapes_empty():
    images, labels, masks = make_shapes(0, seed=0)
    assert images.shape == (0, 64, 64, 3) and labels.shape == (0,) and masks.shape == (0, 64, 64)


def test_masks_mark_the_object():
    images, labels, masks = make_shapes(60, seed=11)
    x = images.astype(np.float64) / 255.0
    for i in range(len(images)):
        inside = x[i][masks[i]].mean(axis=0)
        outside = x[i][~masks[i]].mean(axis=0)
        assert np.linalg.norm(inside - outside) > 0.08, (i, SHAPE_CLASSES[labels[i]])
    # solid shapes: the pixels inside the mask are (almost) one colour, clearly unlike the background
    for i in np.nonzero(labels < 6)[0][:10]:
        core = x[i][masks[i]]
        assert core.std(axis=0).max() < 0.15


def test_textures_are_textured():
    images, labels, masks = make_shapes(80, seed=4)
    x = images.astype(np.float64) / 255.0
    for i in range(len(images)):
        spread = x[i][masks[i]].std(axis=0).max()
        if SHAPE_CLASSES[labels[i]] in ("stripes", "checkerboard", "dots", "waves"):
            assert spread > 0.1


@pytest.mark.parametrize("name", PHOTOS)
def test_every_photo_loads(name):
    img = load_photo(name)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert min(img.shape[:2]) >= 256
    small = load_photo(name, size=96)
    assert small.dtype == np.uint8 and small.shape == (96, 96, 3)
    assert small.std() > 5  # not blank
    img[0, 0, 0] ^= 1  # a fresh, writable copy: does not affect the next call
    assert not np.shares_memory(img, load_photo(name))


def test_grayscale_photos_are_stacked():
    img = load_photo("brick")
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])


def test_photo_resize_is_center_crop():
    img = load_photo("chelsea")  # (300, 451, 3)
    side = min(img.shape[:2])
    left = (img.shape[1] - side) // 2
    crop = img[:, left:left + side]
    assert np.array_equal(load_photo("chelsea", size=side), crop)


def test_unknown_photo_lists_names():
    with pytest.raises(ValueError) as exc:
        load_photo("lena")
    for name in PHOTOS:
        assert name in str(exc.value)


def test_load_digits():
    x, y = load_digits()
    assert x.dtype == torch.float32 and x.shape == (1797, 1, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (1797,)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert set(y.tolist()) == set(range(10))
    # the digit sits in the centre with a margin of 6 px: a shift of +-6 keeps it on the canvas
    assert x[..., :6, :].abs().max() == 0 and x[..., -6:, :].abs().max() == 0
    assert x[..., :6].abs().max() == 0 and x[..., -6:].abs().max() == 0
    x2, y2 = load_digits(seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, y3 = load_digits(seed=None)
    from sklearn.datasets import load_digits as sk

    assert torch.equal(y3, torch.from_numpy(sk().target))
    xs, _ = load_digits(size=16)
    assert xs.shape == (1797, 1, 16, 16)


def test_split_digits():
    x, y = load_digits(size=16)
    xtr, ytr, xte, yte = split_digits(x, y, test_fraction=0.25, seed=0)
    assert xtr.shape[0] + xte.shape[0] == x.shape[0]
    assert abs(xte.shape[0] - 0.25 * x.shape[0]) <= 10
    assert set(ytr.tolist()) == set(yte.tolist()) == set(range(10))
    again = split_digits(x, y, test_fraction=0.25, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((xtr, ytr, xte, yte), again))
    # no sample in both parts: compare flattened images
    tr = {tuple(v) for v in xtr.flatten(1).numpy().round(5)}
    te = [tuple(v) for v in xte.flatten(1).numpy().round(5)]
    assert sum(t in tr for t in te) <= 5  # sklearn digits hold a few exact duplicates


def _shift_loop(x, dx, dy):
    n, c, h, w = x.shape
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            si, sj = i - dy, j - dx
            if 0 <= si < h and 0 <= sj < w:
                out[:, :, i, j] = x[:, :, si, sj]
    return out


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, 0), (0, -2), (-4, 5), (6, 6), (-6, -1), (9, 0), (0, -20)])
def test_shift_images_matches_loop(dx, dy):
    x = torch.randn(2, 3, 8, 9)
    out = shift_images(x, dx, dy)
    assert out.shape == x.shape
    assert torch.equal(out, _shift_loop(x, dx, dy))


def test_shift_keeps_digit_visible():
    x, _ = load_digits()
    total = x.sum(dim=(1, 2, 3))
    for dx, dy in [(6, 6), (-6, 6), (6, -6), (-6, -6)]:
        assert torch.allclose(shift_images(x, dx, dy).sum(dim=(1, 2, 3)), total)


def test_load_mnist_missing(tmp_path):
    with pytest.raises(DatasetUnavailableError) as exc:
        load_mnist(tmp_path)
    msg = str(exc.value)
    assert str(tmp_path) in msg and "load_digits" in msg
