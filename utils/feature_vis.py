"""Feature visualization that a person can read: the remedies of Olah, Mordvintsev and Schubert (Distill, 2017).

Plain gradient ascent on a class score of an ImageNet network reaches p = 1.000 with an image of rainbow
high-frequency noise: the gradient of a ConvNet is dominated by high frequencies, and nothing stops the ascent from
exploiting them. Two changes make the images recognisable, and this module provides both:

* **A better parameterization** (preconditioning). The image is not optimized pixel by pixel but as the 2-D Fourier
  spectrum of a *decorrelated* colour image: every frequency's coefficient is scaled by ``1 / frequency``, so a
  step of the same size changes low frequencies as much as high ones (natural images have that ``1/f`` spectrum),
  and the three channels are mixed by the square root of the colour covariance of natural images, so that steps
  in the optimized space are steps along independent colour directions. A sigmoid maps the result into [0, 1].
* **Transformation robustness.** Before every forward pass the image is padded, jittered, scaled and rotated by a
  small random amount: a pattern that only raises the score at one exact pixel alignment does not survive, one
  that looks like the class from slightly different views does.

Use::

    param = FourierImage(batch=3, size=160, seed=0).to(device)
    opt = torch.optim.Adam(param.parameters(), lr=0.05)
    for _ in range(steps):
        x = normalize(random_transform(param(), generator=g), card)   # (N, 3, H, W) model input
        loss = -model(x)[range(3), targets].sum()
        opt.zero_grad(); loss.backward(); opt.step()
    pixels = param().detach()                                          # (N, 3, H, W) in [0, 1]
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .image import normalize  # (N, 3, H, W) pixels in [0, 1] -> the model's input; re-exported for the notebooks

__all__ = ["FourierImage", "random_transform", "normalize", "COLOR_CORRELATION_SQRT"]

#: Square root of the colour covariance of ImageNet images (the value Lucid publishes), columns = decorrelated
#: colour directions in RGB.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])


class FourierImage(nn.Module):
    """A batch of images ``(N, 3, size, size)`` in [0, 1], parameterized by a decorrelated, ``1/f``-scaled spectrum.

    Args:
        batch: number of images N.
        size: height = width.
        decay_power: the spectrum's coefficients are scaled by ``1 / max(f, 1/size) ** decay_power``.
        seed: the small random start of the spectrum.
    """

    def __init__(self, batch: int = 1, size: int = 224, decay_power: float = 1.0, sd: float = 0.01,
                 seed: int = 0) -> None:
        super().__init__()
        self.size = size
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        freqs = torch.sqrt(fx ** 2 + fy ** 2)
        scale = 1.0 / torch.clamp(freqs, min=1.0 / size) ** decay_power
        self.register_buffer("scale", scale[None, None, :, :, None])                    # (1, 1, H, W//2+1, 1)
        g = torch.Generator().manual_seed(seed)
        self.spectrum = nn.Parameter(sd * torch.randn(batch, 3, size, size // 2 + 1, 2, generator=g))
        corr = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()
        self.register_buffer("color", corr)

    def forward(self) -> torch.Tensor:
        """The images ``(N, 3, size, size)``, pixels in [0, 1], in the graph of the spectrum."""
        spec = torch.view_as_complex((self.spectrum * self.scale).contiguous())
        decorrelated = torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / 4.0
        rgb = torch.einsum("ij,njhw->nihw", self.color, decorrelated)
        return torch.sigmoid(rgb)


def random_transform(x: torch.Tensor, pad: int = 12, jitter: int = 8, scales=(0.95, 0.975, 1.0, 1.025, 1.05),
                     max_degrees: float = 5.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lucid's standard robustness transforms, differentiable: pad (reflect), random shift by up to ``jitter``
    pixels, random scale from ``scales`` and rotation within ``+-max_degrees``, crop back to the input size.

    ``x`` is ``(N, C, H, W)``; every image of the batch gets its own random transform. Returns ``(N, C, H, W)``."""
    n, _, h, w = x.shape
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    r = torch.rand(n, 4, generator=generator)
    shift = (r[:, :2] * 2 - 1) * jitter
    scale = torch.tensor(scales)[(r[:, 2] * len(scales)).long().clamp(max=len(scales) - 1)]
    angle = (r[:, 3] * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    hp, wp = x.shape[-2:]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    theta[:, 0, 2] = 2 * shift[:, 0] / wp
    theta[:, 1, 2] = 2 * shift[:, 1] / hp
    # sample the central h x w window of the padded image: scale the grid to that window
    theta[:, :, :2] *= torch.tensor([w / wp, h / hp]).view(1, 2, 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
