"""Variants of the graded functions of 03_deepdream, written as a student might.

``WRONG[question_id]`` maps a mutant's name to a function that must lose points on that question (and only
there); ``CORRECT[question_id]`` maps a name to a function written differently from the reference that must get
full marks ("dx = x" with ``A.backward(A)``, float64, loops, google/deepdream's own layout...).
``tests/test_mutants_03.py`` grades every one of them through the engine.

The octave variants use the notebook's provided helpers ``octave_sizes`` and ``resize`` (the same source as
``utils.reference.deepdream``'s).
"""
from __future__ import annotations

import numpy as np
import torch

from utils.reference.deepdream import octave_sizes, resize

EPS = 1e-8


def _features(model, layer_index):
    return model.features[:layer_index + 1]


# ----------------------------------------------------------------------------------------------- the step


def _step_with(normalize, objective="half_sq", slice_end=None):
    """A step written the usual way, with one piece swapped."""
    def step(img, model, layer_index, learning_rate):
        stop = layer_index + 1 if slice_end is None else slice_end(layer_index)
        A = model.features[:stop](img)
        loss = 0.5 * A.pow(2).sum() if objective == "half_sq" else A.sum()
        (g,) = torch.autograd.grad(loss, img)
        with torch.no_grad():
            img += learning_rate * normalize(g)
    return step


step_l2_norm = _step_with(lambda g: g / g.norm())
step_max_norm = _step_with(lambda g: g / g.abs().max())
step_no_norm = _step_with(lambda g: g)
step_sum_of_A = _step_with(lambda g: g / g.abs().mean(), objective="sum")
step_slice_too_short = _step_with(lambda g: g / g.abs().mean(), slice_end=lambda k: k)
step_per_image_mean = _step_with(lambda g: g / g.abs().flatten(1).mean(dim=1).view(-1, 1, 1, 1))


def step_grad_accumulates(img, model, layer_index, learning_rate):
    """img.grad is never reset: from the second call on, the step follows the sum of all gradients so far."""
    A = model.features[:layer_index + 1](img)
    A.backward(A)
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.abs().mean()


def step_dx_equals_x(img, model, layer_index, learning_rate):
    """The lecture's "dx = x": backpropagate the activations themselves, reset the gradient after the step."""
    A = model.features[:layer_index + 1](img)
    A.backward(A)
    g = img.grad
    img.data += learning_rate * g / g.abs().mean()
    img.grad.zero_()


def step_zero_grad_first(img, model, layer_index, learning_rate):
    if img.grad is not None:
        img.grad.zero_()
    loss = 0.5 * (model.features[:layer_index + 1](img) ** 2).sum()
    loss.backward()
    img.data.add_(learning_rate * img.grad / (img.grad.abs().mean() + 1e-12))


def step_autograd_grad_outputs(img, model, layer_index, learning_rate):
    A = _features(model, layer_index)(img)
    (g,) = torch.autograd.grad(A, img, grad_outputs=A.detach())
    with torch.no_grad():
        img.add_(learning_rate * g / g.abs().mean())


def step_float64(img, model, layer_index, learning_rate):
    x = img.detach().double().requires_grad_(True)
    A = _features(model, layer_index).double()(x)
    (g,) = torch.autograd.grad(0.5 * A.pow(2).sum(), x)
    with torch.no_grad():
        img.copy_((x + learning_rate * g / g.abs().mean()).to(img.dtype))
    _features(model, layer_index).float()


def step_layer_loop(img, model, layer_index, learning_rate):
    """Forward through the layers one by one up to layer_index; grad set to None afterwards."""
    out = img
    for i, layer in enumerate(model.features):
        out = layer(out)
        if i == layer_index:
            break
    out.backward(out)
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.abs().mean()
    img.grad = None


# ------------------------------------------------------------------------------------------- the octaves


def _ascend(x, model, layer_index, num_steps, learning_rate, bounds, normalize=None):
    x = x.detach().clone().requires_grad_(True)
    for _ in range(num_steps):
        A = model.features[:layer_index + 1](x)
        (g,) = torch.autograd.grad(0.5 * (A ** 2).sum(), x)
        with torch.no_grad():
            x += learning_rate * (g / g.abs().mean() if normalize is None else normalize(g))
            if bounds is not None:
                x.copy_(torch.maximum(torch.minimum(x, bounds[1]), bounds[0]))
    return x.detach()


def oct_detail_not_carried(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                           learning_rate=0.02, bounds=None, objective=None):
    """Restarts from the shrunk original at every scale: only the last octave's steps survive."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    for size in reversed(sizes):
        x = _ascend(resize(img, size), model, layer_index, num_steps, learning_rate, bounds)
    return x


def oct_large_to_small(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                       learning_rate=0.02, bounds=None, objective=None):
    """Forgot to reverse the list: the full size first, and the result is the smallest octave."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(img)
    for size in sizes:
        base = resize(img, size)
        x = _ascend(base + resize(detail, size), model, layer_index, num_steps, learning_rate, bounds)
        detail = x - base
    return x


def oct_large_to_small_resized(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                               learning_rate=0.02, bounds=None, objective=None):
    """Large to small, then the detail put back on the full-size image (right shape, wrong order)."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(img)
    for size in sizes:
        base = resize(img, size)
        x = _ascend(base + resize(detail, size), model, layer_index, num_steps, learning_rate, bounds)
        detail = x - base
    return img + resize(detail, img.shape[-2:])


def oct_carries_image(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                      learning_rate=0.02, bounds=None, objective=None):
    """Upsizes the dreamed image itself instead of adding the detail to a sharp base: the photo gets blurry."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    x = resize(img, sizes[-1])
    for size in reversed(sizes):
        x = _ascend(resize(x, size), model, layer_index, num_steps, learning_rate, bounds)
    return x


def oct_shrinks_previous_octave(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                                learning_rate=0.02, bounds=None, objective=None):
    """google/deepdream's layout (each base shrunk from the previous one) instead of resizing the original."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    bases = [img]
    for size in sizes[1:]:
        bases.append(resize(bases[-1], size))
    detail = torch.zeros_like(bases[-1])
    for base in reversed(bases):
        x = _ascend(base + resize(detail, base.shape[-2:]), model, layer_index, num_steps, learning_rate, bounds)
        detail = x - base
    return x


def oct_unnormalized_steps(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                           learning_rate=0.02, bounds=None, objective=None):
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(resize(img, sizes[-1]))
    for size in reversed(sizes):
        base = resize(img, size)
        x = _ascend(base + resize(detail, size), model, layer_index, num_steps, learning_rate, bounds,
                    normalize=lambda g: g)
        detail = x - base
    return x


def oct_no_clamp(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10, learning_rate=0.02,
                 bounds=None, objective=None):
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(resize(img, sizes[-1]))
    for size in reversed(sizes):
        base = resize(img, size)
        x = _ascend(base + resize(detail, size), model, layer_index, num_steps, learning_rate, None)
        detail = x - base
    return x


def oct_overwrites_input(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                         learning_rate=0.02, bounds=None, objective=None):
    """Right answer, but written back into the caller's img: the next call dreams on top of the last dream."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(resize(img, sizes[-1]))
    for size in reversed(sizes):
        base = resize(img, size)
        x = _ascend(base + resize(detail, size), model, layer_index, num_steps, learning_rate, bounds)
        detail = x - base
    img.copy_(x)
    return img


def oct_dx_equals_x(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10, learning_rate=0.02,
                    bounds=None, objective=None):
    """A.backward(A) with .grad reset, bases precomputed smallest first, detail resized at the start of each."""
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)[::-1]
    bases = [resize(img.detach(), s) for s in sizes]
    detail = torch.zeros_like(bases[0])
    for base in bases:
        x = (base + resize(detail, base.shape[-2:])).clone().requires_grad_(True)
        for _ in range(num_steps):
            A = model.features[:layer_index + 1](x)
            A.backward(A if objective is None else objective(A.detach()))
            x.data += learning_rate * x.grad / x.grad.abs().mean()
            if bounds is not None:
                x.data = torch.max(torch.min(x.data, bounds[1]), bounds[0])
            x.grad = None
        detail = x.detach() - base
    return base + detail


def oct_float64(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10, learning_rate=0.02,
                bounds=None, objective=None):
    net = model.features[:layer_index + 1].double()
    img64 = img.double()
    b64 = None if bounds is None else (bounds[0].double(), bounds[1].double())
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = None
    for k in range(num_octaves - 1, -1, -1):
        base = resize(img64, sizes[k])
        x = base if detail is None else base + resize(detail, sizes[k])
        x = x.clone().requires_grad_(True)
        for _ in range(num_steps):
            (g,) = torch.autograd.grad(0.5 * net(x).square().sum(), x)
            with torch.no_grad():
                x += learning_rate * g / g.abs().mean()
                if b64 is not None:
                    x.clamp_(min=b64[0], max=b64[1])
        detail = (x - base).detach()
    model.float()
    return (base + detail).float()


def oct_requires_grad_on_input(img, model, layer_index, num_octaves=3, octave_scale=1.4, num_steps=10,
                               learning_rate=0.02, bounds=None, objective=None):
    """Right values, but switches requires_grad on for the caller's img (and leaves a gradient in img.grad)."""
    img.requires_grad_(True)
    sizes = octave_sizes(img.shape[-2], img.shape[-1], num_octaves, octave_scale)
    detail = torch.zeros_like(resize(img.detach(), sizes[-1]))
    for size in reversed(sizes):
        base = resize(img, size)
        x = base + resize(detail, size)
        for _ in range(num_steps):
            A = model.features[:layer_index + 1](x)
            (g,) = torch.autograd.grad(0.5 * (A ** 2).sum(), x, retain_graph=True)
            x = x + learning_rate * g.detach() / g.abs().mean()
            if bounds is not None:
                x = torch.maximum(torch.minimum(x, bounds[1]), bounds[0])
        detail = (x - base).detach()
    x.sum().backward()
    return x.detach()


# ------------------------------------------------------------------------------------------- guided dreaming


def _dots(activations, guide_features):
    n, c = activations.shape[:2]
    return torch.einsum("ncp,cq->npq", activations.flatten(2), guide_features.reshape(c, -1))


def _pick(activations, guide_features, index):
    n, c, h, w = activations.shape
    y = guide_features.reshape(c, -1)
    return y[:, index].permute(1, 0, 2).reshape(n, c, h, w)


def guide_argmin(activations, guide_features):
    return _pick(activations, guide_features, _dots(activations, guide_features).argmin(dim=2))


def guide_mean(activations, guide_features):
    """The guide's mean feature vector everywhere (what a pooled 'style' of the guide would give)."""
    c = activations.shape[1]
    mean = guide_features.reshape(c, -1).mean(dim=1).view(1, c, 1, 1)
    return mean.expand_as(activations).clone()


def guide_plain_activations(activations, guide_features):
    return activations.clone()


def guide_abs_dot(activations, guide_features):
    return _pick(activations, guide_features, _dots(activations, guide_features).abs().argmax(dim=2))


def guide_nearest_by_distance(activations, guide_features):
    """Closest guide vector in Euclidean distance: not the same as the largest dot product (norms differ)."""
    n, c = activations.shape[:2]
    x = activations.flatten(2).transpose(1, 2)                   # (N, P, C)
    y = guide_features.reshape(c, -1).t().expand(n, -1, -1)       # (N, Q, C)
    return _pick(activations, guide_features, torch.cdist(x, y).argmin(dim=2))


def guide_softmax_weighted(activations, guide_features):
    n, c, h, w = activations.shape
    weights = _dots(activations, guide_features).softmax(dim=2)          # (N, P, Q)
    out = torch.einsum("npq,cq->ncp", weights, guide_features.reshape(c, -1))
    return out.reshape(n, c, h, w)


def guide_assumes_one_image(activations, guide_features):
    """google/deepdream's lines, written for one image: reshape(C, -1) mixes the batch into the positions."""
    c = activations.shape[1]
    x = activations.reshape(c, -1)
    y = guide_features.reshape(c, -1)
    return y[:, (x.t() @ y).argmax(dim=1)].reshape(activations.shape)


def guide_returns_numpy(activations, guide_features):
    """google/deepdream's NumPy lines, and the NumPy array returned as it is."""
    y = guide_features[0].detach().cpu().numpy()
    ch = y.shape[0]
    y = y.reshape(ch, -1)
    return np.stack([y[:, (a.reshape(ch, -1).T.dot(y)).argmax(1)].reshape(a.shape)
                     for a in activations.detach().cpu().numpy()])


def guide_google_per_image(activations, guide_features):
    """google/deepdream's objective_guide, image by image, in NumPy."""
    out = []
    y = guide_features[0].detach().cpu().numpy()
    ch = y.shape[0]
    y = y.reshape(ch, -1)
    for a in activations.detach().cpu().numpy():
        x = a.reshape(ch, -1)
        A = x.T.dot(y)
        out.append(y[:, A.argmax(1)].reshape(a.shape))
    return torch.from_numpy(np.stack(out)).to(activations.dtype)


def guide_loops_float64(activations, guide_features):
    n, c, h, w = activations.shape
    a = activations.double()
    y = guide_features[0].double().reshape(c, -1)
    out = torch.empty_like(a)
    for i in range(n):
        for r in range(h):
            for s in range(w):
                best, best_q = None, 0
                for q in range(y.shape[1]):
                    d = float((a[i, :, r, s] * y[:, q]).sum())
                    if best is None or d > best:
                        best, best_q = d, q
                out[i, :, r, s] = y[:, best_q]
    return out.to(activations.dtype)


def guide_bmm_gather(activations, guide_features):
    n, c, h, w = activations.shape
    x = activations.flatten(2)                                            # (N, C, P)
    y = guide_features.flatten(2).expand(n, -1, -1)                       # (N, C, Q)
    best = torch.bmm(x.transpose(1, 2), y).max(dim=2).indices             # (N, P)
    return torch.gather(y, 2, best.unsqueeze(1).expand(-1, c, -1)).reshape(n, c, h, w)


WRONG = {
    "deepdream_step": {
        "l2_norm": step_l2_norm,
        "max_norm": step_max_norm,
        "no_norm": step_no_norm,
        "sum_of_A": step_sum_of_A,
        "slice_too_short": step_slice_too_short,
        "grad_accumulates": step_grad_accumulates,
        "per_image_mean": step_per_image_mean,
    },
    "deepdream_octaves": {
        "detail_not_carried": oct_detail_not_carried,
        "large_to_small": oct_large_to_small,
        "large_to_small_resized": oct_large_to_small_resized,
        "carries_image_not_detail": oct_carries_image,
        "shrinks_previous_octave": oct_shrinks_previous_octave,
        "unnormalized_steps": oct_unnormalized_steps,
        "no_clamp": oct_no_clamp,
        "overwrites_input": oct_overwrites_input,
        "requires_grad_on_input": oct_requires_grad_on_input,
    },
    "guided_gradient": {
        "argmin": guide_argmin,
        "guide_mean": guide_mean,
        "plain_activations": guide_plain_activations,
        "abs_dot": guide_abs_dot,
        "nearest_by_distance": guide_nearest_by_distance,
        "softmax_weighted": guide_softmax_weighted,
        "assumes_one_image": guide_assumes_one_image,
        "returns_numpy": guide_returns_numpy,
    },
}

CORRECT = {
    "deepdream_step": {
        "dx_equals_x": step_dx_equals_x,
        "zero_grad_first": step_zero_grad_first,
        "autograd_grad_outputs": step_autograd_grad_outputs,
        "float64": step_float64,
        "layer_loop": step_layer_loop,
    },
    "deepdream_octaves": {
        "dx_equals_x": oct_dx_equals_x,
        "float64": oct_float64,
    },
    "guided_gradient": {
        "google_per_image": guide_google_per_image,
        "loops_float64": guide_loops_float64,
        "bmm_gather": guide_bmm_gather,
    },
}
