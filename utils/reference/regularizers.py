"""Yosinski et al. (2015), "Understanding Neural Networks Through Deep Visualization": three explicit image
regularizers applied between ascent steps, instead of (or besides) the L2 penalty.

All three act on a batch ``(N, C, H, W)`` in the model's normalized input space, where 0 is the dataset's mean
colour, and return a *new* tensor (the input is not modified).

Percentile convention (both pruning functions): for each image separately, ``t = torch.quantile(v, percentile /
100)`` over that image's ``H * W`` per-pixel values ``v`` (linear interpolation, NumPy's default
``np.percentile``), and a pixel is zeroed in every channel when ``v < t`` (strict). ``percentile = 0`` zeroes
nothing.
"""
from __future__ import annotations

import torch

__all__ = ["blur_image", "zero_small_norm_pixels", "zero_small_contribution_pixels"]


def blur_image(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of every channel of every image with standard deviation ``sigma`` pixels.

    Exactly :func:`utils.image.blur`, i.e. ``scipy.ndimage.gaussian_filter(mode="reflect", truncate=4)`` on each
    channel; ``sigma <= 0`` returns a copy. Removes the high frequencies that ascent alone builds up.

    Args:
        img: ``(N, C, H, W)``.
        sigma: standard deviation in pixels.
    Returns:
        ``(N, C, H, W)`` new tensor.
    """
    from utils.image import blur

    return blur(img, sigma)


def _zero_below_percentile(img: torch.Tensor, per_pixel: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero (all channels of) the pixels whose ``per_pixel`` value ``(N, H, W)`` is below the image's percentile."""
    n = per_pixel.shape[0]
    flat = per_pixel.reshape(n, -1)
    q = torch.tensor(float(percentile) / 100.0, dtype=flat.dtype, device=flat.device)
    threshold = torch.quantile(flat, q, dim=1, keepdim=True)              # (N, 1)
    keep = (flat >= threshold).reshape(per_pixel.shape)                    # strict "<" zeroes
    return img * keep.unsqueeze(1).to(img.dtype)


def zero_small_norm_pixels(img: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero the pixels whose colour vector is short.

    Per image, ``v[h, w] = ||img[n, :, h, w]||_2`` (norm over channels); pixels with ``v`` below the image's
    ``percentile``-th percentile (see the module docstring) are set to 0 in every channel.

    Args:
        img: ``(N, C, H, W)``.
        percentile: in ``[0, 100]``.
    Returns:
        ``(N, C, H, W)`` new tensor.
    """
    return _zero_below_percentile(img, img.norm(dim=1), percentile)


def zero_small_contribution_pixels(img: torch.Tensor, grad: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero the pixels that contribute little to the objective.

    Per image, ``v[h, w] = |sum_c img[n, c, h, w] * grad[n, c, h, w]|``: to first order, the change of the objective
    if that pixel were set to 0 (Yosinski et al.'s "absolute benefit"). Pixels with ``v`` below the image's
    ``percentile``-th percentile are set to 0 in every channel.

    Args:
        img: ``(N, C, H, W)``.
        grad: ``(N, C, H, W)`` gradient of the objective with respect to ``img``.
        percentile: in ``[0, 100]``.
    Returns:
        ``(N, C, H, W)`` new tensor.
    """
    return _zero_below_percentile(img, (img * grad).sum(dim=1).abs(), percentile)
