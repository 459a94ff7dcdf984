import matplotlib
import numpy as np
import pytest
import torch

from utils.plot import overlay_saliency, plot_embedding, show_images, show_saliency, to_uint8_images

pytestmark = pytest.mark.usefixtures("close_figures")


def _imgs(n=3, s=16):
    return np.random.default_rng(0).integers(0, 256, (n, s, s, 3), dtype=np.uint8)


def test_to_uint8_images_accepts_layouts():
    u8 = _imgs(2)
    t = torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255
    a = to_uint8_images(u8)
    b = to_uint8_images(t)
    assert len(a) == len(b) == 2
    assert all(np.abs(x.astype(int) - y.astype(int)).max() <= 1 for x, y in zip(a, b))
    assert to_uint8_images(t[0])[0].shape == (16, 16, 3)
    assert to_uint8_images(torch.rand(4, 1, 8, 8))[0].shape == (8, 8)
    assert len(to_uint8_images([u8[0], u8[1]])) == 2


def test_show_images():
    fig = show_images(_imgs(5), titles=list("abcde"), ncols=3)
    assert isinstance(fig, matplotlib.figure.Figure)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 5
    assert [ax.get_title() for ax in shown] == list("abcde")
    with pytest.raises(ValueError):
        show_images(_imgs(2), titles=["only one"])


def test_show_images_tensor():
    fig = show_images(torch.rand(2, 3, 8, 8), figsize=(4, 2))
    assert len([ax for ax in fig.axes if ax.images]) == 2


def test_overlay_saliency():
    img = _imgs(1)[0]
    sal = np.zeros((16, 16))
    out = overlay_saliency(img, sal)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out, img)  # zero saliency leaves the image as it is
    sal[4:8, 4:8] = 1.0
    out = overlay_saliency(img, torch.from_numpy(sal), alpha=0.5)
    assert not np.array_equal(out[4:8, 4:8], img[4:8, 4:8])
    assert np.array_equal(out[10:, 10:], img[10:, 10:])
    assert overlay_saliency(img, np.random.rand(8, 8)).shape == img.shape  # resized


def test_show_saliency():
    fig = show_saliency(_imgs(3), torch.rand(3, 16, 16), titles=["a", "b", "c"])
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 9
    with pytest.raises(ValueError):
        show_saliency(_imgs(3), torch.rand(2, 16, 16))


def test_plot_embedding():
    pts = np.random.default_rng(0).standard_normal((30, 2))
    labels = np.arange(30) % 3
    fig = plot_embedding(pts, labels, title="emb", class_names=["x", "y", "z"])
    ax = fig.axes[0]
    assert ax.get_title() == "emb"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x", "y", "z"]
    import matplotlib.pyplot as plt

    fig2, ax2 = plt.subplots()
    assert plot_embedding(torch.from_numpy(pts), torch.from_numpy(labels), ax=ax2) is fig2
    with pytest.raises(ValueError):
        plot_embedding(np.zeros((5, 3)), np.zeros(5))
