"""Input helpers the question files share (a file starting with ``_`` is not an assignment)."""
from __future__ import annotations

import torch


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: every case's inputs are drawn from their own."""
    return torch.Generator().manual_seed(seed)


def shapes_card():
    """The bundled shapes model's card (imported lazily: question files load in student kernels too)."""
    from utils.models import model_card

    return model_card("shapes")


def shapes_bounds() -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)``, each ``(1, 3, 1, 1)``: the normalized values of pixel 0 and pixel 255 for the shapes model."""
    from utils.image import valid_range

    return valid_range(shapes_card())


def shapes_normalize(u8) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` square images -> normalized float32 ``(N, 3, H, W)`` for the shapes model."""
    from utils.image import preprocess

    return preprocess(u8, shapes_card(), size=int(u8.shape[1]))
