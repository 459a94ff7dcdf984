"""Variants of the graded functions of 01_saliency_class_visualization, written as a student might.

``WRONG[question_id]`` maps a mutant's name to a function that must lose points on that question (and only
there); ``CORRECT[question_id]`` maps a name to a function written differently from the reference that must get
full marks. ``tests/test_mutants_01.py`` grades every one of them through the engine.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from utils.reference.class_visualization import class_step_l2_added, class_step_unnormalized
from utils.reference.saliency import saliency_signed_gradient, saliency_softmax_probability, saliency_sum_over_channels

# ------------------------------------------------------------------------------------------------- saliency


def sal_log_softmax(X, y, model):
    X = X.clone().requires_grad_(True)
    F.cross_entropy(model(X), y, reduction="sum").backward()
    return X.grad.abs().amax(dim=1)


def sal_mean_channels(X, y, model):
    X = X.clone().requires_grad_(True)
    model(X).gather(1, y.view(-1, 1)).sum().backward()
    return X.grad.abs().mean(dim=1)


def sal_hardcoded_batch(X, y, model):
    X = X.clone().requires_grad_(True)
    scores = model(X)
    scores[torch.arange(2), y[:2]].sum().backward()        # the public case has N = 2
    return X.grad.abs().amax(dim=1)


def sal_all_scores(X, y, model):
    X = X.clone().requires_grad_(True)
    model(X).sum().backward()                              # forgot to pick the correct class
    return X.grad.abs().amax(dim=1)


def sal_first_channel(X, y, model):
    X = X.clone().requires_grad_(True)
    model(X).gather(1, y.view(-1, 1)).sum().backward()
    return X.grad[:, 0].abs()


def sal_mean_score(X, y, model):
    """Mean instead of sum of the selected scores: every gradient divided by N (wrong unless N = 1)."""
    X = X.clone().requires_grad_(True)
    model(X).gather(1, y.view(-1, 1)).mean().backward()
    return X.grad.abs().amax(dim=1)


def sal_loop(X, y, model):
    out = []
    for i in range(X.shape[0]):
        xi = X[i:i + 1].detach().clone().requires_grad_(True)
        model(xi)[0, int(y[i])].backward()
        out.append(xi.grad[0].abs().max(dim=0).values)
    return torch.stack(out)


def sal_float64(X, y, model):
    m64 = copy.deepcopy(model).double()
    X64 = X.double().requires_grad_(True)
    s = m64(X64)
    (g,) = torch.autograd.grad(s[torch.arange(X.shape[0]), y].sum(), X64)
    return g.abs().max(dim=1).values.to(X.dtype)


def sal_one_hot_backward(X, y, model):
    """The lecture's recipe: set the upstream gradient to a one-hot vector and backprop."""
    X = X.clone().requires_grad_(True)
    scores = model(X)
    scores.backward(F.one_hot(y, scores.shape[1]).to(scores.dtype))
    return torch.max(torch.abs(X.grad), dim=1)[0]


# ------------------------------------------------------------------------------------- class update step


def cls_descent(img, model, target_y, l2_reg, learning_rate):
    obj = model(img)[0, target_y] - l2_reg * img.pow(2).sum()
    obj.backward()
    with torch.no_grad():
        img -= learning_rate * img.grad / img.grad.norm()
        img.grad.zero_()


def cls_no_grad_reset(img, model, target_y, l2_reg, learning_rate):
    obj = model(img)[0, target_y] - l2_reg * img.pow(2).sum()
    obj.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.norm()   # img.grad keeps growing call after call


def cls_l2_not_squared(img, model, target_y, l2_reg, learning_rate):
    obj = model(img)[0, target_y] - l2_reg * img.norm()
    obj.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.norm()
        img.grad.zero_()


def cls_softmax(img, model, target_y, l2_reg, learning_rate):
    obj = F.log_softmax(model(img), dim=1)[0, target_y] - l2_reg * img.pow(2).sum()
    obj.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.norm()
        img.grad.zero_()


def cls_mean_abs_normalization(img, model, target_y, l2_reg, learning_rate):
    """DeepDream's normalization (mean |g|) instead of the L2 norm."""
    obj = model(img)[0, target_y] - l2_reg * img.pow(2).sum()
    obj.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.abs().mean()
        img.grad.zero_()


def cls_zero_after(img, model, target_y, l2_reg, learning_rate):
    """cs231n's habit: backward, step, then zero the gradient."""
    score = model(img)[0, target_y] - l2_reg * img.norm() ** 2
    score.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.norm()
        img.grad.zero_()


def cls_zero_before(img, model, target_y, l2_reg, learning_rate):
    img.grad = None
    obj = model(img)[0, target_y] - l2_reg * (img * img).sum()
    obj.backward()
    with torch.no_grad():
        img.add_(learning_rate * img.grad / torch.linalg.vector_norm(img.grad))


def cls_autograd_float64(img, model, target_y, l2_reg, learning_rate):
    m64 = copy.deepcopy(model).double()
    x = img.detach().double().requires_grad_(True)
    obj = m64(x)[0, target_y] - l2_reg * torch.sum(x ** 2)
    (g,) = torch.autograd.grad(obj, x)
    with torch.no_grad():
        img += (learning_rate * g / torch.sqrt((g ** 2).sum())).to(img.dtype)


def cls_eps_guard(img, model, target_y, l2_reg, learning_rate):
    obj = model(img)[0, target_y] - l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(obj, img)
    with torch.no_grad():
        img.data += learning_rate * g / (torch.linalg.norm(g) + 1e-8)


# ------------------------------------------------------------------------------------------------ regularizers


def blur_wrong_sigma(img, sigma):
    from utils.image import blur
    return blur(img, 2 * sigma)


def blur_box(img, sigma):
    k = 2 * int(round(sigma)) + 1
    return F.avg_pool2d(F.pad(img, [k // 2] * 4, mode="reflect"), k, stride=1)


def blur_library(img, sigma):
    from utils.image import blur
    return blur(img.clone(), float(sigma))


def norm_global_percentile(img, percentile):
    v = img.norm(dim=1)
    t = torch.quantile(v.flatten(), percentile / 100)
    return img * (v >= t).unsqueeze(1)


def norm_per_channel(img, percentile):
    n = img.shape[0]
    t = torch.quantile(img.abs().reshape(n, -1), percentile / 100, dim=1).view(n, 1, 1, 1)
    return img * (img.abs() >= t)


def norm_keep_small(img, percentile):
    v = img.norm(dim=1)
    t = torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1)
    return img * (v < t).unsqueeze(1)



def norm_l1(img, percentile):
    v = img.abs().sum(dim=1)
    t = torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1)
    return img * (v >= t).unsqueeze(1)


def norm_numpy_loop(img, percentile):
    import numpy as np
    out = img.clone()
    for i in range(img.shape[0]):
        v = np.linalg.norm(img[i].numpy().astype(np.float64), axis=0)
        out[i, :, torch.from_numpy(v < np.percentile(v, percentile))] = 0
    return out


def norm_squared(img, percentile):
    v = (img ** 2).sum(dim=1)                               # same order as the norm: same pixels
    t = torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1)
    return torch.where((v < t).unsqueeze(1), torch.zeros_like(img), img)


def contrib_no_abs(img, grad, percentile):
    v = (img * grad).sum(dim=1)
    t = torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1)
    return img * (v >= t).unsqueeze(1)


def contrib_abs_inside(img, grad, percentile):
    v = (img * grad).abs().sum(dim=1)
    t = torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1)
    return img * (v >= t).unsqueeze(1)


def contrib_grad_only(img, grad, percentile):
    v = grad.norm(dim=1)
    t = torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1)
    return img * (v >= t).unsqueeze(1)


def contrib_global(img, grad, percentile):
    v = (img * grad).sum(dim=1).abs()
    t = torch.quantile(v.flatten(), percentile / 100)
    return img * (v >= t).unsqueeze(1)


def contrib_loop(img, grad, percentile):
    out = img.clone()
    for i in range(img.shape[0]):
        v = torch.einsum("chw,chw->hw", img[i].double(), grad[i].double()).abs()
        t = torch.quantile(v.flatten(), percentile / 100.0)
        out[i][:, v < t] = 0.0
    return out


# ----------------------------------------------------------------------------------------- neuron update step


def neuron_off_by_one(img, model, layer_index, channel, l2_reg, learning_rate):
    obj = model.features[:layer_index](img)[0, channel].mean() - l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(obj, img)
    with torch.no_grad():
        img += learning_rate * g / g.norm()


def neuron_centre(img, model, layer_index, channel, l2_reg, learning_rate):
    a = model.features[:layer_index + 1](img)[0, channel]
    obj = a[a.shape[0] // 2, a.shape[1] // 2] - l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(obj, img)
    with torch.no_grad():
        img += learning_rate * g / g.norm()


def neuron_sum(img, model, layer_index, channel, l2_reg, learning_rate):
    obj = model.features[:layer_index + 1](img)[0, channel].sum() - l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(obj, img)
    with torch.no_grad():
        img += learning_rate * g / g.norm()


def neuron_whole_layer(img, model, layer_index, channel, l2_reg, learning_rate):
    obj = model.features[:layer_index + 1](img).mean() - l2_reg * img.pow(2).sum()
    (g,) = torch.autograd.grad(obj, img)
    with torch.no_grad():
        img += learning_rate * g / g.norm()


def neuron_no_reset(img, model, layer_index, channel, l2_reg, learning_rate):
    obj = model.features[:layer_index + 1](img)[0, channel].mean() - l2_reg * img.pow(2).sum()
    obj.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.norm()


def neuron_loop_layers(img, model, layer_index, channel, l2_reg, learning_rate):
    img.grad = None
    x = img
    layers = list(model.features)
    for layer in layers[:len(layers) if layer_index == -1 else layer_index + 1]:
        x = layer(x)
    obj = x[0, channel].mean() - l2_reg * img.norm() ** 2
    obj.backward()
    with torch.no_grad():
        img += learning_rate * img.grad / img.grad.norm()
    img.grad.zero_()


WRONG = {
    "compute_saliency_maps": {
        "softmax_probability": saliency_softmax_probability,
        "log_softmax": sal_log_softmax,
        "signed_gradient": saliency_signed_gradient,
        "sum_over_channels": saliency_sum_over_channels,
        "mean_over_channels": sal_mean_channels,
        "hardcoded_batch": sal_hardcoded_batch,
        "all_scores": sal_all_scores,
        "first_channel": sal_first_channel,
        "mean_of_scores": sal_mean_score,
    },
    "class_visualization_update_step": {
        "descent": cls_descent,
        "no_normalization": class_step_unnormalized,
        "l2_wrong_sign": class_step_l2_added,
        "no_grad_reset": cls_no_grad_reset,
        "l2_not_squared": cls_l2_not_squared,
        "log_softmax": cls_softmax,
        "mean_abs_normalization": cls_mean_abs_normalization,
    },
    "blur_image": {
        "double_sigma": blur_wrong_sigma,
        "box_filter": blur_box,
    },
    "zero_small_norm_pixels": {
        "global_percentile": norm_global_percentile,
        "per_channel": norm_per_channel,
        "keep_small": norm_keep_small,
        "l1_norm": norm_l1,
    },
    "zero_small_contribution_pixels": {
        "signed": contrib_no_abs,
        "abs_inside_sum": contrib_abs_inside,
        "gradient_only": contrib_grad_only,
        "global_percentile": contrib_global,
    },
    "neuron_visualization_update_step": {
        "off_by_one_layer": neuron_off_by_one,
        "centre_neuron": neuron_centre,
        "sum_not_mean": neuron_sum,
        "whole_layer": neuron_whole_layer,
        "no_grad_reset": neuron_no_reset,
    },
}

CORRECT = {
    "compute_saliency_maps": {
        "per_image_loop": sal_loop,
        "float64_inside": sal_float64,
        "one_hot_backward": sal_one_hot_backward,
    },
    "class_visualization_update_step": {
        "zero_grad_after": cls_zero_after,
        "zero_grad_before": cls_zero_before,
        "autograd_float64": cls_autograd_float64,
        "eps_guard": cls_eps_guard,
    },
    "blur_image": {
        "library_call": blur_library,
    },
    "zero_small_norm_pixels": {
        "numpy_loop": norm_numpy_loop,
        "squared_norm": norm_squared,
    },
    "zero_small_contribution_pixels": {
        "float64_loop": contrib_loop,
    },
    "neuron_visualization_update_step": {
        "layer_loop_backward": neuron_loop_layers,
    },
}
