"""Figures the notebooks show: image grids, saliency maps and overlays, embedding scatter plots.

Every function returns the matplotlib ``Figure`` (and never calls ``plt.show()``), so notebooks display it and
tests can inspect or close it.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["show_images", "show_saliency", "overlay_saliency", "plot_embedding", "to_uint8_images"]


def to_uint8_images(images) -> list[np.ndarray]:
    """Normalize what the plotting functions accept to a list of uint8 ``(H, W, 3)`` or ``(H, W)`` arrays.

    Accepts uint8 arrays ``(H, W, 3)`` / ``(N, H, W, 3)`` / ``(H, W)``, float arrays in [0, 1] of those shapes, torch
    tensors ``(N, 3, H, W)`` / ``(3, H, W)`` / ``(N, 1, H, W)`` (uint8 or floats in [0, 1], i.e. already
    deprocessed) or a list of any of these. Floats are clipped to [0, 1].
    """
    if isinstance(images, (list, tuple)):
        out: list[np.ndarray] = []
        for im in images:
            out.extend(to_uint8_images(im))
        return out
    if isinstance(images, torch.Tensor):
        t = images.detach().cpu()
        if t.ndim == 2:
            arr = t.numpy()
        elif t.ndim == 3:
            arr = t.permute(1, 2, 0).numpy() if t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3) else t.numpy()
        elif t.ndim == 4:
            arr = t.permute(0, 2, 3, 1).numpy() if t.shape[1] in (1, 3) else t.numpy()
        else:
            raise ValueError(f"cannot show a tensor of shape {tuple(t.shape)}")
        return to_uint8_images(arr)
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        arr = np.rint(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    if arr.ndim == 2:
        return [arr]
    if arr.ndim == 3:
        if arr.shape[-1] == 1:
            return [arr[..., 0]]
        if arr.shape[-1] == 3:
            return [arr]
        return [a for a in arr]  # (N, H, W) grayscale batch
    if arr.ndim == 4:
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
        return [a for a in arr]
    raise ValueError(f"cannot show an array of shape {arr.shape}")


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    ncols = int(ncols) if ncols else min(n, 8)
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def show_images(images, titles: Sequence[str] | None = None, ncols: int | None = None,
                figsize: tuple[float, float] | None = None) -> matplotlib.figure.Figure:
    """A grid of images (see :func:`to_uint8_images` for accepted inputs) with optional titles; returns the Figure."""
    ims = to_uint8_images(images)
    if not ims:
        raise ValueError("show_images got no images")
    if titles is not None and len(titles) != len(ims):
        raise ValueError(f"got {len(ims)} images but {len(titles)} titles")
    nrows, ncols = _grid(len(ims), ncols)
    figsize = figsize or (2.0 * ncols, 2.0 * nrows + (0.3 * nrows if titles is not None else 0.0))
    # JupyterLab shrinks a wide figure to the page's width (about 10 inches at 100 dpi): grow the titles with the
    # figure so they still read at about 9 pt there
    fontsize = 9.0 * max(1.0, figsize[0] / 10.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(ims):
            im = ims[i]
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=fontsize)
    fig.tight_layout()
    return fig


def _saliency_np(saliency) -> np.ndarray:
    s = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency)
    return s.astype(np.float64)


def _normalize01(s: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(s)), float(np.max(s))
    return np.zeros_like(s) if hi - lo <= 0 else (s - lo) / (hi - lo)


def overlay_saliency(image: np.ndarray, saliency, alpha: float = 0.5, cmap: str = "hot") -> np.ndarray:
    """Blend a saliency map ``(H, W)`` (any scale; min-max normalized here) over a uint8 image ``(H, W, 3)``.

    Returns uint8 ``(H, W, 3)``: ``(1 - alpha * s) * image + alpha * s * colormap(s)`` with ``s`` in [0, 1], so
    pixels with no saliency keep the image's colours. If sizes differ the saliency map is resized to the image."""
    img = to_uint8_images(image)[0]
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    s = _saliency_np(saliency)
    if s.ndim != 2:
        raise ValueError(f"saliency must be (H, W); got shape {s.shape}")
    if s.shape != img.shape[:2]:
        t = torch.from_numpy(s)[None, None]
        s = torch.nn.functional.interpolate(t, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    s = _normalize01(s)
    heat = matplotlib.colormaps[cmap](s)[..., :3]
    w = (float(alpha) * s)[..., None]
    out = (1.0 - w) * (img / 255.0) + w * heat
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def show_saliency(images, saliency, titles: Sequence[str] | None = None, cmap: str = "hot",
                  alpha: float = 0.6) -> matplotlib.figure.Figure:
    """Three rows per batch: the images, their saliency maps (heat maps) and the overlay of both.

    ``images``: anything :func:`to_uint8_images` accepts (N images); ``saliency``: ``(N, H, W)`` array or tensor."""
    ims = to_uint8_images(images)
    sal = _saliency_np(saliency)
    if sal.ndim == 2:
        sal = sal[None]
    if sal.ndim != 3 or sal.shape[0] != len(ims):
        raise ValueError(f"expected saliency (N, H, W) with N = {len(ims)} images; got shape {sal.shape}")
    if titles is not None and len(titles) != len(ims):
        raise ValueError(f"got {len(ims)} images but {len(titles)} titles")
    n = len(ims)
    fig, axes = plt.subplots(3, n, figsize=(2.2 * n, 6.9), squeeze=False)
    for i in range(n):
        im = ims[i]
        axes[0, i].imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=255)
        axes[1, i].imshow(sal[i], cmap=cmap)
        axes[2, i].imshow(overlay_saliency(im, sal[i], alpha=alpha, cmap=cmap))
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=9)
        for r in range(3):
            axes[r, i].set_xticks([])
            axes[r, i].set_yticks([])
    for r, name in enumerate(("image", "saliency", "overlay")):
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    return fig


def plot_embedding(points, labels, ax: matplotlib.axes.Axes | None = None, title: str | None = None,
                   class_names: Sequence[str] | None = None) -> matplotlib.figure.Figure:
    """Scatter plot of 2-D points ``(N, 2)`` coloured by integer ``labels`` ``(N,)``, with a legend.

    Draws into ``ax`` if given (and returns its figure), else into a new figure. ``class_names[k]`` names label k.
    """
    p = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must be (N, 2); got shape {p.shape} (project to 2-D first, e.g. PCA or t-SNE)")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must be (N,) = ({p.shape[0]},); got shape {y.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    else:
        fig = ax.figure
    classes = np.unique(y)
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, c in enumerate(classes):
        sel = y == c
        name = class_names[int(c)] if class_names is not None else str(c)
        ax.scatter(p[sel, 0], p[sel, 1], s=10, alpha=0.8, color=cmap(i % cmap.N), label=name)
    if len(classes) <= 20:
        ax.legend(fontsize=8, markerscale=1.5, loc="best", frameon=True)
    if title:
        ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    return fig
