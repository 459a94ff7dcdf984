import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from utils.image import (
    blur,
    center_crop_resize,
    clamp_to_bounds,
    clamp_to_valid,
    deprocess,
    gaussian_kernel1d,
    jitter,
    normalize,
    preprocess,
    random_shift,
    uint8_to_float,
    unjitter,
    valid_range,
)
from utils.models import ModelCard, model_card

CARDS = ["shapes", "squeezenet1_1"]


def _random_uint8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("name", CARDS)
def test_round_trip_exact(name):
    card = model_card(name)
    s = card.input_size
    imgs = _random_uint8((3, s, s, 3))
    x = preprocess(imgs, card)
    assert x.dtype == torch.float32 and x.shape == (3, 3, s, s)
    back = deprocess(x, card)
    assert back.dtype == np.uint8 and back.shape == imgs.shape
    assert np.abs(back.astype(int) - imgs.astype(int)).max() <= 1  # <= 1/255
    # single image in, single image out
    one = deprocess(preprocess(imgs[0], card)[0], card)
    assert one.shape == (s, s, 3)
    assert np.abs(one.astype(int) - imgs[0].astype(int)).max() <= 1


def test_preprocess_normalizes_with_card():
    card = ModelCard("t", ("a",), (0.5, 0.25, 0.0), (0.5, 0.25, 1.0), 4, "test")
    img = np.full((4, 4, 3), 255, dtype=np.uint8)
    x = preprocess(img, card)
    expected = torch.tensor([(1 - 0.5) / 0.5, (1 - 0.25) / 0.25, 1.0])
    assert torch.allclose(x[0, :, 0, 0], expected)


def test_preprocess_accepts_list_and_resizes():
    card = model_card("shapes")
    s = card.input_size
    imgs = [_random_uint8((40, 50, 3), 1), _random_uint8((s * 2, s * 2, 3), 2), _random_uint8((s, s, 3), 3)]
    x = preprocess(imgs, card)
    assert x.shape == (3, 3, s, s)
    assert torch.isfinite(x).all()
    # a flat colour stays that colour through crop + resize
    flat = np.full((90, 120, 3), (10, 200, 30), dtype=np.uint8)
    out = deprocess(preprocess(flat, card), card)[0]
    assert (np.abs(out.astype(int) - np.array([10, 200, 30])) <= 1).all()


def test_uint8_to_float_is_pixels_over_255_channels_first():
    """Independent formulation: NumPy's float32 division, transposed to (N, 3, H, W); bit for bit."""
    imgs = _random_uint8((3, 5, 7, 3), 4)
    x = uint8_to_float(imgs)
    expected = imgs.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    assert x.dtype == torch.float32 and x.shape == (3, 3, 5, 7)
    assert np.array_equal(x.numpy(), expected)
    assert np.array_equal(uint8_to_float(imgs[1]).numpy(), expected[1:2])                      # one image -> N = 1
    assert np.array_equal(uint8_to_float([imgs[2], imgs[0]]).numpy(), expected[[2, 0]])         # a list
    assert np.array_equal(uint8_to_float(torch.from_numpy(imgs)).numpy(), expected)             # a torch batch
    assert 0.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(TypeError, match="uint8_to_float expected"):
        uint8_to_float(imgs.astype(np.float32))


def test_uint8_to_float_keeps_the_channels_last_memory_of_a_batch():
    """The training scripts fit their normalization with a reduction over this tensor: no copy, the array's order."""
    imgs = _random_uint8((2, 4, 6, 3), 6)
    x = uint8_to_float(imgs)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalize_is_the_cards_per_channel_formula(dtype):
    card = ModelCard("t", ("a",), (0.5, 0.25, 0.125), (0.5, 2.0, 0.1), 4, "test")
    px = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=dtype, requires_grad=True)
    y = normalize(px, card)
    assert y.dtype == dtype and y.shape == px.shape
    for c in range(3):   # channel by channel, with Python floats
        expected = (px.detach()[:, c] - card.mean[c]) / card.std[c]
        torch.testing.assert_close(y.detach()[:, c], expected, rtol=1e-15 if dtype == torch.float64 else 1e-6,
                                   atol=0)
    y.sum().backward()   # differentiable: d/dpx = 1 / std of the channel
    torch.testing.assert_close(px.grad[0, :, 0, 0], torch.tensor([2.0, 0.5, 10.0], dtype=dtype))
    torch.testing.assert_close(normalize(px.detach()), normalize(px.detach(), model_card("shapes")), rtol=0, atol=0)


def test_feature_vis_normalizes_with_the_same_function():
    import utils.feature_vis

    assert utils.feature_vis.normalize is normalize


def test_center_crop_resize_keeps_the_centered_square():
    wide = torch.arange(2 * 3 * 5 * 8, dtype=torch.float32).view(2, 3, 5, 8)
    assert torch.equal(center_crop_resize(wide, 5), wide[..., :, 1:6])             # (8 - 5) // 2 = 1 cut on the left
    tall = wide.transpose(-2, -1)
    assert torch.equal(center_crop_resize(tall, 5), tall[..., 1:6, :])
    square = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(center_crop_resize(square, 6), square)                     # right size: untouched
    flat = torch.full((1, 3, 30, 40), 0.25)
    for size in (7, 30, 64):                                                         # shrinking and growing
        torch.testing.assert_close(center_crop_resize(flat, size), torch.full((1, 3, size, size), 0.25))


def test_preprocess_batch_equals_list():
    imgs = _random_uint8((2, 64, 64, 3), 5)
    assert torch.equal(preprocess(imgs), preprocess([imgs[0], imgs[1]]))


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.float64),
                                 torch.zeros(8, 8, 3)])
def test_preprocess_wrong_dtype(bad):
    with pytest.raises(TypeError, match="uint8") as exc:
        preprocess(bad)
    assert str(bad.dtype) in str(exc.value)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 4), (2, 3, 8, 8), (1, 2, 8, 8, 3)])
def test_preprocess_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)") as exc:
        preprocess(np.zeros(shape, np.uint8))
    assert str(shape) in str(exc.value)


def test_preprocess_rejects_other_types():
    with pytest.raises(TypeError):
        preprocess("astronaut.png")
    with pytest.raises(ValueError):
        preprocess([])


def test_deprocess_errors():
    with pytest.raises(TypeError):
        deprocess(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError):
        deprocess(torch.zeros(1, 4, 4, 4))


def test_jitter_unjitter_identity():
    x = torch.randn(2, 3, 7, 9)
    for ox, oy in [(0, 0), (3, -2), (-5, 4), (11, 20)]:
        j = jitter(x, ox, oy)
        assert torch.equal(unjitter(j, ox, oy), x)
    # direction: ox moves content along the width, oy along the height
    j = jitter(x, 1, 2)
    assert torch.equal(j[..., 2, 1], x[..., 0, 0])
    assert torch.equal(jitter(x, 4, 0), torch.roll(x, 4, dims=-1))


def test_random_shift_draws_uniform_offsets_from_the_generator():
    g = torch.Generator().manual_seed(3)
    draws = [random_shift(2, g) for _ in range(400)]
    assert all(isinstance(o, int) for d in draws for o in d)
    for axis in (0, 1):   # every offset in [-2, 2] turns up, nothing outside, both axes drawn independently
        assert {d[axis] for d in draws} == {-2, -1, 0, 1, 2}
    assert len(set(draws)) == 25
    assert draws[:5] == [random_shift(2, g2) for g2 in [torch.Generator().manual_seed(3)] for _ in range(5)]


def test_random_shift_zero_still_draws_once():
    """max_jitter 0 gives (0, 0) and advances the generator as one draw of two offsets (the notebooks' RandomShift
    does; callers that skip the jitter skip the call)."""
    g, h = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert random_shift(0, g) == (0, 0)
    torch.randint(0, 9, (2,), generator=h)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=h))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.3, 5.0, 12.0])
@pytest.mark.parametrize("truncate", [4.0, 2.0])
def test_blur_matches_scipy_reflect(sigma, truncate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 17))
    ours = blur(torch.from_numpy(x), sigma, truncate=truncate).numpy()
    for n in range(2):
        for c in range(3):
            ref = gaussian_filter(x[n, c], sigma, mode="reflect", truncate=truncate)
            np.testing.assert_allclose(ours[n, c], ref, rtol=0, atol=1e-12)


def test_blur_float32_shape_and_grad():
    x = torch.randn(1, 3, 10, 10, requires_grad=True)
    y = blur(x, 1.5)
    assert y.shape == x.shape and y.dtype == torch.float32
    y.sum().backward()
    # a normalized kernel with reflect borders preserves the total of each channel -> gradient of the sum is 1
    assert torch.allclose(x.grad, torch.ones_like(x), atol=1e-5)
    ref = gaussian_filter(x.detach().numpy()[0, 1].astype(np.float64), 1.5, mode="reflect")
    np.testing.assert_allclose(y.detach().numpy()[0, 1], ref, atol=1e-5)
    assert torch.equal(blur(x.detach(), 0.0), x.detach())
    assert blur(x.detach()[0], 1.0).shape == (3, 10, 10)


def test_gaussian_kernel_matches_scipy():
    from scipy.ndimage import _filters

    k = gaussian_kernel1d(1.7).numpy()
    ref = _filters._gaussian_kernel1d(1.7, 0, int(4.0 * 1.7 + 0.5))[::-1]
    np.testing.assert_allclose(k, ref, atol=1e-15)


@pytest.mark.parametrize("name", CARDS)
def test_valid_range_and_clamp(name):
    card = model_card(name)
    low, high = valid_range(card)
    assert low.shape == high.shape == (1, 3, 1, 1)
    mean = torch.tensor(card.mean).view(1, 3, 1, 1)
    std = torch.tensor(card.std).view(1, 3, 1, 1)
    assert torch.allclose(low * std + mean, torch.zeros(1, 3, 1, 1), atol=1e-6)
    assert torch.allclose(high * std + mean, torch.ones(1, 3, 1, 1), atol=1e-6)
    x = torch.randn(2, 3, 5, 5) * 10
    before = x.clone()
    y = clamp_to_valid(x, card)
    assert torch.equal(x, before)  # out of place
    assert (y >= low - 1e-6).all() and (y <= high + 1e-6).all()
    inside = (x >= low) & (x <= high)
    assert torch.equal(y[inside], x[inside])
    # clamped images deprocess to the extreme pixel values where they were clamped
    img = deprocess(y, card)
    assert img.min() >= 0 and img.max() <= 255


def test_clamp_to_bounds_is_numpy_clip_per_channel():
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    lo, hi = torch.tensor([-1.0, 0.0, -2.5]).view(1, 3, 1, 1), torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    y = clamp_to_bounds(x, (lo.double(), hi.double()))
    for c in range(3):
        expected = np.clip(x[:, c].numpy(), float(lo[0, c]), float(hi[0, c]))
        assert np.array_equal(y[:, c].numpy(), expected)
    assert clamp_to_bounds(x, None) is x
    g = torch.zeros_like(x, requires_grad=True)
    clamp_to_bounds(x + g, (lo.double(), hi.double())).sum().backward()   # gradient 1 inside, 0 where clamped
    inside = (x >= lo) & (x <= hi)
    assert torch.equal(g.grad, inside.double())


def test_preprocess_keeps_a_requested_size():
    from utils.models import model_card

    card = model_card("shapes")
    u8 = np.random.default_rng(0).integers(0, 256, size=(2, 24, 24, 3), dtype=np.uint8)
    x = preprocess(u8, card, size=24)
    expected = (u8.astype(np.float64) / 255 - np.array(card.mean)) / np.array(card.std)   # by hand, float64
    assert x.shape == (2, 3, 24, 24)
    np.testing.assert_allclose(x.permute(0, 2, 3, 1).numpy(), expected, rtol=1e-5, atol=1e-5)
