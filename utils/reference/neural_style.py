"""Neural style transfer (Gatys, Ecker and Bethge, CVPR 2016) with a total-variation smoothness prior.

An image ``x`` is optimized so that its deep features keep the *content* of one image and the feature
*correlations* (Gram matrices) of another:

    L(x) = w_c ||F_l(x) - F_l(content)||^2
         + sum_i w_i ||G(F_{l_i}(x)) - G(F_{l_i}(style))||^2
         + w_tv TV(x)

with ``F_l`` the features of layer ``l`` (see :func:`utils.models.extract_features`), ``G`` the Gram matrix of a
feature map and ``TV`` the squared total variation. Every function returns a 0-d tensor or a tensor in the graph
of its inputs, so ``loss.backward()`` reaches the image. Signatures follow the cs231n assignment.

Graded: :func:`content_loss`, :func:`gram_matrix`, :func:`style_loss`, :func:`tv_loss`.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["content_loss", "gram_matrix", "style_loss", "tv_loss"]


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
