"""Class visualization by gradient ascent on the image (Simonyan et al. 2014; Yosinski et al. 2015).

We look for an image ``I`` that the model scores highly as class ``y``:

    I* = argmax_I  s_y(I) - l2_reg * ||I||_2^2

with ``s_y`` the raw (pre-softmax) score. One step of normalized gradient ascent is
``I <- I + learning_rate * g / ||g||_2`` with ``g`` the gradient of the objective at ``I``. Dividing by the norm
makes every step move the image by exactly ``learning_rate`` (in L2), whatever the scale of the score.

The same step works for any unit of the network: :func:`neuron_visualization_update_step` climbs the mean
activation of one channel of ``model.features[:layer_index + 1]``.

Graded: :func:`class_visualization_update_step`, :func:`neuron_visualization_update_step`. The drivers
(:func:`create_class_visualization`, :func:`create_yosinski_visualization`, :func:`create_neuron_visualization`)
are provided code in the notebook; they live here so tests and the instructor can run them.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from utils.image import blur, clamp_to_valid, jitter, random_shift, unjitter
from utils.models import layer_output

__all__ = ["class_visualization_update_step", "neuron_visualization_update_step"]

#: Guard added to the gradient norm before dividing (only matters if the gradient is exactly zero).
NORM_EPS = 1e-12


def _normalized_ascent_(img: torch.Tensor, objective: torch.Tensor, learning_rate: float) -> torch.Tensor:
    """``img += learning_rate * g / (||g||_2 + NORM_EPS)`` in place, ``g = d objective / d img``; returns ``g``.

    ``torch.autograd.grad`` returns the gradient without touching ``img.grad``, so nothing accumulates across
    calls."""
    (g,) = torch.autograd.grad(objective, img)
    with torch.no_grad():
        img.add_(g, alpha=learning_rate / (g.norm().item() + NORM_EPS))
    return g


def class_visualization_update_step(img: torch.Tensor, model: nn.Module, target_y: int, l2_reg: float,
                                    learning_rate: float) -> None:
    """One normalized gradient-ascent step on ``s_y(img) - l2_reg * ||img||_2^2``, applied to ``img`` in place.

    Args:
        img: ``(1, C, H, W)`` leaf tensor with ``requires_grad=True``, in the model's input space. Updated in place;
            ``img.grad`` is left as it was (the gradient is taken with ``torch.autograd.grad``).
        model: classifier returning raw scores ``(1, K)``.
        target_y: class index whose raw score is increased.
        l2_reg: weight of the squared L2 norm penalty (sum over all entries of ``img``).
        learning_rate: L2 length of the step.

    Returns:
        None (the result is ``img`` itself).
    """
    score = model(img)[0, target_y]
    objective = score - l2_reg * img.pow(2).sum()
    _normalized_ascent_(img, objective, learning_rate)


def neuron_visualization_update_step(img: torch.Tensor, model: nn.Module, layer_index: int, channel: int,
                                     l2_reg: float, learning_rate: float) -> None:
    """One normalized ascent step on ``mean_{h,w} A[0, channel, h, w] - l2_reg * ||img||_2^2``, in place.

    ``A = layer_output(img, model, layer_index)``, i.e. ``model.features[:layer_index + 1](img)``, is the output of
    layer ``layer_index`` of ``model.features`` (counting from 0, the layer itself included). Averaging over
    positions visualizes the channel: the same feature detector applied everywhere (the lecture's "1.0 for the
    neuron of interest", spread evenly over all positions of that channel).

    Args:
        img: ``(1, C, H, W)`` leaf tensor with ``requires_grad=True``; updated in place (``img.grad`` untouched).
        model: any model with a ``features`` ``nn.Sequential``.
        layer_index: index into ``model.features``; negative indices count from the end as in Python.
        channel: channel of that layer's output.
        l2_reg, learning_rate: as in :func:`class_visualization_update_step`.
    """
    activation = layer_output(img, model, layer_index)[0, channel].mean()
    objective = activation - l2_reg * img.pow(2).sum()
    _normalized_ascent_(img, objective, learning_rate)


# --------------------------------------------------------------------------------------------------------------
# Drivers (provided in the notebook, not graded)
# --------------------------------------------------------------------------------------------------------------

def optimize_image(step: Callable[[torch.Tensor], None], card, *, init: torch.Tensor, num_iterations: int,
                   max_jitter: int = 4, blur_every: int = 10, blur_sigma: float = 0.5,
                   generator: torch.Generator | None = None, progress: bool = True,
                   desc: str = "ascent") -> torch.Tensor:
    """Generic loop: jitter, ``step(img)`` (one in-place ascent step), undo the jitter, clamp to the valid range,
    blur every ``blur_every`` iterations. Returns the final ``(1, C, H, W)`` image (detached)."""
    from tqdm.auto import tqdm

    img = init.detach().clone().requires_grad_(True)
    for t in tqdm(range(num_iterations), desc=desc, disable=not progress, leave=False):
        ox, oy = random_shift(max_jitter, generator) if max_jitter > 0 else (0, 0)
        with torch.no_grad():
            img.copy_(jitter(img, ox, oy))
        step(img)
        with torch.no_grad():
            img.copy_(unjitter(img, ox, oy))
            img.copy_(clamp_to_valid(img, card))
            if blur_every > 0 and (t + 1) % blur_every == 0 and t + 1 < num_iterations:
                img.copy_(blur(img, blur_sigma))
    return img.detach()


def _init_image(card, generator, device, init):
    if init is None:
        size = card.input_size
        init = 0.1 * torch.randn(1, 3, size, size, generator=generator)
    return init.to(device)


def create_class_visualization(target_y: int, model: nn.Module, card, *, num_iterations: int = 100,
                               l2_reg: float = 1e-3, learning_rate: float = 10.0, max_jitter: int = 4,
                               blur_every: int = 10, blur_sigma: float = 0.5, init: torch.Tensor | None = None,
                               update_step: Callable | None = None, generator: torch.Generator | None = None,
                               progress: bool = True) -> torch.Tensor:
    """The plain scheme: normalized ascent on ``s_y - l2_reg ||I||^2`` with jitter, periodic blur and clamping.

    ``init`` defaults to small noise (std 0.1 in the normalized space) drawn from ``generator``;
    ``update_step`` defaults to :func:`class_visualization_update_step` (the notebook passes the student's)."""
    update_step = update_step or class_visualization_update_step
    init = _init_image(card, generator, next(model.parameters()).device, init)

    def step(img):
        update_step(img, model, target_y, l2_reg, learning_rate)

    return optimize_image(step, card, init=init, num_iterations=num_iterations, max_jitter=max_jitter,
                          blur_every=blur_every, blur_sigma=blur_sigma, generator=generator, progress=progress,
                          desc=f"class {target_y}")


def create_neuron_visualization(model: nn.Module, layer_index: int, channel: int, card, *,
                                num_iterations: int = 60, l2_reg: float = 1e-3, learning_rate: float = 10.0,
                                max_jitter: int = 2, blur_every: int = 10, blur_sigma: float = 0.5,
                                init: torch.Tensor | None = None, update_step: Callable | None = None,
                                generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """The plain scheme for one channel of ``model.features[:layer_index + 1]``; ``update_step`` defaults to
    :func:`neuron_visualization_update_step`."""
    update_step = update_step or neuron_visualization_update_step
    init = _init_image(card, generator, next(model.parameters()).device, init)

    def step(img):
        update_step(img, model, layer_index, channel, l2_reg, learning_rate)

    return optimize_image(step, card, init=init, num_iterations=num_iterations, max_jitter=max_jitter,
                          blur_every=blur_every, blur_sigma=blur_sigma, generator=generator, progress=progress,
                          desc=f"layer {layer_index} channel {channel}")


def create_yosinski_visualization(target_y: int, model: nn.Module, card, *, num_iterations: int = 100,
                                  learning_rate: float = 10.0, decay: float = 0.01, blur_every: int = 4,
                                  blur_sigma: float = 0.5, norm_percentile: float = 0.0,
                                  contribution_percentile: float = 0.0, max_jitter: int = 4,
                                  init: torch.Tensor | None = None, regularizers: dict | None = None,
                                  generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """Yosinski et al.'s explicit scheme: every iteration, a normalized ascent step on the raw score ``s_y`` alone
    (no L2 term in the objective), then

    1. decay: ``I <- (1 - decay) I`` (the L2 penalty applied as weight decay),
    2. every ``blur_every`` iterations a Gaussian blur of width ``blur_sigma``,
    3. zero the pixels of small norm (``norm_percentile``),
    4. zero the pixels of small contribution ``|sum_c I * g|`` (``contribution_percentile``, ``g`` this
       iteration's gradient),

    and, as in the plain scheme, random jitter and clamping to the valid range. ``regularizers`` may replace the
    three functions (keys ``"blur_image"``, ``"zero_small_norm_pixels"``, ``"zero_small_contribution_pixels"``);
    the notebook passes the student's."""
    from tqdm.auto import tqdm

    from .regularizers import blur_image, zero_small_contribution_pixels, zero_small_norm_pixels

    fns = {"blur_image": blur_image, "zero_small_norm_pixels": zero_small_norm_pixels,
           "zero_small_contribution_pixels": zero_small_contribution_pixels, **(regularizers or {})}
    init = _init_image(card, generator, next(model.parameters()).device, init)
    img = init.detach().clone().requires_grad_(True)
    for t in tqdm(range(num_iterations), desc=f"class {target_y} (Yosinski)", disable=not progress, leave=False):
        ox, oy = random_shift(max_jitter, generator) if max_jitter > 0 else (0, 0)
        with torch.no_grad():
            img.copy_(jitter(img, ox, oy))
        g = _normalized_ascent_(img, model(img)[0, target_y], learning_rate)
        with torch.no_grad():
            img.mul_(1.0 - decay)
            if blur_every > 0 and (t + 1) % blur_every == 0 and t + 1 < num_iterations:
                img.copy_(fns["blur_image"](img, blur_sigma))
            if norm_percentile > 0:
                img.copy_(fns["zero_small_norm_pixels"](img, norm_percentile))
            if contribution_percentile > 0:
                img.copy_(fns["zero_small_contribution_pixels"](img, g, contribution_percentile))
            img.copy_(unjitter(img, ox, oy))
            img.copy_(clamp_to_valid(img, card))
    return img.detach()


# ------------------------------------------------------------------------------------------------ known mistakes
# Typical wrong answers with the graded functions' signatures (not in ``__all__``). The grader runs them on a
# wrong answer's inputs to name the mistake (``Question.mistakes``); the mutant corpus grades them too.


def class_step_unnormalized(img, model, target_y, l2_reg, learning_rate):
    """``img += learning_rate * g``: the step not divided by the gradient's L2 norm."""
    objective = model(img)[0, target_y] - l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(objective, img)
    with torch.no_grad():
        img += learning_rate * g


def class_step_l2_added(img, model, target_y, l2_reg, learning_rate):
    """Ascent on ``s_y + l2_reg ||img||^2``: the penalty's sign flipped."""
    objective = model(img)[0, target_y] + l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(objective, img)
    with torch.no_grad():
        img += learning_rate * g / g.norm()
