"""Variants of the graded functions of 05_fooling_images, written as a student might.

``WRONG[question_id]`` maps a mutant's name to a function that must lose points on that question (and only
there); ``CORRECT[question_id]`` maps a name to a function written differently from the reference that must get
full marks. ``tests/test_mutants_05.py`` grades every one of them through the engine.

Every function is self-contained (a student's ``make_fooling_image`` may call their own ``fooling_step``, but
here each variant replaces exactly one function of an otherwise correct submission).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from utils.reference.fooling import fooling_step_one_norm_for_the_batch, fooling_step_softmax_probability, fooling_step_unnormalized


def _clamp(X, bounds):
    if bounds is None:
        return X
    lo, hi = bounds
    return torch.max(torch.min(X, hi), lo)


def _grad(X, model, objective):
    X = X.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        objective(model(X)).backward()
    return X.grad


def _unit(g):
    return g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def _targets(target_y, n):
    t = torch.as_tensor(target_y, dtype=torch.long).reshape(-1)
    return t.expand(n) if t.numel() == 1 else t


# -------------------------------------------------------------------------------------------- fooling_step


def step_reference_like(X, target_y, model, learning_rate=1.0, bounds=None):
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: s.gather(1, t.view(-1, 1)).sum())
    return _clamp(X.detach() + learning_rate * _unit(g), bounds)


def step_descent(X, target_y, model, learning_rate=1.0, bounds=None):
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: s.gather(1, t.view(-1, 1)).sum())
    return _clamp(X.detach() - learning_rate * _unit(g), bounds)


def step_log_softmax(X, target_y, model, learning_rate=1.0, bounds=None):
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: -F.cross_entropy(s, t, reduction="sum"))
    return _clamp(X.detach() + learning_rate * _unit(g), bounds)


def step_sign(X, target_y, model, learning_rate=1.0, bounds=None):
    """FGSM-style sign step: an L-infinity step, not the L2-normalized one asked for."""
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: s.gather(1, t.view(-1, 1)).sum())
    return _clamp(X.detach() + learning_rate * g.sign(), bounds)


def step_mean_abs(X, target_y, model, learning_rate=1.0, bounds=None):
    """DeepDream's normalization (mean absolute value) instead of the L2 norm."""
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: s.gather(1, t.view(-1, 1)).sum())
    return _clamp(X.detach() + learning_rate * g / g.flatten(1).abs().mean(1).view(-1, 1, 1, 1), bounds)


def step_no_clamp(X, target_y, model, learning_rate=1.0, bounds=None):
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: s.gather(1, t.view(-1, 1)).sum())
    return X.detach() + learning_rate * _unit(g)


def step_all_scores(X, target_y, model, learning_rate=1.0, bounds=None):
    """Forgot to pick the target: ascends on the sum of every class score."""
    g = _grad(X, model, lambda s: s.sum())
    return _clamp(X.detach() + learning_rate * _unit(g), bounds)


def step_first_target(X, target_y, model, learning_rate=1.0, bounds=None):
    """Treats ``target_y`` as one class for the whole batch."""
    t = int(torch.as_tensor(target_y).reshape(-1)[0])
    g = _grad(X, model, lambda s: s[:, t].sum())
    return _clamp(X.detach() + learning_rate * _unit(g), bounds)


def step_loop_linalg(X, target_y, model, learning_rate=1.0, bounds=None):
    """Correct: one image at a time, torch.linalg.vector_norm, torch.clamp with tensor bounds."""
    t = _targets(target_y, X.shape[0])
    out = []
    for i in range(X.shape[0]):
        xi = X[i:i + 1].detach().clone().requires_grad_(True)
        score = model(xi)[0, int(t[i])]
        (g,) = torch.autograd.grad(score, xi)
        xi = xi.detach() + learning_rate * g / torch.linalg.vector_norm(g)
        if bounds is not None:
            xi = torch.clamp(xi, min=bounds[0], max=bounds[1])
        out.append(xi)
    return torch.cat(out)


def step_one_hot_sqrt(X, target_y, model, learning_rate=1.0, bounds=None):
    """Correct: backward a one-hot gradient, norm as sqrt of the sum of squares, clamp with torch.where."""
    t = _targets(target_y, X.shape[0])
    Xv = X.detach().clone().requires_grad_(True)
    scores = model(Xv)
    scores.backward(F.one_hot(t, scores.shape[1]).to(scores.dtype))
    g = Xv.grad
    norm = torch.sqrt((g ** 2).sum(dim=(1, 2, 3), keepdim=True))
    out = X.detach() + learning_rate * g / norm
    if bounds is not None:
        lo, hi = bounds
        out = torch.where(out < lo, lo.expand_as(out), out)
        out = torch.where(out > hi, hi.expand_as(out), out)
    return out


def step_float64(X, target_y, model, learning_rate=1.0, bounds=None):
    """Correct: normalizes in float64 and casts back."""
    t = _targets(target_y, X.shape[0])
    g = _grad(X, model, lambda s: s[torch.arange(s.shape[0]), t].sum()).double()
    norm = g.reshape(g.shape[0], -1).norm(p=2, dim=1)
    out = X.double() + learning_rate * g / norm[:, None, None, None]
    return _clamp(out, None if bounds is None else (bounds[0].double(), bounds[1].double())).to(X.dtype)


# -------------------------------------------------------------------------------------- make_fooling_image


def _fool_loop(X, target_y, model, learning_rate, max_steps, bounds, direction=1.0, normalize=True,
               early_stop=True, clamp=True, objective=None):
    target = int(target_y)
    X_fool = X.detach().clone()
    for _ in range(max_steps):
        Xv = X_fool.clone().requires_grad_(True)
        scores = model(Xv)
        if early_stop and int(scores.argmax(1)) == target:
            break
        obj = scores[0, target] if objective is None else objective(scores)
        obj.backward()
        g = Xv.grad
        step = g / g.norm() if normalize else g
        X_fool = X_fool + direction * learning_rate * step
        if clamp:
            X_fool = _clamp(X_fool, bounds)
    return X_fool.detach()


def fool_descent(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _fool_loop(X, target_y, model, learning_rate, max_steps, bounds, direction=-1.0)


def fool_untargeted(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Ignores the target: pushes the current class down until the prediction changes (to whatever class)."""
    with torch.no_grad():
        y = int(model(X).argmax(1))
    X_fool = X.detach().clone()
    for _ in range(max_steps):
        Xv = X_fool.clone().requires_grad_(True)
        scores = model(Xv)
        if int(scores.argmax(1)) != y:
            break
        scores[0, y].backward()
        X_fool = _clamp(X_fool - learning_rate * Xv.grad / Xv.grad.norm(), bounds)
    return X_fool.detach()


def fool_unnormalized(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _fool_loop(X, target_y, model, learning_rate, max_steps, bounds, normalize=False)


def fool_no_early_stop(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _fool_loop(X, target_y, model, learning_rate, max_steps, bounds, early_stop=False)


def fool_no_clamp(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _fool_loop(X, target_y, model, learning_rate, max_steps, bounds, clamp=False)


def fool_returns_input(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Modifies a copy but returns the original."""
    _fool_loop(X, target_y, model, learning_rate, max_steps, bounds)
    return X


def _extra_steps(X, target_y, model, learning_rate, max_steps, bounds, extra):
    """The reference's answer, then ``extra`` more normalized steps towards the target."""
    X_fool = _fool_loop(X, target_y, model, learning_rate, max_steps, bounds)
    t = torch.tensor([int(target_y)])
    for _ in range(extra):
        X_fool = _clamp(X_fool + learning_rate * _unit(_grad(X_fool, model, lambda s: s.gather(1, t.view(-1, 1)).sum())),
                        bounds)
    return X_fool


def fool_one_extra_step(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Checks after stepping: one step past the boundary (accepted on every case)."""
    return _extra_steps(X, target_y, model, learning_rate, max_steps, bounds, 1)


def fool_two_extra_steps(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _extra_steps(X, target_y, model, learning_rate, max_steps, bounds, 2)


def fool_no_grad_reset(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """One leaf tensor stepped in place whose .grad is never reset: each step follows the sum of all gradients."""
    target = int(target_y)
    X_fool = X.detach().clone().requires_grad_(True)
    for _ in range(max_steps):
        scores = model(X_fool)
        if int(scores.argmax(1)) == target:
            break
        scores[0, target].backward()
        with torch.no_grad():
            X_fool += learning_rate * X_fool.grad / X_fool.grad.norm()
            if bounds is not None:
                X_fool.copy_(_clamp(X_fool, bounds))
    return X_fool.detach()


def fool_cs231n(X, target_y, model):
    """cs231n's three-argument version as written there: learning rate 1, at most 100 steps, no clamp."""
    X_fooling = X.clone()
    X_fooling = X_fooling.requires_grad_()
    learning_rate = 1
    for _ in range(100):
        scores = model(X_fooling)
        if scores.argmax(dim=1).item() == target_y:
            break
        scores[0, target_y].backward()
        g = X_fooling.grad.data
        X_fooling.data += learning_rate * g / g.norm()
        X_fooling.grad.zero_()
    return X_fooling.detach()


def fool_cs231n_with_clamp(X, target_y, model):
    """cs231n's three-argument version plus a clamp to the bundled model's valid pixel range."""
    from utils.image import valid_range
    from utils.models import model_card

    lo, hi = valid_range(model_card("shapes"), X.device)
    X_fooling = X.clone().requires_grad_()
    for _ in range(100):
        scores = model(X_fooling)
        if scores.argmax(dim=1).item() == target_y:
            break
        scores[0, target_y].backward()
        g = X_fooling.grad.data
        X_fooling.data += g / g.norm()
        X_fooling.data = torch.max(torch.min(X_fooling.data, hi), lo)
        X_fooling.grad.zero_()
    return X_fooling.detach()


def fool_reference_like(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _fool_loop(X, target_y, model, learning_rate, max_steps, bounds)


def fool_linalg_norm(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Correct: another norm call (torch.linalg.norm of the flattened gradient), torch.clamp with tensors."""
    X_fool = X.clone()
    for _ in range(max_steps):
        X_fool.requires_grad_(True)
        scores = model(X_fool)
        if scores.argmax().item() == target_y:
            break
        (g,) = torch.autograd.grad(scores[0, target_y], X_fool)
        with torch.no_grad():
            X_fool = X_fool + learning_rate * g / torch.linalg.norm(g.flatten())
            if bounds is not None:
                X_fool = X_fool.clamp(min=bounds[0], max=bounds[1])
    return X_fool.detach()


def fool_step_then_check(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Correct: a do-while loop (step first, then check the new image with a separate no-grad forward)."""
    X_fool = X.detach().clone()
    for _ in range(max_steps):
        Xv = X_fool.requires_grad_(True)
        model(Xv)[0, target_y].backward()
        X_fool = _clamp(X_fool.detach() + learning_rate * Xv.grad / Xv.grad.pow(2).sum().sqrt(), bounds)
        with torch.no_grad():
            if model(X_fool)[0].argmax() == target_y:
                break
    return X_fool


def fool_while_score_check(X, target_y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Correct: a while loop whose condition compares the target score with the best score (ties included)."""
    X_fool = X.detach().clone()
    steps = 0

    def fooled(x):
        with torch.no_grad():
            s = model(x)[0]
        return bool(s[target_y] >= s.max())

    while not fooled(X_fool) and steps < max_steps:
        Xv = X_fool.clone().requires_grad_(True)
        g = torch.autograd.grad(model(Xv)[0, target_y], Xv)[0]
        X_fool = _clamp(X_fool + learning_rate * g / g.norm(p=2), bounds)
        steps += 1
    return X_fool


# --------------------------------------------------------------------------- make_untargeted_fooling_image


def _untargeted_loop(X, y, model, learning_rate, max_steps, bounds, objective, direction=1.0, early_stop=True,
                     clamp=True):
    y = int(y)
    X_adv = X.detach().clone()
    for _ in range(max_steps):
        Xv = X_adv.clone().requires_grad_(True)
        scores = model(Xv)
        if early_stop and int(scores.argmax(1)) != y:
            break
        objective(scores, y).backward()
        X_adv = X_adv + direction * learning_rate * Xv.grad / Xv.grad.norm()
        if clamp:
            X_adv = _clamp(X_adv, bounds)
    return X_adv.detach()


def _true_score(scores, y):
    return scores[0, y]


def untargeted_ascent(X, y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Wrong direction: makes the true class even more certain."""
    return _untargeted_loop(X, y, model, learning_rate, max_steps, bounds, _true_score, direction=1.0)


def untargeted_no_early_stop(X, y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _untargeted_loop(X, y, model, learning_rate, max_steps, bounds, _true_score, direction=-1.0,
                            early_stop=False)


def untargeted_no_clamp(X, y, model, learning_rate=1.0, max_steps=100, bounds=None):
    return _untargeted_loop(X, y, model, learning_rate, max_steps, bounds, _true_score, direction=-1.0,
                            clamp=False)


def untargeted_descend_true_score(X, y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Correct: descend on the raw true-class score."""
    return _untargeted_loop(X, y, model, learning_rate, max_steps, bounds, _true_score, direction=-1.0)


def untargeted_cross_entropy(X, y, model, learning_rate=1.0, max_steps=100, bounds=None):
    """Correct: ascend on the cross-entropy loss of the true class."""
    def loss(scores, y):
        return F.cross_entropy(scores, torch.tensor([y]))
    return _untargeted_loop(X, y, model, learning_rate, max_steps, bounds, loss, direction=1.0)


# ------------------------------------------------------------------------------- make_unrecognizable_image


def _unrec_loop(target_y, model, confidence, X_init, learning_rate, max_steps, bounds, objective,
                done=None, clamp=True, direction=1.0):
    X = X_init.detach().clone()
    if clamp:
        X = _clamp(X, bounds)
    t = _targets(target_y, X.shape[0])
    rows = torch.arange(X.shape[0])
    for _ in range(max_steps):
        Xv = X.clone().requires_grad_(True)
        scores = model(Xv)
        if (done or (lambda s: bool((s.softmax(1)[rows, t] >= confidence).all())))(scores):
            break
        objective(scores, rows, t).backward()
        X = X + direction * learning_rate * _unit(Xv.grad)
        if clamp:
            X = _clamp(X, bounds)
    return X.detach()


def _log_prob(scores, rows, t):
    return F.log_softmax(scores, 1)[rows, t].sum()


def _raw_score(scores, rows, t):
    return scores[rows, t].sum()


def unrec_argmax_stop(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300, bounds=None):
    """Stops as soon as the target is the top class, however unsure the model still is."""
    t = _targets(target_y, X_init.shape[0])
    return _unrec_loop(target_y, model, confidence, X_init, learning_rate, max_steps, bounds, _log_prob,
                       done=lambda s: bool((s.argmax(1) == t).all()))


def unrec_descent(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300, bounds=None):
    return _unrec_loop(target_y, model, confidence, X_init, learning_rate, max_steps, bounds, _log_prob,
                       direction=-1.0)


def unrec_no_clamp(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300, bounds=None):
    return _unrec_loop(target_y, model, confidence, X_init, learning_rate, max_steps, bounds, _log_prob,
                       clamp=False)


def unrec_first_image_only(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300,
                           bounds=None):
    """Works on ``X_init[:1]`` and the first target only (fine for one image, wrong shape for a batch)."""
    t = _targets(target_y, X_init.shape[0])[:1]
    return _unrec_loop(t, model, confidence, X_init[:1], learning_rate, max_steps, bounds, _log_prob)


def unrec_log_prob(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300, bounds=None):
    """Correct: log-probability ascent, every image keeps stepping until all are confident."""
    return _unrec_loop(target_y, model, confidence, X_init, learning_rate, max_steps, bounds, _log_prob)


def unrec_raw_score(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300, bounds=None):
    """Correct: raw-score ascent (the same step as fooling_step) until the softmax confidence is reached."""
    return _unrec_loop(target_y, model, confidence, X_init, learning_rate, max_steps, bounds, _raw_score)


def unrec_adam(target_y, model, confidence=0.996, X_init=None, learning_rate=1.0, max_steps=300, bounds=None):
    """Correct: torch.optim.Adam on the cross-entropy (lr 0.05), clamping in place after every step."""
    X = X_init.detach().clone()
    if bounds is not None:
        X = _clamp(X, bounds)
    X.requires_grad_(True)
    t = _targets(target_y, X.shape[0])
    opt = torch.optim.Adam([X], lr=0.05)
    for _ in range(max_steps * 5):
        scores = model(X)
        if bool((scores.softmax(1)[torch.arange(X.shape[0]), t] >= confidence).all()):
            break
        opt.zero_grad()
        F.cross_entropy(scores, t).backward()
        opt.step()
        if bounds is not None:
            with torch.no_grad():
                X.copy_(_clamp(X, bounds))
    return X.detach()


WRONG = {
    "fooling_step": {
        "descent": step_descent,
        "softmax_probability": fooling_step_softmax_probability,
        "log_softmax": step_log_softmax,
        "unnormalized": fooling_step_unnormalized,
        "one_norm_for_the_batch": fooling_step_one_norm_for_the_batch,
        "sign_step": step_sign,
        "mean_abs_normalization": step_mean_abs,
        "no_clamp": step_no_clamp,
        "all_scores": step_all_scores,
        "first_target_for_all": step_first_target,
    },
    "make_fooling_image": {
        "descent": fool_descent,
        "untargeted": fool_untargeted,
        "unnormalized": fool_unnormalized,
        "no_early_stop": fool_no_early_stop,
        "no_clamp": fool_no_clamp,
        "returns_input": fool_returns_input,
        "two_extra_steps": fool_two_extra_steps,
        "no_grad_reset": fool_no_grad_reset,
        "cs231n_no_clamp": fool_cs231n,
    },
    "make_untargeted_fooling_image": {
        "ascent": untargeted_ascent,
        "no_early_stop": untargeted_no_early_stop,
        "no_clamp": untargeted_no_clamp,
    },
    "make_unrecognizable_image": {
        "argmax_stop": unrec_argmax_stop,
        "descent": unrec_descent,
        "no_clamp": unrec_no_clamp,
        "first_image_only": unrec_first_image_only,
    },
}

CORRECT = {
    "fooling_step": {
        "reference_like": step_reference_like,
        "loop_linalg_norm": step_loop_linalg,
        "one_hot_sqrt_where": step_one_hot_sqrt,
        "float64_inside": step_float64,
    },
    "make_fooling_image": {
        "reference_like": fool_reference_like,
        "linalg_norm": fool_linalg_norm,
        "step_then_check": fool_step_then_check,
        "while_score_check": fool_while_score_check,
        "one_extra_step": fool_one_extra_step,
        "cs231n_three_args_with_clamp": fool_cs231n_with_clamp,
    },
    "make_untargeted_fooling_image": {
        "descend_true_score": untargeted_descend_true_score,
        "cross_entropy": untargeted_cross_entropy,
    },
    "make_unrecognizable_image": {
        "log_prob": unrec_log_prob,
        "raw_score": unrec_raw_score,
        "adam": unrec_adam,
    },
}
