"""Feature inversion (Mahendran and Vedaldi, CVPR 2015): which image does a layer "see"?

Given the features ``F0 = F_l(x0)`` of an image at layer ``l``, look for an image whose features match them while
looking natural:

    x* = argmin_x  ||F_l(x) - F0||^2 / ||F0||^2  +  w_tv TV(x)  +  w_l2 ||x||^2

The relative error makes the data term about 1 at the start whatever the layer's scale, so the same
regularization weights work at every depth. Early layers give back the image almost exactly; deep layers keep
what the classifier needs (shape, texture) and lose position, colour and detail.

Graded: :func:`feature_reconstruction_loss`. :func:`invert_features` is the optimization loop (provided code).
"""
from __future__ import annotations

import torch
from torch import nn

from .neural_style import tv_loss

__all__ = ["feature_reconstruction_loss"]


def feature_reconstruction_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared error ``||features - target||^2 / ||target||^2`` (sums over every entry).

    Args:
        features: ``(N, C, H, W)`` features of the image being optimized.
        target: ``(N, C, H, W)`` features to reproduce (not all zero).
    Returns:
        0-d tensor; 1 for ``features = 0``, 0 for a perfect match.
    """
    if features.shape != target.shape:
        raise ValueError(f"feature_reconstruction_loss: features {tuple(features.shape)} and target "
                         f"{tuple(target.shape)} differ; take both from the same layer")
    return (features - target).pow(2).sum() / target.pow(2).sum()


def layer_features(x: torch.Tensor, model: nn.Module, layer_index: int) -> torch.Tensor:
    """``model.features[:layer_index + 1](x)``: the output of layer ``layer_index`` (negative counts from the end)."""
    stop = layer_index % len(model.features) + 1
    return model.features[:stop](x)


def invert_features(target: torch.Tensor, model: nn.Module, layer_index: int, size: tuple[int, int], card=None, *,
                    num_iterations: int = 200, learning_rate: float = 0.05, tv_weight: float = 1e-4,
                    l2_weight: float = 1e-5, generator: torch.Generator | None = None,
                    progress: bool = True) -> torch.Tensor:
    """Reconstruct a ``(1, 3, H, W)`` image from the features ``target`` of layer ``layer_index``.

    Adam on the image from small random noise, clamped to the valid pixel range after every step.

    Args:
        target: ``(1, C, h, w)`` features, e.g. ``layer_features(x0, model, layer_index)``.
        model: frozen model with a ``features`` sequence.
        layer_index: index into ``model.features``.
        size: ``(H, W)`` of the image to reconstruct.
        card: the model card (normalization); default the bundled model's.
    Returns:
        The reconstruction ``(1, 3, H, W)``, detached, in the model's input space.
    """
    from tqdm.auto import tqdm

    from utils.image import clamp_to_valid

    device = target.device
    x = 0.1 * torch.randn(1, 3, *size, generator=generator).to(device)
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=learning_rate)
    target = target.detach()
    for _ in tqdm(range(num_iterations), desc=f"inverting layer {layer_index}", disable=not progress, leave=False):
        opt.zero_grad(set_to_none=True)
        loss = feature_reconstruction_loss(layer_features(x, model, layer_index), target)
        loss = loss + tv_loss(x, tv_weight) + l2_weight * x.pow(2).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.copy_(clamp_to_valid(x, card))
    return x.detach()
