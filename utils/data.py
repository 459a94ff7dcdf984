"""Data that ships with the course: a procedural shapes-and-textures dataset (with ground-truth masks), real photos
from installed packages, and handwritten digits. Nothing here touches the network.

* :func:`make_shapes` draws the bundled classifier's data set: ``len(SHAPE_CLASSES)`` classes of shapes and
  textured patches with random colours, backgrounds, positions, scales, rotations and noise, plus a mask of the
  object per image (so a saliency map can be *measured* against the truth).
* :func:`load_photo` loads one of :data:`PHOTOS` (licences in ``utils/NOTICE``).
* :func:`load_digits` gives scikit-learn's 1797 handwritten digits as ``(N, 1, size, size)`` tensors;
  :func:`load_mnist` reads MNIST only if it is already on disk.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .image import center_crop_resize

__all__ = [
    "SHAPE_CLASSES",
    "make_shapes",
    "PHOTOS",
    "load_photo",
    "load_digits",
    "split_digits",
    "shift_images",
    "load_mnist",
    "DatasetUnavailableError",
]

# --------------------------------------------------------------------------------------------------------------
# Procedural shapes and textures
# --------------------------------------------------------------------------------------------------------------

#: Class names of the procedural data set, in label order: six solid shapes, then four textured patches.
SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "stripes",
    "checkerboard",
    "dots",
    "waves",
)
_N_SOLID = 6  # the first six classes are solid shapes, the rest textures

_MIN_COLOUR_DIST = 0.45  # Euclidean distance in RGB [0, 1]^3 between object and background colours
_CHUNK = 512  # images rendered at a time (keeps the float32 working set in cache-friendly sizes)


def _distinct_colours(rng: np.random.Generator, ref: np.ndarray, min_dist: float) -> np.ndarray:
    """Random RGB colours in [0, 1], one per row of ``ref``, each at least ``min_dist`` away from its ``ref`` row."""
    out = rng.uniform(0.0, 1.0, ref.shape)
    for _ in range(100):
        bad = np.linalg.norm(out - ref, axis=1) < min_dist
        if not bad.any():
            return out
        out[bad] = rng.uniform(0.0, 1.0, (int(bad.sum()), 3))
    # Practically unreachable; push the remaining few away deterministically.
    bad = np.linalg.norm(out - ref, axis=1) < min_dist
    out[bad] = np.where(ref[bad] < 0.5, 1.0, 0.0)
    return out


def _shape_sdf(kind: int, u: np.ndarray, v: np.ndarray, r: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) of solid shape ``kind`` in its local rotated frame.

    ``u, v, r`` are ``(m, S, S)`` local coordinates (pixels) and radius; ``R`` is ``(m, 1, 1)``, the outer radius.
    """
    name = SHAPE_CLASSES[kind]
    if name == "circle":
        return r - 0.8 * R
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.68 * R
    if name == "triangle":
        # Equilateral triangle with circumradius R: inradius R/2, normals at 90 + 120 k degrees.
        d = None
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3
            dk = u * np.cos(a) + v * np.sin(a) - 0.5 * R
            d = dk if d is None else np.maximum(d, dk)
        return d
    if name == "star":
        # Five-pointed star: fold the angle into one half-wedge [0, pi/5] and measure to the edge from the outer
        # vertex A = (R, 0) to the inner vertex B = (ri cos(pi/5), ri sin(pi/5)).
        wedge = 2 * np.pi / 5
        theta = np.arctan2(v, u)
        phi = np.abs(np.mod(theta, wedge) - wedge / 2)  # 0 at an inner vertex direction ... pi/5 at an outer one
        phi = wedge / 2 - phi  # 0 at an outer vertex, pi/5 at an inner vertex
        pu, pv = r * np.cos(phi), r * np.sin(phi)
        ri = 0.45 * R
        bu, bv = ri * np.cos(wedge / 2), ri * np.sin(wedge / 2)
        eu, ev = bu - R, bv  # edge direction A -> B
        norm = np.sqrt(eu * eu + ev * ev)
        # Outward normal of the edge (pointing away from the origin): rotate the edge direction by -90 degrees.
        nu, nv = ev / norm, -eu / norm
        return (pu - R) * nu + pv * nv
    if name == "cross":
        w = 0.3 * R
        arm = 0.95 * R
        au, av = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(au - arm, av - w), np.maximum(au - w, av - arm))
    if name == "ring":
        return np.abs(r - 0.62 * R) - 0.26 * R
    raise AssertionError(name)


def _texture_sdf(kind: int, pu: np.ndarray, pv: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Signed distance (pixels, negative = foreground colour) of texture ``kind`` in pattern coordinates."""
    name = SHAPE_CLASSES[kind]
    period = p["period"]
    if name == "stripes":
        return -np.sin(2 * np.pi * pu / period) * period / (2 * np.pi)
    if name == "waves":
        warp = p["amp"] * np.sin(2 * np.pi * pv / p["wavelength"])
        return -np.sin(2 * np.pi * (pu + warp) / period) * period / (2 * np.pi)
    if name == "checkerboard":
        cell = 0.5 * period
        a = np.sin(np.pi * pu / cell)
        b = np.sin(np.pi * pv / cell)
        return -(cell / np.pi) * np.sign(a * b) * np.minimum(np.abs(a), np.abs(b))
    if name == "dots":
        spacing = period
        fu = pu / spacing - np.round(pu / spacing)
        fv = pv / spacing - np.round(pv / spacing)
        return np.sqrt(fu * fu + fv * fv) * spacing - p["dot_radius"] * spacing
    raise AssertionError(name)


def make_shapes(n: int, seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` images of the procedural shapes-and-textures data set.

    Every image holds one object on a plain background (flat or a gentle linear gradient): a solid shape
    (circle, square, triangle, star, cross, ring) or a patch (disc or square) filled with a texture (stripes,
    checkerboard, dots, waves) in two colours. Object colour, background colour, position, scale, rotation,
    texture period/orientation and pixel noise are random. The object colour is always at least 0.45 (Euclidean,
    RGB in [0, 1]) away from the background colour.

    Args:
        n: number of images (classes are balanced: counts differ by at most one).
        seed: everything is drawn from ``numpy.random.default_rng(seed)``; the same (n, seed, size) gives the same
            arrays on every machine.
        size: image height and width in pixels (64 is the bundled model's input size).

    Returns:
        ``images`` uint8 ``(n, size, size, 3)``, ``labels`` int64 ``(n,)`` indexing :data:`SHAPE_CLASSES`, and
        ``masks`` bool ``(n, size, size)``: True on the object (for textures: on the whole textured patch).
    """
    n = int(n)
    size = int(size)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    rng = np.random.default_rng(seed)
    num_classes = len(SHAPE_CLASSES)
    s = size / 64.0  # all pixel lengths below are given for 64x64 and scaled

    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    solid = labels < _N_SOLID

    # Colours.
    bg = rng.uniform(0.0, 1.0, (n, 3))
    fg = _distinct_colours(rng, bg, _MIN_COLOUR_DIST)
    third = _distinct_colours(rng, fg, _MIN_COLOUR_DIST)
    use_bg_as_second = rng.random(n) < 0.5
    second = np.where(use_bg_as_second[:, None], bg, third)  # texture's second colour

    # Background gradient: half flat, half a gentle ramp along a random direction with a random colour tilt.
    grad_on = rng.random(n) < 0.5
    grad_amp = rng.uniform(0.05, 0.2, n) * grad_on
    grad_dir = rng.uniform(0.0, 2 * np.pi, n)
    grad_col = rng.uniform(-1.0, 1.0, (n, 3))

    # Geometry: radius R (pixels), centre keeps the object inside the image, rotation.
    radius = np.where(solid, rng.uniform(11.0, 25.0, n), rng.uniform(15.0, 26.0, n)) * s
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    rot = rng.uniform(0.0, 2 * np.pi, n)
    patch_square = rng.random(n) < 0.5  # texture patch: square (True) or disc

    # Texture parameters.
    tex_rot = rng.uniform(0.0, np.pi, n)
    period = rng.uniform(5.0, 8.5, n) * s
    period = np.where(labels == SHAPE_CLASSES.index("dots"), period * 1.15, period)
    period = np.where(labels == SHAPE_CLASSES.index("checkerboard"), period * 1.25, period)
    amp = rng.uniform(0.3, 0.5, n) * period
    wavelength = rng.uniform(2.0, 3.0, n) * period
    dot_radius = rng.uniform(0.24, 0.34, n)
    tex_phase_u = rng.uniform(0.0, 1.0, n) * period * 2
    tex_phase_v = rng.uniform(0.0, 1.0, n) * period * 2

    noise_sigma = rng.uniform(0.0, 0.06, n)
    noise_seed = int(rng.integers(0, 2**63 - 1))
    noise_rng = np.random.default_rng(noise_seed)

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    coords = np.arange(size, dtype=np.float32) + 0.5
    gy, gx = np.meshgrid(coords, coords, indexing="ij")  # (S, S)

    f32 = np.float32

    def col(a: np.ndarray) -> np.ndarray:  # (m,) -> (m, 1, 1) float32
        return a.astype(f32)[:, None, None]

    for start in range(0, n, _CHUNK):
        sl = slice(start, min(n, start + _CHUNK))
        m = sl.stop - sl.start
        lab = labels[sl]
        dx = gx[None] - col(cx[sl])
        dy = gy[None] - col(cy[sl])
        c, si = col(np.cos(rot[sl])), col(np.sin(rot[sl]))
        u = c * dx + si * dy
        v = -si * dx + c * dy
        r = np.sqrt(u * u + v * v)
        R = col(radius[sl])

        sdf = np.empty((m, size, size), dtype=f32)  # region (object / patch) signed distance
        pat = np.zeros((m, size, size), dtype=f32)  # pattern signed distance (textures only)
        for k in range(num_classes):
            idx = np.nonzero(lab == k)[0]
            if idx.size == 0:
                continue
            if k < _N_SOLID:
                sdf[idx] = _shape_sdf(k, u[idx], v[idx], r[idx], R[idx])
            else:
                ui, vi, Ri = u[idx], v[idx], R[idx]
                sq = col(patch_square[sl][idx].astype(f32))
                sdf[idx] = sq * (np.maximum(np.abs(ui), np.abs(vi)) - 0.82 * Ri) + (1 - sq) * (r[idx] - Ri)
                g = idx + sl.start
                ct, st = col(np.cos(tex_rot[g])), col(np.sin(tex_rot[g]))
                pu = ct * dx[idx] + st * dy[idx] + col(tex_phase_u[g])
                pv = -st * dx[idx] + ct * dy[idx] + col(tex_phase_v[g])
                params = {
                    "period": col(period[g]),
                    "amp": col(amp[g]),
                    "wavelength": col(wavelength[g]),
                    "dot_radius": col(dot_radius[g]),
                }
                pat[idx] = _texture_sdf(k, pu, pv, params)

        alpha = np.clip(0.5 - sdf, 0.0, 1.0)[..., None]  # (m, S, S, 1) anti-aliased coverage
        beta = np.clip(0.5 - pat, 0.0, 1.0)[..., None]
        is_solid = solid[sl][:, None, None, None]
        beta = np.where(is_solid, f32(1.0), beta)

        ramp = (np.cos(grad_dir[sl])[:, None, None] * (gx[None] / size - 0.5)
                + np.sin(grad_dir[sl])[:, None, None] * (gy[None] / size - 0.5)).astype(f32)
        tilt = (grad_amp[sl, None] * grad_col[sl]).astype(f32)[:, None, None, :]
        background = bg[sl].astype(f32)[:, None, None, :] + ramp[..., None] * tilt
        inner = second[sl].astype(f32)[:, None, None, :] + beta * (fg[sl] - second[sl]).astype(f32)[:, None, None, :]
        img = background + alpha * (inner - background)
        noise = noise_rng.standard_normal((m, size, size, 3), dtype=f32)
        img += noise * col(noise_sigma[sl])[..., None]
        np.clip(img, 0.0, 1.0, out=img)
        images[sl] = np.rint(img * 255.0).astype(np.uint8)
        masks[sl] = sdf <= 0.0
    return images, labels, masks


# --------------------------------------------------------------------------------------------------------------
# Photos shipped with installed packages
# --------------------------------------------------------------------------------------------------------------

#: Names accepted by :func:`load_photo` (sources and licences: ``utils/NOTICE``).
PHOTOS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "china",
    "flower",
    "grace_hopper",
)


@functools.lru_cache(maxsize=None)
def _read_photo(name: str) -> np.ndarray:
    if name in ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel"):
        import skimage.data

        img = getattr(skimage.data, name)()
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            img = matplotlib.image.imread(fh, format="jpg")
    else:  # pragma: no cover - guarded by load_photo
        raise AssertionError(name)
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.dtype != np.uint8:  # pragma: no cover - all bundled photos are uint8
        img = np.clip(np.rint(img * (255.0 if img.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img[..., :3])
    img.setflags(write=False)
    return img


def _center_crop_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Center-crop an (H, W, 3) uint8 image to a square, then resize it (anti-aliased) to (size, size, 3) uint8:
    :func:`utils.image.center_crop_resize` on the pixel values, rounded back to uint8."""
    t = torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1)[None]     # (1, 3, H, W), 0..255
    t = center_crop_resize(t, size)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def load_photo(name: str, size: int | None = None) -> np.ndarray:
    """Load a photo shipped by scikit-image, scikit-learn or matplotlib as a uint8 ``(H, W, 3)`` array.

    Grayscale photos (brick, grass, gravel) are stacked to three channels. With ``size`` the photo is
    center-cropped to a square and resized (anti-aliased bilinear) to ``(size, size, 3)``.
    The returned array is a fresh, writable copy.
    """
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; valid names: {', '.join(PHOTOS)}")
    img = _read_photo(name)
    if size is None:
        return np.array(img)
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be a positive int, got {size}")
    return _center_crop_resize(img, size)


# --------------------------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------------------------


class DatasetUnavailableError(RuntimeError):
    """A data set that is never downloaded by this course is not on disk."""


def load_digits(size: int = 32, seed: int | None = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 handwritten digits (8x8, values 0..16) as images for a ConvNet.

    Each digit is scaled to [0, 1], upsampled (bilinear) to ``round(20 * size / 32)`` pixels square and pasted in
    the centre of a black ``size x size`` canvas, so a shift of up to +-6 px at 32x32 keeps it (mostly) visible.

    Args:
        size: canvas height and width (>= 8).
        seed: order of the samples: shuffled with ``numpy.random.default_rng(seed)``; ``None`` keeps
            scikit-learn's order.

    Returns:
        ``x`` float32 ``(1797, 1, size, size)`` in [0, 1] and ``y`` int64 ``(1797,)`` in 0..9.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    size = int(size)
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    bunch = _sk_load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).clamp_(0.0, 1.0)[:, None]  # (N, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    inner = max(8, min(size, int(round(20 * size / 32))))
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    canvas = torch.zeros(x.shape[0], 1, size, size, dtype=torch.float32)
    top = (size - inner) // 2
    canvas[:, :, top:top + inner, top:top + inner] = x
    if seed is not None:
        perm = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
        canvas, y = canvas[perm], y[perm]
    return canvas.contiguous(), y.contiguous()


def split_digits(
    x: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified train/test split with a fixed seed: returns ``(x_train, y_train, x_test, y_test)``.

    Every class gets ``round(test_fraction * count)`` test samples; the order inside each part is random
    (given ``seed``)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y disagree on N: {tuple(x.shape)} vs {tuple(y.shape)}")
    rng = np.random.default_rng(seed)
    labels = y.cpu().numpy()
    test_idx, train_idx = [], []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        idx = idx[rng.permutation(idx.size)]
        k = int(round(test_fraction * idx.size))
        test_idx.append(idx[:k])
        train_idx.append(idx[k:])
    tr = np.concatenate(train_idx)
    te = np.concatenate(test_idx)
    tr, te = tr[rng.permutation(tr.size)], te[rng.permutation(te.size)]
    tr_t, te_t = torch.from_numpy(tr).to(y.device), torch.from_numpy(te).to(y.device)
    return x[tr_t.to(x.device)], y[tr_t], x[te_t.to(x.device)], y[te_t]


def shift_images(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Translate ``(N, C, H, W)`` images by ``dx`` pixels right and ``dy`` pixels down, filling with zeros.

    Not circular: what leaves the canvas is lost. Negative values shift left / up. Returns a new tensor of the
    same shape, dtype and device."""
    if x.ndim < 2:
        raise ValueError(f"expected (..., H, W) images, got shape {tuple(x.shape)}")
    dx, dy = int(dx), int(dy)
    h, w = x.shape[-2], x.shape[-1]
    out = torch.zeros_like(x)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def load_mnist(root: str | Path, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from disk through ``torchvision.datasets.MNIST(root, train, download=False)``.

    Returns ``x`` float32 ``(N, 1, 28, 28)`` in [0, 1] and ``y`` int64 ``(N,)``. Never downloads: if the files are
    not under ``root/MNIST/raw`` a :class:`DatasetUnavailableError` says where to put them; offline, use
    :func:`load_digits`."""
    from torchvision.datasets import MNIST

    root = Path(root)
    try:
        ds = MNIST(str(root), train=train, download=False)
    except RuntimeError as exc:
        raise DatasetUnavailableError(
            f"MNIST is not on disk under {root / 'MNIST' / 'raw'} ({exc}). This course never downloads data. "
            f"On a machine with network run: python -c \"import torchvision; "
            f"torchvision.datasets.MNIST({str(root)!r}, train={train}, download=True)\" and copy the folder "
            f"{root / 'MNIST'} here. Offline, use the bundled digits instead: utils.data.load_digits()."
        ) from exc
    x = ds.data.to(torch.float32).div_(255.0)[:, None]
    y = ds.targets.to(torch.int64)
    return x, y
