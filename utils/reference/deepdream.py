"""DeepDream (Mordvintsev, Olah and Tyka, 2015): amplify whatever a layer already sees in an image.

Gradient ascent on the image for ``1/2 ||A||^2``, the squared norm of the activations ``A`` of one layer: each
step strengthens the features that are already active, so patterns the layer detects appear everywhere. The
gradient of ``1/2 ||A||^2`` with respect to ``A`` is ``A`` itself, so backpropagating ``A`` from the layer
("dx = x", ``A.backward(A)``) is the same thing. The step is divided by the mean absolute gradient,
``x <- x + learning_rate * g / mean(|g|)``, which keeps its size the same at every layer and octave. Around each
step the image is shifted by a random jitter (and back), which spreads the patterns, and clamped to the valid pixel
range after it. Octaves run the ascent from a small copy of the image up to full size, carrying the detail the
ascent added from one scale to the next, so that patterns grow at several scales.

Guided dreaming (google/deepdream's ``objective_guide``) replaces the gradient at the layer: at every position it is
the guide image's feature vector whose dot product with the image's feature vector there is the largest.

Graded: :func:`deepdream_step`, :func:`deepdream_octaves`, :func:`guided_gradient`. Provided code (the notebook
ships equivalent, commented versions): :func:`octave_sizes`, :func:`resize`, :func:`jittered` and :func:`deepdream` (jitter,
clamping, octaves, progress bar).
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from utils.image import clamp_to_bounds, clamp_to_valid, jitter, random_shift, unjitter
from utils.models import layer_output

__all__ = ["deepdream_step", "deepdream_octaves", "guided_gradient"]

#: Guard added to the mean absolute gradient before dividing.
GRAD_EPS = 1e-8


def deepdream_step(img: torch.Tensor, model: nn.Module, layer_index: int, learning_rate: float) -> None:
    """One normalized ascent step on ``1/2 * sum(A^2)``, ``A = layer_output(img, model, layer_index)``, in place.

    (:func:`utils.models.layer_output` is ``model.features[:layer_index + 1](img)``, negative indices from the end.)

    Args:
        img: ``(N, C, H, W)`` leaf tensor with ``requires_grad=True``, in the model's input space. Updated in
            place: ``img += learning_rate * g / (mean(|g|) + GRAD_EPS)``, ``g`` the gradient (taken with
            ``torch.autograd.grad``, so ``img.grad`` is left as it was). One mean over the whole tensor.
        model: model with a ``features`` sequence.
        layer_index: index into ``model.features`` (negative counts from the end).
        learning_rate: mean absolute change of a pixel value per step.
    """
    activations = layer_output(img, model, layer_index)
    (g,) = torch.autograd.grad(0.5 * activations.pow(2).sum(), img)
    with torch.no_grad():
        img.add_(g, alpha=learning_rate / (g.abs().mean().item() + GRAD_EPS))


# ----------------------------------------------------------------------------------- provided helpers (notebook)


def octave_sizes(height: int, width: int, num_octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """Sizes of the octaves, from the full size down: entry ``k`` is ``(height, width)`` shrunk ``k`` times by
    ``octave_scale``, rounded to the nearest pixel (at least 1)."""
    return [(max(1, round(height / octave_scale ** k)), max(1, round(width / octave_scale ** k)))
            for k in range(num_octaves)]


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` to ``size = (h, w)`` (anti-aliased when shrinking)."""
    return F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False, antialias=True)


class _RandomShift(nn.Module):
    """Circularly shift the input by a random offset in ``[-max_jitter, max_jitter]`` (new offset at every call)."""

    def __init__(self, max_jitter: int, generator: torch.Generator | None = None):
        super().__init__()
        self.generator, self.max_jitter = generator, int(max_jitter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> the same, shifted by a fresh :func:`utils.image.random_shift` (drawn also for 0)."""
        return jitter(x, *random_shift(self.max_jitter, self.generator))


def jittered(model: nn.Module, max_jitter: int, generator: torch.Generator | None = None) -> nn.Module:
    """The same network with a random circular shift of its input in front of ``features[0]``.

    An ascent step through it is exactly "shift the image, step, shift back" (the gradient of ``f(roll(x))`` is the
    gradient of ``f`` rolled back), and ``features[k]`` still ends at the same layer. (The notebook ships an
    equivalent, commented version; ``tests/test_deepdream.py`` checks that both give the same results.)"""
    first, *rest = list(model.features)
    out = nn.Module()
    out.features = nn.Sequential(nn.Sequential(_RandomShift(max_jitter, generator), first), *rest)
    return out


# ---------------------------------------------------------------------------------------------------- graded


def deepdream_octaves(img: torch.Tensor, model: nn.Module, layer_index: int, num_octaves: int = 3,
                      octave_scale: float = 1.4, num_steps: int = 10, learning_rate: float = 0.02,
                      bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                      objective: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """DeepDream over ``num_octaves`` scales, from the smallest up, with the detail carried between scales.

    Octave ``k`` works at ``octave_sizes(H, W, num_octaves, octave_scale)[k]``; its base is ``resize(img, size)``.
    Starting from the smallest octave with zero detail, at each scale: ``x = base + resize(detail, size)``, then
    ``num_steps`` normalized ascent steps on ``x`` (as :func:`deepdream_step`, clamped into ``bounds`` after every
    step when given), then ``detail = x - base``. Returns the last ``x``.

    Args:
        img: ``(N, 3, H, W)``, not modified.
        model: model with a ``features`` sequence.
        layer_index: index into ``model.features``.
        num_octaves, octave_scale: number of scales and the shrink factor between neighbours.
        num_steps: ascent steps per octave.
        learning_rate: mean absolute change of a value per step.
        bounds: ``None`` or ``(lo, hi)`` broadcastable to ``img``.
        objective: ``None`` (the gradient at the layer is ``A``: ascent on ``1/2 ||A||^2``) or a function mapping the
            (detached) activations ``A`` to the gradient to backpropagate from the layer (e.g. guided dreaming).
    Returns:
        ``(N, 3, H, W)``, detached.
    """
    base_img = img.detach()
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(resize(base_img, sizes[-1]))
    x = base_img
    for size in reversed(sizes):
        base = resize(base_img, size)
        x = (base + resize(detail, size)).requires_grad_(True)
        for _ in range(num_steps):
            activations = layer_output(x, model, layer_index)
            target = activations.detach() if objective is None else objective(activations.detach())
            (g,) = torch.autograd.grad(activations, x, grad_outputs=target)
            with torch.no_grad():
                x.add_(g, alpha=learning_rate / (g.abs().mean().item() + GRAD_EPS))
                if bounds is not None:
                    x.copy_(clamp_to_bounds(x, bounds))
        detail = x.detach() - base
    return x.detach()


def guided_gradient(activations: torch.Tensor, guide_features: torch.Tensor) -> torch.Tensor:
    """The gradient at the layer for guided dreaming (google/deepdream's ``objective_guide``).

    At every position ``p`` of every image ``n``, with ``a = activations[n, :, p]`` (a ``C``-vector), the result is
    the guide's feature vector ``guide_features[0, :, q*]`` with ``q* = argmax_q a . guide_features[0, :, q]`` (the
    first such ``q`` on ties).

    Args:
        activations: ``(N, C, H, W)`` the image's activations at the layer.
        guide_features: ``(1, C, h, w)`` the guide image's activations at the same layer (any ``h, w``).
    Returns:
        ``(N, C, H, W)``, same dtype as ``activations``.
    """
    n, c, h, w = activations.shape
    x = activations.detach().reshape(n, c, h * w)                     # (N, C, P)
    y = guide_features.detach().reshape(c, -1).to(x.dtype)            # (C, Q)
    dots = torch.einsum("ncp,cq->npq", x, y)                          # (N, P, Q)
    best = dots.argmax(dim=2)                                         # (N, P)
    return y[:, best].permute(1, 0, 2).reshape(n, c, h, w).contiguous()


# ------------------------------------------------------------------------------------------- provided loop


def deepdream(img: torch.Tensor, model: nn.Module, layer_index: int, card=None, *, octaves: int = 3,
              octave_scale: float = 1.4, iterations: int = 10, learning_rate: float = 0.02, max_jitter: int = 4,
              generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """DeepDream of ``img`` ``(1, 3, H, W)`` at layer ``layer_index`` over ``octaves`` scales.

    The image is shrunk by ``octave_scale`` per octave; from the smallest up, ``iterations`` jittered steps run at
    each scale (each clamped to the valid range of ``card``), and the detail they added is carried (resized) to the
    next. Returns ``(1, 3, H, W)``, detached. Without jitter it is ``deepdream_octaves`` with the card's bounds.
    """
    from tqdm.auto import tqdm

    sizes = octave_sizes(img.shape[-2], img.shape[-1], octaves, octave_scale)
    base = img.detach()
    detail = torch.zeros_like(resize(base, sizes[-1]))
    bar = tqdm(total=octaves * iterations, desc="deepdream", disable=not progress, leave=False)
    for size in reversed(sizes):
        octave_base = resize(base, size)
        x = (octave_base + resize(detail, size)).requires_grad_(True)
        for _ in range(iterations):
            ox, oy = random_shift(max_jitter, generator) if max_jitter > 0 else (0, 0)
            with torch.no_grad():
                x.copy_(jitter(x, ox, oy))
            deepdream_step(x, model, layer_index, learning_rate)
            with torch.no_grad():
                x.copy_(clamp_to_valid(unjitter(x, ox, oy), card))
            bar.update(1)
        detail = x.detach() - octave_base
    bar.close()
    return (octave_base + detail).detach()


# ------------------------------------------------------------------------------ known mistakes (grader's hints)
# Typical wrong answers, named by the grader when a student's output matches one (``Question.mistakes`` in
# ``autograder/questions/03_deepdream.py``). Not in ``__all__``: these are not reference answers.


def _mistaken_step(img, model, layer_index, learning_rate, *, normalize=None, objective=None, stop=None):
    activations = model.features[:layer_index + 1 if stop is None else stop(layer_index)](img)
    loss = 0.5 * activations.pow(2).sum() if objective is None else objective(activations)
    (g,) = torch.autograd.grad(loss, img)
    with torch.no_grad():
        img.add_(learning_rate * (g / (g.abs().mean() + GRAD_EPS) if normalize is None else normalize(g)))


def mistake_step_l2_norm(img, model, layer_index, learning_rate):
    _mistaken_step(img, model, layer_index, learning_rate, normalize=lambda g: g / g.norm())


def mistake_step_max_norm(img, model, layer_index, learning_rate):
    _mistaken_step(img, model, layer_index, learning_rate, normalize=lambda g: g / g.abs().max())


def mistake_step_unnormalized(img, model, layer_index, learning_rate):
    _mistaken_step(img, model, layer_index, learning_rate, normalize=lambda g: g)


def mistake_step_sum_of_activations(img, model, layer_index, learning_rate):
    _mistaken_step(img, model, layer_index, learning_rate, objective=lambda a: a.sum())


def mistake_step_layer_excluded(img, model, layer_index, learning_rate):
    _mistaken_step(img, model, layer_index, learning_rate, stop=lambda k: k)


def mistake_step_per_image_mean(img, model, layer_index, learning_rate):
    _mistaken_step(img, model, layer_index, learning_rate,
                   normalize=lambda g: g / g.abs().flatten(1).mean(dim=1).view(-1, *[1] * (g.dim() - 1)))


def mistake_step_grad_accumulates(img, model, layer_index, learning_rate):
    activations = model.features[:layer_index + 1](img)
    activations.backward(activations.detach())
    with torch.no_grad():
        img.add_(learning_rate * img.grad / img.grad.abs().mean())


def _mistaken_octaves(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10, learning_rate=0.02,
                      bounds=None, objective=None, *, order=reversed, carry="detail", bases="direct"):
    """:func:`deepdream_octaves`' signature, one octave at a time, with one thing done wrong: the octaves visited
    in ``order`` of the sizes, ``carry`` (``"detail"``, ``"none"``: nothing carried, ``"image"``: the whole image
    carried) or ``bases`` (``"direct"``: resized from the image, ``"previous"``: from the previous octave's)."""
    base_img = img.detach()
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    shrunk = [base_img]
    for size in sizes[1:]:
        shrunk.append(resize(shrunk[-1], size))
    first = list(order(sizes))[0]
    detail = torch.zeros_like(resize(base_img, first))
    x = resize(base_img, first)
    for size in order(sizes):
        base = resize(base_img, size) if bases == "direct" else shrunk[sizes.index(size)]
        start = {"detail": base + resize(detail, size), "none": base, "image": resize(x, size)}[carry]
        x = deepdream_octaves(start, model, layer_index, 1, octave_scale, num_steps, learning_rate, bounds)
        detail = x - base
    return x


mistake_octaves_detail_not_carried = functools.partial(_mistaken_octaves, carry="none")
mistake_octaves_image_carried = functools.partial(_mistaken_octaves, carry="image")
mistake_octaves_shrunk_from_previous = functools.partial(_mistaken_octaves, bases="previous")


def mistake_octaves_large_to_small(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                                   learning_rate=0.02, bounds=None, objective=None):
    """Large to small, the detail then put back on the full-size image (the right shape, the wrong order)."""
    small = _mistaken_octaves(img, model, layer_index, num_octaves, octave_scale, num_steps, learning_rate, bounds,
                              order=list)
    base = resize(img.detach(), small.shape[-2:])
    return img.detach() + resize(small - base, img.shape[-2:])


def _guide_pick(activations, guide_features, best):
    n, c, h, w = activations.shape
    y = guide_features.detach().reshape(c, -1).to(activations.dtype)
    return y[:, best].permute(1, 0, 2).reshape(n, c, h, w).contiguous()


def _guide_dots(activations, guide_features):
    c = activations.shape[1]
    return torch.einsum("ncp,cq->npq", activations.detach().flatten(2),
                        guide_features.detach().reshape(c, -1).to(activations.dtype))


def mistake_guide_argmin(activations, guide_features):
    return _guide_pick(activations, guide_features, _guide_dots(activations, guide_features).argmin(dim=2))


def mistake_guide_mean(activations, guide_features):
    c = activations.shape[1]
    mean = guide_features.detach().reshape(c, -1).mean(dim=1).to(activations.dtype).view(1, c, 1, 1)
    return mean.expand_as(activations).contiguous()


def mistake_guide_activations(activations, guide_features):
    return activations.detach().clone()


def mistake_guide_nearest(activations, guide_features):
    n, c = activations.shape[:2]
    x = activations.detach().flatten(2).transpose(1, 2)
    y = guide_features.detach().reshape(c, -1).t().to(activations.dtype).expand(n, -1, -1)
    return _guide_pick(activations, guide_features, torch.cdist(x, y).argmin(dim=2))
