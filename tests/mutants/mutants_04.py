"""Variants of the graded functions of 04_neural_style, written as a student might.

``WRONG[question_id]`` maps a mutant's name to a function that must lose points on that question (and only
there); ``CORRECT[question_id]`` maps a name to a function written differently from the reference that must get
full marks. ``tests/test_mutants_04.py`` grades every one of them through the engine.

Each variant replaces exactly one function of an otherwise correct submission (a real ``style_loss`` calls the
student's ``gram_matrix``; here the style-loss variants use a correct Gram matrix, except where the mistake is the
point). The mistakes the grader names (``KNOWN_MISTAKES`` in autograder/questions/04_neural_style.py) are the
functions in utils/reference/neural_style.py, graded here as they are.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from utils.reference import neural_style as ns

# -------------------------------------------------------------------------------------------- content_loss




def content_norm_not_squared(content_weight, content_current, content_original):
    return content_weight * torch.norm(content_current - content_original)


def content_l1(content_weight, content_current, content_original):
    return content_weight * (content_current - content_original).abs().sum()


def content_half(content_weight, content_current, content_original):
    """Gatys et al.'s 1/2 factor, which the assignment's formula does not have."""
    return 0.5 * content_weight * ((content_current - content_original) ** 2).sum()


def content_mse_sum(content_weight, content_current, content_original):
    return content_weight * F.mse_loss(content_current, content_original, reduction="sum")


def content_float64_loop(content_weight, content_current, content_original):
    a = content_current.detach().double().reshape(-1)
    b = content_original.detach().double().reshape(-1)
    total = 0.0
    for x, y in zip(a.tolist(), b.tolist()):
        total += (x - y) ** 2
    return torch.tensor(content_weight * total)


def content_norm_squared(content_weight, content_current, content_original):
    return content_weight * torch.linalg.vector_norm(content_current - content_original) ** 2


# --------------------------------------------------------------------------------------------- gram_matrix





def gram_over_positions(features, normalize=True):
    """``V V^T`` with V = (C, H*W): an (H*W, H*W) matrix of positions instead of channels."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat.transpose(1, 2) @ flat
    return gram / (c * h * w) if normalize else gram


def gram_always_normalized(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_default_false(features, normalize=False):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat @ flat.transpose(1, 2)
    return gram / (c * h * w) if normalize else gram


def gram_einsum(features, normalize=True):
    n, c, h, w = features.shape
    gram = torch.einsum("nchw,ndhw->ncd", features, features)
    return gram / (c * h * w) if normalize else gram


def gram_bmm(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.view(n, c, -1)
    gram = torch.bmm(flat, flat.permute(0, 2, 1))
    if normalize:
        gram = gram / (h * w) / c
    return gram


def gram_loop_float64(features, normalize=True):
    n, c, h, w = features.shape
    out = []
    for i in range(n):
        v = features[i].double().reshape(c, -1)
        g = v @ v.t()
        out.append(g / (c * h * w) if normalize else g)
    return torch.stack(out).float()


def gram_zeros_on_device(features, normalize=True):
    """A preallocated result, as 12 of 34 public cs231n solutions write it, but on the input's device."""
    n, c, h, w = features.shape
    gram = torch.zeros(n, c, c, device=features.device, dtype=features.dtype)
    for i in range(n):
        v = features[i].reshape(c, -1)
        gram[i] = v @ v.t()
    return gram / (c * h * w) if normalize else gram


# ---------------------------------------------------------------------------------------------- style_loss


def _gram(f):
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)




def style_unnormalized_gram(feats, style_layers, style_targets, style_weights):
    loss = 0
    for i, layer in enumerate(style_layers):
        n, c, h, w = feats[layer].shape
        g = _gram(feats[layer]) * (c * h * w)
        loss = loss + style_weights[i] * ((g - style_targets[i]) ** 2).sum()
    return loss


def style_mean(feats, style_layers, style_targets, style_weights):
    loss = 0
    for i, layer in enumerate(style_layers):
        loss = loss + style_weights[i] * ((_gram(feats[layer]) - style_targets[i]) ** 2).mean()
    return loss


def style_feats_in_order(feats, style_layers, style_targets, style_weights):
    """``feats[i]`` instead of ``feats[style_layers[i]]``."""
    loss = 0
    for i in range(len(style_layers)):
        loss = loss + style_weights[i] * ((_gram(feats[i]) - style_targets[i]) ** 2).sum()
    return loss


def style_einsum_float64(feats, style_layers, style_targets, style_weights):
    loss = torch.zeros((), dtype=torch.float64)
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        f = feats[layer].double()
        n, c, h, w = f.shape
        g = torch.einsum("nchw,ndhw->ncd", f, f) / (c * h * w)
        loss = loss + weight * torch.sum((g - target.double()) ** 2)
    return loss


def style_sum_generator(feats, style_layers, style_targets, style_weights):
    return sum(style_weights[i] * F.mse_loss(_gram(feats[l]), style_targets[i].expand(feats[l].shape[0], -1, -1),
                                             reduction="sum")
               for i, l in enumerate(style_layers))


def style_python_float(feats, style_layers, style_targets, style_weights):
    """Accumulates a Python float (no graph; the grader only compares values)."""
    total = 0.0
    for i, l in enumerate(style_layers):
        total += float(style_weights[i] * ((_gram(feats[l].detach()) - style_targets[i]) ** 2).sum())
    return total


# ------------------------------------------------------------------------------------------------- tv_loss





def tv_mean(img, tv_weight):
    return tv_weight * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).mean()
                        + ((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2).mean())


def tv_wraparound(img, tv_weight):
    """torch.roll also counts the difference between the last and the first row / column."""
    return tv_weight * (((img - img.roll(1, dims=2)) ** 2).sum() + ((img - img.roll(1, dims=3)) ** 2).sum())


def tv_diff(img, tv_weight):
    return tv_weight * (torch.diff(img, dim=2).pow(2).sum() + torch.diff(img, dim=3).pow(2).sum())


def tv_conv(img, tv_weight):
    c = img.shape[1]
    kv = torch.tensor([[-1.0], [1.0]], dtype=img.dtype, device=img.device).view(1, 1, 2, 1).repeat(c, 1, 1, 1)
    kh = torch.tensor([[-1.0, 1.0]], dtype=img.dtype, device=img.device).view(1, 1, 1, 2).repeat(c, 1, 1, 1)
    return tv_weight * (F.conv2d(img, kv, groups=c).pow(2).sum() + F.conv2d(img, kh, groups=c).pow(2).sum())


def tv_loop_float64(img, tv_weight):
    a = img.detach().double()
    n, c, h, w = a.shape
    total = torch.zeros((), dtype=torch.float64)
    for y in range(h - 1):
        total = total + ((a[:, :, y + 1] - a[:, :, y]) ** 2).sum()
    for x in range(w - 1):
        total = total + ((a[:, :, :, x + 1] - a[:, :, :, x]) ** 2).sum()
    return tv_weight * total


# ------------------------------------------------------------------------------------------ preserve_color

_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def _apply(m, img):
    return torch.einsum("kc,nchw->nkhw", m.to(img), img)




def colour_channel_mean_luma(stylized, content):
    """Luminance as the plain mean of R, G and B instead of the BT.601 weights."""
    return (content + (stylized.mean(1, keepdim=True) - content.mean(1, keepdim=True))).clamp(0, 1)


def colour_bt709(stylized, content):
    """Another luma (BT.709's 0.2126, 0.7152, 0.0722) than the one the assignment fixes."""
    w = torch.tensor([0.2126, 0.7152, 0.0722], dtype=stylized.dtype).view(1, 3, 1, 1)
    y = lambda x: (x * w).sum(1, keepdim=True)  # noqa: E731
    return (content + y(stylized) - y(content)).clamp(0, 1)


def colour_closed_form(stylized, content):
    w = torch.tensor([0.299, 0.587, 0.114], dtype=stylized.dtype).view(1, 3, 1, 1)
    dy = ((stylized - content) * w).sum(dim=1, keepdim=True)
    return torch.clamp(content + dy, 0.0, 1.0)


def colour_yuv(stylized, content):
    """YUV (BT.601): another chrominance pair, the same luma, so the same result."""
    m = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]],
                     dtype=torch.float64)
    s, c = _apply(m, stylized.double()), _apply(m, content.double())
    out = _apply(torch.linalg.inv(m), torch.cat([s[:, :1], c[:, 1:]], dim=1))
    return out.clamp(0, 1).float()


def colour_ycbcr_offsets(stylized, content):
    """JPEG's YCbCr with its 0.5 chroma offsets, computed in NumPy."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    off = np.array([0.0, 0.5, 0.5]).reshape(1, 3, 1, 1)
    s = np.einsum("kc,nchw->nkhw", m, stylized.detach().cpu().numpy().astype(np.float64)) + off
    c = np.einsum("kc,nchw->nkhw", m, content.detach().cpu().numpy().astype(np.float64)) + off
    mixed = np.concatenate([s[:, :1], c[:, 1:]], axis=1) - off
    out = np.einsum("ck,nkhw->nchw", np.linalg.inv(m), mixed)
    return torch.from_numpy(np.clip(out, 0, 1)).float()


def colour_rounded_inverse(stylized, content):
    """The 3-digit inverse printed in most references (R = Y + 0.956 I + 0.619 Q, ...)."""
    inv = torch.tensor([[1.0, 0.956, 0.619], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
    ys, yc = _apply(_YIQ, stylized), _apply(_YIQ, content)
    return _apply(inv, torch.cat([ys[:, :1], yc[:, 1:]], dim=1)).clamp(0, 1)


def colour_per_pixel_loop(stylized, content):
    inv = torch.linalg.inv(_YIQ.double())
    out = torch.empty_like(stylized)
    n, _, h, w = stylized.shape
    for i in range(n):
        s = _YIQ.double() @ stylized[i].double().reshape(3, -1)
        c = _YIQ.double() @ content[i].double().reshape(3, -1)
        out[i] = (inv @ torch.cat([s[:1], c[1:]])).reshape(3, h, w).clamp(0, 1).float()
    return out


# ------------------------------------------------------------------------------------- blend_style_targets




def blend_reversed(style_targets, weights):
    w = torch.as_tensor(list(weights)[::-1], dtype=style_targets[0].dtype)
    w = w / w.sum()
    return [(w.view(-1, 1, 1) * t).sum(0, keepdim=True) for t in style_targets]


def blend_no_keepdim(style_targets, weights):
    w = torch.as_tensor(weights, dtype=style_targets[0].dtype)
    w = w / w.sum()
    return [(w.view(-1, 1, 1) * t).sum(0) for t in style_targets]


def blend_l2_normalized(style_targets, weights):
    w = torch.as_tensor(weights, dtype=style_targets[0].dtype)
    w = w / w.norm()
    return [(w.view(-1, 1, 1) * t).sum(0, keepdim=True) for t in style_targets]


def blend_loop(style_targets, weights):
    total = float(sum(weights))
    out = []
    for t in style_targets:
        acc = torch.zeros_like(t[:1])
        for s, w in enumerate(weights):
            acc = acc + (w / total) * t[s:s + 1]
        out.append(acc)
    return out


def blend_einsum_tuple(style_targets, weights):
    w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    w = (w / w.sum()).float()
    return tuple(torch.einsum("s,sij->ij", w, t)[None] for t in style_targets)


def blend_tensordot(style_targets, weights):
    w = torch.as_tensor(weights, dtype=torch.float32)
    return [torch.tensordot(w, t, dims=1).unsqueeze(0) / w.sum() for t in style_targets]


WRONG = {
    "content_loss": {"mean": ns.content_loss_mean, "no_weight": ns.content_loss_unweighted, "norm_not_squared": content_norm_not_squared,
                     "l1": content_l1, "half": content_half},
    "gram_matrix": {"not_normalized": ns.gram_matrix_not_normalized, "hw_only": ns.gram_matrix_hw_only,
                    "view_c_mixes_batch": ns.gram_matrix_view_c, "over_positions": gram_over_positions,
                    "always_normalized": gram_always_normalized, "default_false": gram_default_false},
    "style_loss": {"sqrt": ns.style_loss_sqrt, "no_weights": ns.style_loss_unweighted, "unnormalized_gram": style_unnormalized_gram,
                   "mean": style_mean, "feats_in_order": style_feats_in_order},
    "tv_loss": {"abs": ns.tv_loss_abs, "horizontal_only": ns.tv_loss_horizontal_only,
                "vertical_only": ns.tv_loss_vertical_only,
                "mean": tv_mean, "wraparound": tv_wraparound},
    "preserve_color": {"swapped": ns.preserve_color_swapped, "no_clamp": ns.preserve_color_unclamped,
                       "channel_mean_luma": colour_channel_mean_luma, "bt709": colour_bt709},
    "blend_style_targets": {"unnormalized": ns.blend_style_targets_unnormalized,
                            "plain_mean": ns.blend_style_targets_plain_mean,
                            "reversed": blend_reversed, "no_keepdim": blend_no_keepdim,
                            "l2_normalized": blend_l2_normalized},
}

CORRECT = {
    "content_loss": {"mse_sum": content_mse_sum, "float64_loop": content_float64_loop,
                     "norm_squared": content_norm_squared},
    "gram_matrix": {"einsum": gram_einsum, "bmm": gram_bmm, "loop_float64": gram_loop_float64,
                    "zeros_on_device": gram_zeros_on_device},
    "style_loss": {"einsum_float64": style_einsum_float64, "sum_generator": style_sum_generator,
                   "python_float": style_python_float},
    "tv_loss": {"diff": tv_diff, "conv": tv_conv, "loop_float64": tv_loop_float64},
    "preserve_color": {"closed_form": colour_closed_form, "yuv": colour_yuv, "ycbcr_offsets": colour_ycbcr_offsets,
                       "rounded_inverse": colour_rounded_inverse, "per_pixel_loop": colour_per_pixel_loop},
    "blend_style_targets": {"loop": blend_loop, "einsum_tuple": blend_einsum_tuple, "tensordot": blend_tensordot},
}
