"""Image <-> tensor conversion and the small image operations the visualization notebooks share.

Conventions: images are uint8 ``(H, W, 3)`` NumPy arrays (RGB); model inputs are float32 ``(N, 3, S, S)`` tensors
normalized with a :class:`utils.models.ModelCard`'s mean/std. Every tensor operation here follows the device and
dtype of its input and is differentiable where that makes sense (``blur``, ``jitter``, ``clamp_to_valid``).
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from .models import ModelCard, model_card

__all__ = ["preprocess", "uint8_to_float", "normalize", "center_crop_resize", "deprocess", "jitter", "unjitter",
           "random_shift", "blur", "gaussian_kernel1d", "valid_range", "clamp_to_valid",
           "clamp_to_bounds"]


def _card(card: ModelCard | None) -> ModelCard:
    return model_card("shapes") if card is None else card


def _stats(card: ModelCard, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The card's mean and std as ``(1, 3, 1, 1)`` tensors of ``dtype`` on ``device``."""
    mean = torch.tensor(card.mean, dtype=dtype, device=device).view(1, 3, 1, 1)
    std = torch.tensor(card.std, dtype=dtype, device=device).view(1, 3, 1, 1)
    return mean, std


def _describe(a) -> str:
    if isinstance(a, (np.ndarray, torch.Tensor)):
        return f"{type(a).__name__} of dtype {a.dtype} and shape {tuple(a.shape)}"
    return type(a).__name__


def _as_uint8_batch(images, caller: str = "preprocess") -> list[torch.Tensor]:
    """Validate the input of :func:`preprocess` (or ``caller``); return uint8 ``(1, 3, H, W)`` tensors, one per
    image, or one ``(N, 3, H, W)`` (a channels-first view of a batch)."""
    expected = "a uint8 image (H, W, 3), a uint8 batch (N, H, W, 3) or a list of uint8 (H, W, 3) images"
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"{caller} expected {expected}; received an empty {type(images).__name__}")
        out = []
        for i, im in enumerate(images):
            if not isinstance(im, (np.ndarray, torch.Tensor)) or im.ndim != 3:
                raise ValueError(f"{caller} expected {expected}; item {i} of the list is {_describe(im)}")
            out.extend(_as_uint8_batch(im, caller))
        return out
    if not isinstance(images, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{caller} expected {expected}; received {_describe(images)}")
    if images.dtype not in (np.uint8, torch.uint8):
        raise TypeError(
            f"{caller} expected {expected}; received {_describe(images)}. Convert [0, 1] floats with "
            f"(x * 255).round().astype(np.uint8) first, or pass an already-normalized tensor to the model directly."
        )
    if images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"{caller} expected {expected} (channels last, RGB); received {_describe(images)}")
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    t = t.permute(2, 0, 1)[None] if t.ndim == 3 else t.permute(0, 3, 1, 2)
    return [t]


def center_crop_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Center-crop float images ``(N, C, H, W)`` to a square and resize them to ``(N, C, size, size)``.

    The square is the largest centered one (``min(H, W)`` on a side, the odd pixel cut at the end); the resize is
    bilinear (``align_corners=False``), anti-aliased when shrinking, and skipped when the side is already ``size``.
    Any value scale: :func:`preprocess` uses it on [0, 1], :func:`utils.data.load_photo` on 0..255."""
    h, w = x.shape[-2:]
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        x = x[..., top:top + side, left:left + side]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > size)
    return x


def _to_float(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> float32 ``(N, 3, H, W)``, ``pixel / 255``, on ``device`` (default: where it is).

    The one place pixels become floats. The memory layout of ``t`` is kept (a channels-last view stays one)."""
    if device is not None:
        t = t.to(device)
    return t.to(torch.float32) / 255.0


def uint8_to_float(images, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB images -> float32 ``(N, 3, H, W)`` in [0, 1] (``pixel / 255``), neither resized nor normalized.

    Args:
        images: one uint8 ``(H, W, 3)`` array, a uint8 batch ``(N, H, W, 3)`` or a list of uint8 ``(H, W, 3)``
            arrays of one size (NumPy or torch, as :func:`preprocess` takes them).
        device: where the result goes (default: where the input is; NumPy input lives on the CPU).

    Returns:
        float32 ``(N, 3, H, W)``. A batch array comes back as a channels-first *view* of its channels-last memory
        (not copied into contiguous memory), so reductions over it run in the same order as over the array.
    """
    parts = [_to_float(t, device) for t in _as_uint8_batch(images, "uint8_to_float")]
    return torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]


def normalize(pixels: torch.Tensor, card: ModelCard | None = None) -> torch.Tensor:
    """Pixels in [0, 1] ``(N, 3, H, W)`` -> the model's normalized input ``(pixels - mean) / std`` per channel.

    ``card`` is the model's :class:`ModelCard` (default: the bundled model's); anything with ``mean`` and ``std``
    sequences of three floats will do. The result has the dtype and device of ``pixels`` (float32 for integer
    input) and is differentiable with respect to it. :func:`preprocess` is ``uint8 -> [0, 1] -> resize ->
    normalize``; this is its last step, for images that are already floats (e.g. a parameterized image)."""
    dtype = pixels.dtype if pixels.is_floating_point() else torch.float32
    mean, std = _stats(_card(card), pixels.device, dtype)
    return (pixels - mean) / std


def preprocess(images, card: ModelCard | None = None, device: torch.device | str | None = None,
               size: int | None = None) -> torch.Tensor:
    """Turn uint8 RGB images into the normalized float32 input a model expects.

    Args:
        images: one uint8 ``(H, W, 3)`` array, a uint8 batch ``(N, H, W, 3)`` or a list of uint8 ``(H, W, 3)``
            arrays (sizes may differ). Torch uint8 tensors with the same layouts are accepted too.
        card: the model's :class:`ModelCard` (default: the bundled model's, ``model_card("shapes")``).
        device: where the result goes (default: where the input is; NumPy input lives on the CPU).
        size: the side of the result (default ``card.input_size``).

    Non-square images are center-cropped to a square; images not of ``size`` are resized (bilinear,
    anti-aliased when shrinking). Pixels are scaled to [0, 1] and normalized: ``(p / 255 - mean) / std``
    (:func:`uint8_to_float`, then :func:`normalize`, with the resize between).

    Returns:
        float32 tensor ``(N, 3, S, S)`` with ``S = size``, contiguous.
    """
    parts = _as_uint8_batch(images)
    card = _card(card)
    size = int(size or card.input_size)
    out = [center_crop_resize(_to_float(t, device), size) for t in parts]
    x = torch.cat(out, dim=0) if len(out) > 1 else out[0]
    return normalize(x, card).contiguous()


def deprocess(x: torch.Tensor, card: ModelCard | None = None) -> np.ndarray:
    """Inverse of :func:`preprocess` (without the resize): normalized ``(N, 3, H, W)`` -> uint8 ``(N, H, W, 3)``.

    A 3-D input ``(3, H, W)`` gives one ``(H, W, 3)`` image. Values are unnormalized with the card's mean/std,
    clamped to [0, 1] and rounded to the nearest of the 256 levels. Works on any device; returns a NumPy array.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"deprocess expected a torch.Tensor (N, 3, H, W) or (3, H, W); received {_describe(x)}")
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"deprocess expected a tensor (N, 3, H, W) or (3, H, W); received {_describe(x)}")
    card = _card(card)
    x = x.detach().to(torch.float32)
    mean, std = _stats(card, x.device)
    img = (x * std + mean).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    out = img.permute(0, 2, 3, 1).cpu().numpy()
    return out[0] if single else out


def jitter(x: torch.Tensor, ox: int, oy: int) -> torch.Tensor:
    """Circularly shift ``x`` by ``ox`` pixels along the width (last dim) and ``oy`` along the height.

    Pixels leaving one side come back on the other (``torch.roll``); :func:`unjitter` undoes it exactly."""
    return torch.roll(x, shifts=(int(oy), int(ox)), dims=(-2, -1))


def unjitter(x: torch.Tensor, ox: int, oy: int) -> torch.Tensor:
    """Inverse of :func:`jitter` with the same ``ox, oy``."""
    return torch.roll(x, shifts=(-int(oy), -int(ox)), dims=(-2, -1))


def random_shift(max_jitter: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """Two offsets drawn uniformly from ``[-max_jitter, max_jitter]`` (one ``torch.randint`` call of size 2, from
    ``generator``, default torch's global one): ``ox, oy = random_shift(4, g)``, then ``jitter(x, ox, oy)``.

    Draws even for ``max_jitter == 0`` (both offsets are then 0); callers that skip the jitter entirely skip the
    call (``random_shift(m, g) if m > 0 else (0, 0)``), and so leave the generator as it was."""
    ox, oy = torch.randint(-int(max_jitter), int(max_jitter) + 1, (2,), generator=generator).tolist()
    return int(ox), int(oy)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float64, device=None) -> torch.Tensor:
    """Normalized 1-D Gaussian with radius ``int(truncate * sigma + 0.5)``, exactly as ``scipy.ndimage`` builds it."""
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def _reflect_index(n: int, radius: int, device) -> torch.Tensor:
    """Indices of a length-``n`` axis padded by ``radius`` on both sides, with scipy's ``mode='reflect'``
    (``d c b a | a b c d | d c b a``, the edge sample repeated), valid for any radius (also > n)."""
    i = torch.arange(-radius, n + radius, device=device)
    period = 2 * n
    j = torch.remainder(i, period)
    return torch.where(j >= n, period - 1 - j, j)


def blur(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Gaussian blur of each channel of ``x`` ``(N, C, H, W)`` (or ``(C, H, W)``), same shape, dtype and device.

    Separable: one 1-D convolution along the height, one along the width (``conv2d`` with ``groups=C``).
    Borders follow ``scipy.ndimage.gaussian_filter(..., mode='reflect')``: the image is extended by mirroring
    *including* the edge sample (``c b a | a b c``; torch's ``'reflect'`` padding would skip it, that is scipy's
    ``'mirror'``). The extension repeats periodically, so kernels wider than the image are handled exactly.
    The kernel radius is ``int(truncate * sigma + 0.5)``, as in scipy. ``sigma <= 0`` returns a copy.
    Differentiable with respect to ``x``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"blur expected a torch.Tensor (N, C, H, W); received {_describe(x)}")
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"blur expected a tensor (N, C, H, W) or (C, H, W); received {_describe(x)}")
    if sigma <= 0:
        out = x.clone()
        return out[0] if single else out
    n, c, h, w = x.shape
    dtype = x.dtype if x.is_floating_point() else torch.float32
    k = gaussian_kernel1d(sigma, truncate, dtype=dtype, device=x.device)
    radius = (k.numel() - 1) // 2
    y = x.to(dtype)
    y = y.index_select(2, _reflect_index(h, radius, x.device))
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    y = y.index_select(3, _reflect_index(w, radius, x.device))
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return y[0] if single else y


def valid_range(card: ModelCard | None = None, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized values of pixel 0 and pixel 1 per channel: ``low = -mean/std``, ``high = (1 - mean)/std``.

    Each is a ``(1, 3, 1, 1)`` tensor on ``device`` (default CPU), ready to broadcast against ``(N, 3, H, W)``."""
    card = _card(card)
    mean, std = _stats(card, device, dtype)
    return (0.0 - mean) / std, (1.0 - mean) / std


def clamp_to_valid(x: torch.Tensor, card: ModelCard | None = None) -> torch.Tensor:
    """Clamp each channel of normalized images ``(N, 3, H, W)`` to the values real pixels can take (out-of-place).

    Use ``x.data.copy_(clamp_to_valid(x.data))`` to clamp a tensor that is being optimized in place."""
    return clamp_to_bounds(x, valid_range(card, device=x.device,
                                          dtype=x.dtype if x.is_floating_point() else torch.float32))


def clamp_to_bounds(x: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """``x`` (e.g. images ``(N, 3, H, W)``) clamped elementwise into ``bounds = (lo, hi)``, out of place.

    ``lo`` and ``hi`` are tensors broadcastable to ``x`` with ``lo <= hi`` (e.g. :func:`valid_range`'s two
    ``(1, 3, 1, 1)``); ``None`` returns ``x`` itself. Differentiable (the gradient passes where ``x`` is inside)."""
    if bounds is None:
        return x
    lo, hi = bounds
    return torch.maximum(torch.minimum(x, hi), lo)
