"""Neural style transfer (Gatys, Ecker and Bethge, CVPR 2016) with a total-variation smoothness prior.

An image ``x`` is optimized so that its deep features keep the *content* of one image and the feature
*correlations* (Gram matrices) of another:

    L(x) = w_c ||F_l(x) - F_l(content)||^2
         + sum_i w_i ||G(F_{l_i}(x)) - G(F_{l_i}(style))||^2
         + w_tv TV(x)

with ``F_l`` the features of layer ``l`` (see :func:`utils.models.extract_features`), ``G`` the Gram matrix of a
feature map and ``TV`` the squared total variation. Every function returns a 0-d tensor or a tensor in the graph
of its inputs, so ``loss.backward()`` reaches the image. Signatures follow the cs231n assignment.

Two options of jcjohnson/neural-style, graded too (no cs231n counterpart):

* :func:`preserve_color` (Gatys et al., "Preserving color in neural artistic style transfer", 2016): keep the
  luminance of the stylized image and the chrominance of the content image, in YIQ space (BT.601 luma);
* :func:`blend_style_targets`: several style images at once, their Gram matrices mixed with weights that are
  normalized to sum to 1 (as ``-style_blend_weights`` does), so one set of style weights serves any blend.

Graded: :func:`content_loss`, :func:`gram_matrix`, :func:`style_loss`, :func:`tv_loss`, :func:`preserve_color`,
:func:`blend_style_targets`.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["content_loss", "gram_matrix", "style_loss", "tv_loss", "preserve_color", "blend_style_targets"]

#: RGB (pixel values in [0, 1]) -> YIQ (FCC NTSC): row 0 is the BT.601 luma Y, rows 1-2 the chrominance I, Q.
#: The chrominance rows sum to exactly 0 (a grey pixel has no chrominance), so the inverse maps (Y, 0, 0) to
#: (Y, Y, Y): a change of luminance adds the same amount to R, G and B.
RGB_TO_YIQ = ((0.299, 0.587, 0.114),
              (0.595716, -0.274453, -0.321263),
              (0.211456, -0.522591, 0.311135))


def content_loss(content_weight: float, content_current: torch.Tensor,
                 content_original: torch.Tensor) -> torch.Tensor:
    """``content_weight * sum((content_current - content_original)^2)``.

    Args:
        content_weight: scalar weight ``w_c``.
        content_current: ``(N, C, H, W)`` features of the image being optimized.
        content_original: ``(N, C, H, W)`` features of the content image.
    Returns:
        0-d tensor.
    """
    if content_current.shape != content_original.shape:
        raise ValueError(f"content_loss: features of shape {tuple(content_current.shape)} and "
                         f"{tuple(content_original.shape)} differ; take both from the same layer")
    return content_weight * (content_current - content_original).pow(2).sum()


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Gram matrix of each feature map: ``G[n, i, j] = sum_{h,w} F[n, i, h, w] F[n, j, h, w]``.

    Args:
        features: ``(N, C, H, W)``.
        normalize: divide by ``C * H * W`` (the number of feature values), so layers of different sizes weigh
            alike.
    Returns:
        ``(N, C, C)``, symmetric.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = flat @ flat.transpose(1, 2)
    return gram / (c * h * w) if normalize else gram


def style_loss(feats: Sequence[torch.Tensor], style_layers: Sequence[int], style_targets: Sequence[torch.Tensor],
               style_weights: Sequence[float]) -> torch.Tensor:
    """``sum_i style_weights[i] * sum((gram_matrix(feats[style_layers[i]]) - style_targets[i])^2)``.

    Args:
        feats: the features of the image being optimized, one tensor per layer (``extract_features``).
        style_layers: indices into ``feats``.
        style_targets: ``style_targets[i]`` is the (normalized) Gram matrix ``(N, C_i, C_i)`` of the style image
            at layer ``style_layers[i]``.
        style_weights: one scalar weight per style layer.
    Returns:
        0-d tensor.
    """
    if not len(style_layers) == len(style_targets) == len(style_weights):
        raise ValueError(f"style_loss: {len(style_layers)} layers, {len(style_targets)} targets and "
                         f"{len(style_weights)} weights; give one target and one weight per layer")
    loss = feats[0].new_zeros(())
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        loss = loss + weight * (gram_matrix(feats[layer]) - target).pow(2).sum()
    return loss


def tv_loss(img: torch.Tensor, tv_weight: float) -> torch.Tensor:
    """Squared total variation: ``tv_weight`` times the sum of squared differences between vertically and
    horizontally adjacent pixels, over every channel and image.

    Args:
        img: ``(N, C, H, W)``.
        tv_weight: scalar weight ``w_tv``.
    Returns:
        0-d tensor.
    """
    down = img[:, :, 1:, :] - img[:, :, :-1, :]
    right = img[:, :, :, 1:] - img[:, :, :, :-1]
    return tv_weight * (down.pow(2).sum() + right.pow(2).sum())


def _colour_matrices(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.tensor(RGB_TO_YIQ, dtype=torch.float64)
    return m.to(like), torch.linalg.inv(m).to(like)


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance of ``stylized`` with the chrominance of ``content``, in YIQ space, clamped to [0, 1].

    ``out = clamp(M^-1 [Y(stylized); I(content); Q(content)], 0, 1)`` with ``M`` = :data:`RGB_TO_YIQ` applied to
    every pixel's (R, G, B). Equivalently ``content + (Y(stylized) - Y(content))`` on every channel, then clamped.

    Args:
        stylized: ``(N, 3, H, W)`` RGB pixel values in [0, 1] (the result of style transfer, unnormalized).
        content: ``(N, 3, H, W)`` RGB pixel values in [0, 1], the same shape.
    Returns:
        ``(N, 3, H, W)`` new tensor in [0, 1]; the inputs are not modified.
    """
    if stylized.shape != content.shape or stylized.dim() != 4 or stylized.shape[1] != 3:
        raise ValueError(f"preserve_color: expected two RGB batches (N, 3, H, W) of the same shape, got "
                         f"{tuple(stylized.shape)} and {tuple(content.shape)}")
    m, m_inv = _colour_matrices(stylized)
    yiq_s = torch.einsum("kc,nchw->nkhw", m, stylized)
    yiq_c = torch.einsum("kc,nchw->nkhw", m, content.to(stylized))
    mixed = torch.cat([yiq_s[:, :1], yiq_c[:, 1:]], dim=1)            # Y from the stylized, I and Q from the content
    return torch.einsum("ck,nkhw->nchw", m_inv, mixed).clamp(0.0, 1.0)


def blend_style_targets(style_targets: Sequence[torch.Tensor], weights) -> list[torch.Tensor]:
    """Blend the style targets of several style images: ``sum_s w_s G_s / sum_s w_s`` at every style layer.

    Args:
        style_targets: one tensor per style layer, ``(S, C_l, C_l)``: the Gram matrices of ``S`` style images
            (row ``s`` = style image ``s``; what :func:`gram_matrix` gives for a batch of ``S`` style images).
        weights: ``S`` non-negative numbers (a list or a 1-D tensor), not all zero; normalized to sum to 1.
    Returns:
        A list with one ``(1, C_l, C_l)`` tensor per style layer, ready to be a ``style_targets`` entry of
        :func:`style_loss`.
    """
    w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
    if (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"blend_style_targets: weights must be non-negative and not all zero, got {w.tolist()}")
    w = w / w.sum()
    out = []
    for i, target in enumerate(style_targets):
        if target.dim() != 3 or target.shape[0] != w.numel():
            raise ValueError(f"blend_style_targets: style_targets[{i}] has shape {tuple(target.shape)}; expected "
                             f"({w.numel()}, C, C), one Gram matrix per weight")
        out.append((w.to(target).view(-1, 1, 1) * target).sum(dim=0, keepdim=True))
    return out


# ------------------------------------------------------------------------------------------------------------
# Known mistakes (not graded answers, not in ``__all__``): each has a graded function's signature and makes one
# typical mistake. ``autograder/questions/04_neural_style.py`` names them (``Question.mistakes``) so the grader can
# tell a student which mistake their wrong values come from; the mutant corpus (``tests/mutants/mutants_04.py``)
# grades these same functions, so each is tested to lose points on its own question only.
# ------------------------------------------------------------------------------------------------------------


def content_loss_mean(content_weight, content_current, content_original):
    """A mean of the squared differences instead of their sum."""
    return content_weight * (content_current - content_original).pow(2).mean()


def content_loss_unweighted(content_weight, content_current, content_original):
    """``content_weight`` never applied."""
    return (content_current - content_original).pow(2).sum()


def _raw_gram(features):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2)


def gram_matrix_not_normalized(features, normalize=True):
    """Never divided by ``C * H * W``."""
    return _raw_gram(features)


def gram_matrix_hw_only(features, normalize=True):
    """Divided by ``H * W`` only (the number of positions, not of values)."""
    gram = _raw_gram(features)
    return gram / (features.shape[2] * features.shape[3]) if normalize else gram


def gram_matrix_view_c(features, normalize=True):
    """The one-image recipe ``features.view(C, -1)``: for ``N > 1`` its rows mix the images of the batch."""
    n, c, h, w = features.shape
    flat = features.reshape(c, -1)
    gram = (flat @ flat.t()).unsqueeze(0).expand(n, c, c)
    return gram / (c * h * w) if normalize else gram


def style_loss_sqrt(feats, style_layers, style_targets, style_weights):
    """Each layer's weight times the Frobenius norm of the difference (a square root too many)."""
    return sum(w * (gram_matrix(feats[l]) - t).norm() for l, t, w in zip(style_layers, style_targets, style_weights))


def style_loss_unweighted(feats, style_layers, style_targets, style_weights):
    """``style_weights`` never applied."""
    return sum((gram_matrix(feats[l]) - t).pow(2).sum() for l, t in zip(style_layers, style_targets))


def tv_loss_abs(img, tv_weight):
    """Absolute differences (L1 total variation) instead of squared ones."""
    return tv_weight * ((img[:, :, 1:] - img[:, :, :-1]).abs().sum()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum())


def tv_loss_horizontal_only(img, tv_weight):
    """Only the differences between horizontal neighbours."""
    return tv_weight * (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).sum()


def tv_loss_vertical_only(img, tv_weight):
    """Only the differences between vertical neighbours."""
    return tv_weight * (img[:, :, 1:] - img[:, :, :-1]).pow(2).sum()


def preserve_color_swapped(stylized, content):
    """Luminance of the content and chrominance of the stylized image: the other way round."""
    return preserve_color(content, stylized)


def preserve_color_unclamped(stylized, content):
    """The recombined colours not clamped to [0, 1]."""
    m, m_inv = _colour_matrices(stylized)
    yiq_s = torch.einsum("kc,nchw->nkhw", m, stylized)
    yiq_c = torch.einsum("kc,nchw->nkhw", m, content.to(stylized))
    return torch.einsum("ck,nkhw->nchw", m_inv, torch.cat([yiq_s[:, :1], yiq_c[:, 1:]], dim=1))


def blend_style_targets_unnormalized(style_targets, weights):
    """``sum_s w_s G_s`` without dividing by ``sum_s w_s``."""
    w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
    return [(w.to(t).view(-1, 1, 1) * t).sum(dim=0, keepdim=True) for t in style_targets]


def blend_style_targets_plain_mean(style_targets, weights):
    """The plain mean of the styles' Gram matrices: the weights ignored."""
    return [t.mean(dim=0, keepdim=True) for t in style_targets]
