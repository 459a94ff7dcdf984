"""INSTRUCTOR-ONLY: typical wrong answers, recognised by the grader (``Question.mistakes``) to name the mistake.

Each function has the graded function's signature and makes one mistake students make; the grader calls it on the
same inputs as the student's function and, when the outputs match, says which mistake it is. The mutant corpora
(``tests/mutants/``) grade these same functions, so every named mistake is tested to lose points on its own
question only. Not in ``__all__``: these are not reference answers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__: list[str] = []


# ------------------------------------------------------------------------------ 01 saliency / class visualization


def _class_grad(X, y, model, objective):
    X = X.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(objective(model(X)), X)
    return g


def saliency_softmax_probability(X, y, model):
    """Gradient of the softmax probability instead of the raw score."""
    g = _class_grad(X, y, model, lambda s: s.softmax(dim=1).gather(1, y.view(-1, 1)).sum())
    return g.abs().amax(dim=1)


def saliency_signed_gradient(X, y, model):
    """Max over channels of the signed gradient (no absolute value)."""
    return _class_grad(X, y, model, lambda s: s.gather(1, y.view(-1, 1)).sum()).amax(dim=1)


def saliency_sum_over_channels(X, y, model):
    """Sum of |gradient| over the colour channels instead of the max."""
    return _class_grad(X, y, model, lambda s: s.gather(1, y.view(-1, 1)).sum()).abs().sum(dim=1)


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


# ------------------------------------------------------------------------------------------------- 05 fooling


def _fooling_grad(X, target_y, model, objective):
    t = torch.as_tensor(target_y, device=X.device).long().reshape(-1).expand(X.shape[0])
    X = X.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(objective(model(X), t), X)
    return g


def _clamped(X, bounds):
    return X if bounds is None else torch.maximum(torch.minimum(X, bounds[1]), bounds[0])


def fooling_step_softmax_probability(X, target_y, model, learning_rate=1.0, bounds=None):
    """Ascent on the softmax probability of the target instead of its raw score."""
    g = _fooling_grad(X, target_y, model, lambda s, t: s.softmax(dim=1).gather(1, t.view(-1, 1)).sum())
    return _clamped(X.detach() + learning_rate * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1), bounds)


def fooling_step_unnormalized(X, target_y, model, learning_rate=1.0, bounds=None):
    """``X + learning_rate * g``: the step not divided by the gradient's L2 norm."""
    g = _fooling_grad(X, target_y, model, lambda s, t: s.gather(1, t.view(-1, 1)).sum())
    return _clamped(X.detach() + learning_rate * g, bounds)


def fooling_step_one_norm_for_the_batch(X, target_y, model, learning_rate=1.0, bounds=None):
    """One L2 norm for the whole batch instead of one per image."""
    g = _fooling_grad(X, target_y, model, lambda s, t: s.gather(1, t.view(-1, 1)).sum())
    return _clamped(X.detach() + learning_rate * g / g.norm(), bounds)


# ------------------------------------------------------------------------------------------- 06 embeddings


def pairwise_distances_always_squared(E, squared=False):
    """Squared distances whatever ``squared`` says."""
    sq = (E.unsqueeze(1) - E.unsqueeze(0)).pow(2).sum(-1)
    return sq


def contrastive_y_flipped(x1, x2, y, margin=1.0):
    """y = 1 read as 'similar' (Hadsell et al.: y = 0 similar, 1 dissimilar)."""
    d = (x1 - x2).pow(2).sum(1).sqrt()
    y = y.float()
    return (y * 0.5 * d ** 2 + (1 - y) * 0.5 * F.relu(margin - d) ** 2).mean()


def contrastive_squared_distance(x1, x2, y, margin=1.0):
    """The squared distance used where the distance D belongs (also inside the hinge)."""
    sq = (x1 - x2).pow(2).sum(1)
    y = y.float()
    return ((1 - y) * 0.5 * sq + y * 0.5 * F.relu(margin - sq) ** 2).mean()


def triplet_squared_distances(anchor, positive, negative, margin=1.0):
    """Squared distances in the hinge; the lecture's triplet loss uses plain Euclidean distances."""
    ap = (anchor - positive).pow(2).sum(1)
    an = (anchor - negative).pow(2).sum(1)
    return F.relu(ap - an + margin).mean()
