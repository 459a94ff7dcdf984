"""DeepDream (Mordvintsev, Olah and Tyka, 2015): amplify whatever a layer already sees in an image.

Gradient ascent on the image for ``1/2 ||A||^2``, the squared norm of the activations ``A`` of one layer: each
step strengthens the features that are already active, so patterns the layer detects appear everywhere. The
step is divided by the mean absolute gradient, ``x <- x + learning_rate * g / mean(|g|)``, which keeps its size
the same at every layer and octave. Around each step the image is shifted by a random jitter (and back), which
spreads the patterns, and clamped to the valid pixel range after it. Octaves run the ascent from a small copy of
the image up to full size, so that patterns grow at several scales.

Graded: :func:`deepdream_step`. :func:`deepdream` (jitter, clamping, octaves) is provided code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .feature_inversion import layer_features

__all__ = ["deepdream_step"]

#: Guard added to the mean absolute gradient before dividing.
GRAD_EPS = 1e-8


def deepdream_step(img: torch.Tensor, model: nn.Module, layer_index: int, learning_rate: float) -> None:
    """One normalized ascent step on ``1/2 * sum(A^2)``, ``A = model.features[:layer_index + 1](img)``, in place.

    Args:
        img: ``(N, C, H, W)`` leaf tensor with ``requires_grad=True``, in the model's input space. Updated in
            place: ``img += learning_rate * g / (mean(|g|) + GRAD_EPS)``, ``g`` the gradient (taken with
            ``torch.autograd.grad``, so ``img.grad`` is left as it was).
        model: model with a ``features`` sequence.
        layer_index: index into ``model.features`` (negative counts from the end).
        learning_rate: mean absolute change of a pixel value per step.
    """
    activations = layer_features(img, model, layer_index)
    (g,) = torch.autograd.grad(0.5 * activations.pow(2).sum(), img)
    with torch.no_grad():
        img.add_(g, alpha=learning_rate / (g.abs().mean().item() + GRAD_EPS))


def deepdream(img: torch.Tensor, model: nn.Module, layer_index: int, card=None, *, octaves: int = 3,
              octave_scale: float = 1.4, iterations: int = 10, learning_rate: float = 0.02, max_jitter: int = 4,
              generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """DeepDream of ``img`` ``(1, 3, H, W)`` at layer ``layer_index`` over ``octaves`` scales.

    The image is shrunk by ``octave_scale`` per octave; from the smallest up, ``iterations`` jittered steps run at
    each scale, and the detail they added is carried (resized) to the next. Returns ``(1, 3, H, W)``, detached.
    """
    from tqdm.auto import tqdm

    from utils.image import clamp_to_valid, jitter, unjitter

    h, w = img.shape[-2:]
    sizes = [(max(1, round(h / octave_scale ** k)), max(1, round(w / octave_scale ** k)))
             for k in reversed(range(octaves))]
    base = img.detach()
    detail = torch.zeros_like(F.interpolate(base, size=sizes[0], mode="bilinear", align_corners=False))
    bar = tqdm(total=octaves * iterations, desc="deepdream", disable=not progress, leave=False)
    for size in sizes:
        octave_base = F.interpolate(base, size=size, mode="bilinear", align_corners=False)
        detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        x = (octave_base + detail).requires_grad_(True)
        for _ in range(iterations):
            if max_jitter > 0:
                ox, oy = torch.randint(-max_jitter, max_jitter + 1, (2,), generator=generator).tolist()
            else:
                ox = oy = 0
            with torch.no_grad():
                x.copy_(jitter(x, ox, oy))
            deepdream_step(x, model, layer_index, learning_rate)
            with torch.no_grad():
                x.copy_(clamp_to_valid(unjitter(x, ox, oy), card))
            bar.update(1)
        detail = x.detach() - octave_base
    bar.close()
    return (octave_base + detail).detach()
