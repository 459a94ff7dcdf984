"""Reference: fooling images and adversarial examples (assignment 05).

Szegedy et al. (2013) showed that a tiny, targeted change to a correctly classified image makes a ConvNet report
any class we like; Nguyen, Yosinski and Clune (2014) showed that images no human would recognise can get more than
99.6 % confidence. Both come from the same tool as class visualization: gradient ascent on the *input*.

Conventions shared by every function here:

* images are ``(N, 3, H, W)`` float tensors in the model's *normalized* input space (what ``model`` eats);
* the model returns raw, unnormalized class scores ``(N, C)``; we differentiate those, not softmax
  probabilities (a softmax gradient vanishes once the model is confident, and it also depends on every rival
  class score);
* every ascent step is normalized by the L2 norm of *its own image's* gradient, so ``learning_rate`` is the L2
  length of the step in input space, whatever the scale of the gradient;
* ``bounds`` is ``None`` (no clamping) or a pair ``(lo, hi)`` of tensors broadcastable to the image (for the bundled
  model: ``utils.image.valid_range(card, device)``, each ``(1, 3, 1, 1)``); after every step the image is clamped
  into ``[lo, hi]`` so it stays a real picture (pixel values in ``[0, 1]`` before normalization);
* nothing is modified in place: the input image is left untouched and a new tensor is returned;
* everything follows the device and dtype of the input image.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.image import clamp_to_bounds

__all__ = [
    "fooling_step",
    "make_fooling_image",
    "make_untargeted_fooling_image",
    "make_unrecognizable_image",
]

_EPS = 1e-12


def _as_bounds(bounds, like: Tensor) -> tuple[Tensor, Tensor] | None:
    if bounds is None:
        return None
    lo, hi = bounds
    lo = torch.as_tensor(lo, dtype=like.dtype, device=like.device)
    hi = torch.as_tensor(hi, dtype=like.dtype, device=like.device)
    return lo, hi


def _as_targets(target_y, n: int, device) -> Tensor:
    t = torch.as_tensor(target_y, dtype=torch.long, device=device).reshape(-1)
    if t.numel() == 1 and n != 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"expected {n} target classes (one per image), got {t.numel()}")
    return t


def _normalized_step(X: Tensor, grad: Tensor, learning_rate: float, bounds) -> Tensor:
    """``X + learning_rate * grad / ||grad||_2`` with one norm per image, then clamped."""
    norms = grad.flatten(1).norm(dim=1).clamp_min(_EPS).view(-1, *([1] * (grad.dim() - 1)))
    return clamp_to_bounds(X + learning_rate * grad / norms, bounds)


def _check_image(X: Tensor, name: str = "X") -> None:
    if X.dim() != 4:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(X.shape)}")


def _check_one_image(X: Tensor, caller: str) -> None:
    _check_image(X)
    if X.shape[0] != 1:
        raise ValueError(f"{caller} works on one image (1, 3, H, W), got {tuple(X.shape)}")


def _ascend_until(X: Tensor, model: nn.Module, objective: Callable[[Tensor], Tensor],
                  reached: Callable[[Tensor], bool], learning_rate: float, max_steps: int,
                  bounds: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor, bool]:
    """Normalized ascent (:func:`_normalized_step`) on ``objective(model(X))`` from ``X`` ``(N, 3, H, W)`` until
    ``reached(model(X))``, checked *before* every step: at most ``max_steps`` steps.

    ``X`` is the start (a tensor of the caller's, not requiring grad); both functions get the raw scores ``(N, C)``
    in the graph of the image. Returns ``(image, its scores detached, reached)``, the image detached."""
    with torch.enable_grad():
        for step in range(max_steps + 1):
            X_var = X.requires_grad_(True)
            scores = model(X_var)
            if reached(scores):
                return X.detach(), scores.detach(), True
            if step == max_steps:
                break
            (grad,) = torch.autograd.grad(objective(scores), X_var)
            X = _normalized_step(X.detach(), grad, learning_rate, bounds)
    return X.detach(), scores.detach(), False


def fooling_step(X: Tensor, target_y, model: nn.Module, learning_rate: float = 1.0, bounds=None) -> Tensor:
    """One normalized gradient-ascent step on the raw score of ``target_y``.

    ``X_next = clamp(X + learning_rate * g / ||g||_2, lo, hi)`` with ``g = d s_target(X) / dX`` computed per image.

    Args:
        X: ``(N, 3, H, W)`` images (normalized input space). Not modified.
        target_y: an int (same class for every image) or ``(N,)`` integer tensor of target classes.
        model: classifier returning raw scores ``(N, C)``.
        learning_rate: L2 length of each image's step.
        bounds: ``None`` or ``(lo, hi)`` broadcastable to ``X``.

    Returns:
        ``(N, 3, H, W)`` new tensor, detached from any graph.
    """
    _check_image(X)
    target = _as_targets(target_y, X.shape[0], X.device)
    with torch.enable_grad():
        X_var = X.detach().clone().requires_grad_(True)
        scores = model(X_var)
        target_scores = scores.gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(target_scores, X_var)
    return _normalized_step(X.detach(), grad, learning_rate, _as_bounds(bounds, X))


def _describe(scores: Tensor, cls: int) -> str:
    probs = scores.softmax(dim=1)[0]
    top = int(scores.argmax(dim=1))
    return f"class {cls} has score {scores[0, cls].item():.3f} (p={probs[cls].item():.3f}); " \
           f"the model says {top} (p={probs[top].item():.3f})"


def make_fooling_image(X: Tensor, target_y: int, model: nn.Module, *, learning_rate: float = 1.0,
                       max_steps: int = 100, bounds=None) -> Tensor:
    """Targeted fooling image (Szegedy et al. 2013): the smallest run of normalized ascent steps on the raw
    ``target_y`` score that makes ``target_y`` the model's top class.

    The loop checks the prediction *before* each step, so it stops as soon as the target is the argmax (an
    image that is already classified as ``target_y`` comes back unchanged) and takes at most ``max_steps`` steps.

    Args:
        X: ``(1, 3, H, W)`` image. Not modified.
        target_y: the class to fool the model into (int, or a one-element tensor).
        model: classifier returning raw scores ``(1, C)``.
        learning_rate: L2 length of each step.
        max_steps: give up after this many steps.
        bounds: ``None`` or ``(lo, hi)``; the image is clamped into it after every step.

    Returns:
        ``(1, 3, H, W)`` new tensor that the model classifies as ``target_y``.

    Raises:
        RuntimeError: the target is still not the top class after ``max_steps`` steps.
    """
    _check_one_image(X, "make_fooling_image")
    target = int(target_y)
    X_fool, scores, reached = _ascend_until(
        X.detach().clone(), model, objective=lambda s: s[0, target], reached=lambda s: int(s.argmax(dim=1)) == target,
        learning_rate=learning_rate, max_steps=max_steps, bounds=_as_bounds(bounds, X))
    if reached:
        return X_fool
    raise RuntimeError(f"make_fooling_image gave up after {max_steps} steps of length {learning_rate}: "
                       f"{_describe(scores, target)}. Try more steps or a larger learning rate.")


def make_untargeted_fooling_image(X: Tensor, y: int, model: nn.Module, *, learning_rate: float = 1.0,
                                  max_steps: int = 100, bounds=None) -> Tensor:
    """Untargeted adversarial example: normalized steps that lower the true class's lead until any other class
    wins.

    Each step ascends on ``max_{j != y} s_j(X) - s_y(X)`` (the runner-up's margin over the true class, with the
    runner-up re-chosen at every step) and the loop stops as soon as the top class is no longer ``y``.

    Args:
        X: ``(1, 3, H, W)`` image, (normally) classified as ``y``. Not modified.
        y: the true class (int, or a one-element tensor).
        model, learning_rate, max_steps, bounds: as in :func:`make_fooling_image`.

    Returns:
        ``(1, 3, H, W)`` new tensor whose top class is not ``y``.

    Raises:
        RuntimeError: the top class is still ``y`` after ``max_steps`` steps.
    """
    _check_one_image(X, "make_untargeted_fooling_image")
    true = int(y)

    def margin(scores: Tensor) -> Tensor:   # the runner-up's score minus the true class's
        others = scores[0].clone()
        others[true] = float("-inf")
        return others.max() - scores[0, true]

    X_adv, scores, reached = _ascend_until(
        X.detach().clone(), model, objective=margin, reached=lambda s: int(s.argmax(dim=1)) != true,
        learning_rate=learning_rate, max_steps=max_steps, bounds=_as_bounds(bounds, X))
    if reached:
        return X_adv
    raise RuntimeError(f"make_untargeted_fooling_image gave up after {max_steps} steps of length "
                       f"{learning_rate}: {_describe(scores, true)}.")


def make_unrecognizable_image(target_y, model: nn.Module, confidence: float = 0.996, X_init: Tensor | None = None,
                              learning_rate: float = 1.0, max_steps: int = 300, bounds=None) -> Tensor:
    """Images the model classifies as ``target_y`` with probability at least ``confidence`` (Nguyen et al. 2014),
    grown by gradient ascent from a meaningless start (noise or a flat image).

    The confidence we want is a softmax probability, so each step ascends on the target's *log-probability*
    ``log softmax(s)_target = s_target - logsumexp(s)``: unlike the raw score, it also pushes every rival score
    down. Steps are normalized per image; an image that has reached ``confidence`` is frozen while the others go on.

    Args:
        target_y: an int, or ``(N,)`` integer tensor (one class per start image).
        model: classifier returning raw scores ``(N, C)``.
        confidence: softmax probability each image must reach.
        X_init: ``(N, 3, H, W)`` start images (not modified); ``None`` means one ``(1, 3, 64, 64)`` image of
            Gaussian noise, ``0.5 * torch.randn(..., generator=torch.Generator().manual_seed(0))``. (Not a flat
            image of zeros: for a ReLU network whose first layers have no bias, like the bundled model, an all-zero
            image can sit where every unit is switched off, and the gradient there is exactly zero.)
        learning_rate: L2 length of each step.
        max_steps: give up after this many steps.
        bounds: ``None`` or ``(lo, hi)``.

    Returns:
        ``(N, 3, H, W)`` new tensor; ``softmax(model(out))[i, target_i] >= confidence`` for every ``i``.

    Raises:
        RuntimeError: some image is still below ``confidence`` after ``max_steps`` steps.
    """
    if X_init is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        X_init = (0.5 * noise).to(device)
    _check_image(X_init, "X_init")
    target = _as_targets(target_y, X_init.shape[0], X_init.device)
    rows = torch.arange(X_init.shape[0], device=X_init.device)
    lims = _as_bounds(bounds, X_init)

    def target_log_probs(scores: Tensor) -> Tensor:   # (N,)
        return F.log_softmax(scores, dim=1)[rows, target]

    def below(scores: Tensor) -> Tensor:   # (N,) bool: the images still under the confidence
        return target_log_probs(scores).detach().exp() < confidence

    X, scores, reached = _ascend_until(
        clamp_to_bounds(X_init.detach().clone(), lims), model,
        objective=lambda s: (target_log_probs(s) * below(s)).sum(), reached=lambda s: not bool(below(s).any()),
        learning_rate=learning_rate, max_steps=max_steps, bounds=lims)
    if reached:
        return X
    probs, todo = target_log_probs(scores).exp(), below(scores)
    missing = ", ".join(f"class {int(t)}: p={p:.4f}" for t, p, m in zip(target, probs.tolist(), todo) if m)
    raise RuntimeError(f"make_unrecognizable_image gave up after {max_steps} steps below confidence "
                       f"{confidence}: {missing}. Try more steps or a larger learning rate.")


# ------------------------------------------------------------------------------------- grading calibration


def _lead(scores: Tensor, cls: int) -> Tensor:
    """Score of ``cls`` minus the best other score, per image ``(N,)``."""
    others = scores.clone()
    others[:, cls] = float("-inf")
    return scores[:, cls] - others.max(dim=1).values


def calibrate_fooling(inputs, outputs) -> dict[str, Tensor]:
    """Where the reference fooling image would be after one more step: the target's lead before and after it.

    Stored with the case's expected outputs when the case files are generated, so the grader can express its
    slack in reference steps ("at most one step past the boundary") on every case alike."""
    ref, target, model = outputs["out"], int(inputs["target_y"]), inputs["model"]
    further = fooling_step(ref, target, model, float(inputs.get("learning_rate", 1.0)), inputs.get("bounds"))
    with torch.no_grad():
        lead = [float(_lead(model(x), target)) for x in (ref, further)]
    return {"lead": torch.tensor(lead[0], dtype=torch.float64),
            "lead_one_more_step": torch.tensor(lead[1], dtype=torch.float64)}


# ------------------------------------------------------------------------------------------------ known mistakes
# Typical wrong answers with the graded functions' signatures (not in ``__all__``). The grader runs them on a
# wrong answer's inputs to name the mistake (``Question.mistakes``); the mutant corpus grades them too.


def _fooling_grad(X, target_y, model, objective):
    t = torch.as_tensor(target_y, device=X.device).long().reshape(-1).expand(X.shape[0])
    X = X.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(objective(model(X), t), X)
    return g


def fooling_step_softmax_probability(X, target_y, model, learning_rate=1.0, bounds=None):
    """Ascent on the softmax probability of the target instead of its raw score."""
    g = _fooling_grad(X, target_y, model, lambda s, t: s.softmax(dim=1).gather(1, t.view(-1, 1)).sum())
    return clamp_to_bounds(X.detach() + learning_rate * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1), bounds)


def fooling_step_unnormalized(X, target_y, model, learning_rate=1.0, bounds=None):
    """``X + learning_rate * g``: the step not divided by the gradient's L2 norm."""
    g = _fooling_grad(X, target_y, model, lambda s, t: s.gather(1, t.view(-1, 1)).sum())
    return clamp_to_bounds(X.detach() + learning_rate * g, bounds)


def fooling_step_one_norm_for_the_batch(X, target_y, model, learning_rate=1.0, bounds=None):
    """One L2 norm for the whole batch instead of one per image."""
    g = _fooling_grad(X, target_y, model, lambda s, t: s.gather(1, t.view(-1, 1)).sum())
    return clamp_to_bounds(X.detach() + learning_rate * g / g.norm(), bounds)
