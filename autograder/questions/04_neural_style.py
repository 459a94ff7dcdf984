"""04_neural_style: content loss, Gram matrices, style loss, total variation (cs231n's signatures), and two options
of jcjohnson/neural-style: colour preservation and style blending.

Inputs are post-ReLU-like feature maps (non-negative, one scale per layer, like a real network's), images in a
plausible range, and Gram matrices of random features. Hidden cases change the seed, the batch size (N = 1 and
N > 2: the Gram matrix must be per image), the shapes (H != W, C larger or smaller than H * W so a Gram matrix over
positions has another shape), the weights and, for ``gram_matrix``, the ``normalize`` flag (one case leaves it at
its default, True).

Question order and the style_loss -> gram_matrix dependency
-----------------------------------------------------------
A real cs231n ``style_loss`` calls the student's own ``gram_matrix`` (the notebook's does too), so a wrong
``gram_matrix`` also costs ``style_loss``: the grader grades ``style_loss`` with whatever ``gram_matrix`` the student
wrote. Every other graded function is a leaf. The demo's synthetic class (``autograder.course.synthetic``) breaks the
questions at positions 0-4 of this list in five different ways and nothing at position 5, so ``gram_matrix`` comes
last here (the notebook still teaches it before ``style_loss``): then each synthetic student loses exactly the
question they break. The mutant corpus (``tests/mutants/mutants_04.py``) replaces one function at a time with the
reference for every other, so there each Gram mistake costs ``gram_matrix`` only.
"""
from __future__ import annotations

import torch

from autograder.core.spec import Assignment, Case, Mistake, Question, TensorMatch

from ._inputs import gen

#: Losses are sums of up to a few thousand float32 terms; a relative error of 1e-4 leaves room for every correct
#: formulation (einsum, bmm, loops, float64, F.mse_loss(reduction="sum"), torch.diff) and rejects every mistake of
#: the mutant corpus by orders of magnitude more (tests/test_mutants_04.py).
LOSS_MATCH = TensorMatch(rtol=1e-4, atol=1e-6)
#: Normalized Gram entries are ~1e-2; float32 matmul vs a float64 loop differ by ~1e-8.
GRAM_MATCH = TensorMatch(rtol=1e-4, atol=1e-6)
#: A 3-digit published inverse of the YIQ matrix (R = Y + 0.956 I + 0.619 Q, ...) is within 1e-3 of the exact one;
#: swapping luminance and chrominance or skipping the clamp is off by 0.05 to 1.
COLOUR_MATCH = TensorMatch(rtol=0.0, atol=2e-3)


def _features(g: torch.Generator, n: int, c: int, h: int, w: int, scale: float = 1.0) -> torch.Tensor:
    """Non-negative, sparse-ish feature maps like a ReLU layer's: relu(randn + 0.3) * scale."""
    return torch.relu(torch.randn(n, c, h, w, generator=g) + 0.3) * scale


def _gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


# ------------------------------------------------------------------------------------------------- builders


def build_content(seed: int, n: int, c: int, h: int, w: int, weight: float) -> dict:
    g = gen(seed)
    original = _features(g, n, c, h, w, 2.0)
    current = (original + 0.7 * torch.randn(n, c, h, w, generator=g)).relu()
    return {"content_weight": weight, "content_current": current.requires_grad_(True),
            "content_original": original}


def build_gram(seed: int, n: int, c: int, h: int, w: int, normalize: bool | None = None) -> dict:
    """``normalize=None`` leaves the argument out, so the signature's default (True) is used."""
    g = gen(seed)
    out = {"features": _features(g, n, c, h, w, 1.5).requires_grad_(True)}
    if normalize is not None:
        out["normalize"] = normalize
    return out


def build_style(seed: int, n: int, shapes: list, style_layers: list, style_weights: list,
                per_image_targets: bool = False) -> dict:
    """``shapes``: ``[C, H, W]`` of every layer of ``feats``; targets are the Gram matrices of another image's
    features (``(1, C, C)``, or ``(N, C, C)`` with ``per_image_targets``)."""
    g = gen(seed)
    scales = [0.5 + 2.5 * float(torch.rand((), generator=g)) for _ in shapes]
    feats = [_features(g, n, c, h, w, s).requires_grad_(True) for (c, h, w), s in zip(shapes, scales)]
    n_t = n if per_image_targets else 1
    targets = []
    for layer in style_layers:
        c, h, w = shapes[layer]
        targets.append(_gram(_features(g, n_t, c, h, w, scales[layer] * 1.3)))
    return {"feats": feats, "style_layers": list(style_layers), "style_targets": targets,
            "style_weights": list(style_weights)}


def build_tv(seed: int, n: int, h: int, w: int, weight: float) -> dict:
    g = gen(seed)
    smooth = torch.nn.functional.interpolate(torch.randn(n, 3, max(2, h // 4), max(2, w // 4), generator=g),
                                             size=(h, w), mode="bilinear", align_corners=False)
    img = 1.5 * smooth + 0.3 * torch.randn(n, 3, h, w, generator=g)
    return {"img": img.requires_grad_(True), "tv_weight": weight}


def build_colour(seed: int, n: int, h: int, w: int, saturated: float) -> dict:
    """``stylized`` uniform in [0, 1]; ``content`` with a fraction ``saturated`` of pixels set to strong,
    saturated colours (pure primaries, near-black, near-white), where the recombined colour leaves [0, 1]."""
    g = gen(seed)
    stylized = torch.rand(n, 3, h, w, generator=g)
    content = 0.15 + 0.7 * torch.rand(n, 3, h, w, generator=g)
    palette = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0],
                            [0.02, 0.02, 0.05], [0.98, 0.97, 0.99], [0.9, 0.1, 0.8]])
    pick = torch.randint(0, len(palette), (n, h, w), generator=g)
    mask = torch.rand(n, 1, h, w, generator=g) < saturated
    content = torch.where(mask, palette[pick].permute(0, 3, 1, 2), content)
    return {"stylized": stylized, "content": content}


def build_blend(seed: int, channels: list, weights: list) -> dict:
    """One ``(S, C, C)`` Gram stack per style layer (``S = len(weights)`` style images)."""
    g = gen(seed)
    s = len(weights)
    targets = []
    for c in channels:
        hw = int(torch.randint(3, 7, (), generator=g))
        scale = 0.5 + 2.0 * float(torch.rand((), generator=g))
        targets.append(_gram(_features(g, s, c, hw, hw + 1, scale)))
    return {"style_targets": targets, "weights": list(weights)}


# ----------------------------------------------------------------------------------------------- known mistakes

_MISTAKES_MODULE = "utils.reference.neural_style"

#: Typical wrong answers: question -> (name, hint for the student, function in utils/reference/neural_style.py with
#: the graded signature). The grader names the mistake when a wrong answer's values match that function's output.
KNOWN_MISTAKES = {
    "content_loss": [
        ("mean instead of sum", "you averaged the squared differences; the content loss is their sum, times "
                                "content_weight", "content_loss_mean"),
        ("content_weight not applied", "multiply the sum of squared differences by content_weight",
         "content_loss_unweighted")],
    "gram_matrix": [
        ("not normalized", "with normalize=True divide the Gram matrix by C * H * W", "gram_matrix_not_normalized"),
        ("divided by H * W only", "normalize by the number of values in the feature map, C * H * W, not only by the "
                                  "number of positions H * W", "gram_matrix_hw_only"),
        ("view(C, -1) mixes the batch", "features.view(C, -1) puts the positions of all N images into one row per "
                                        "channel; reshape to (N, C, H * W) and multiply batch-wise",
         "gram_matrix_view_c")],
    "style_loss": [
        ("square root", "you weighted the norm of G - A; the style loss weights the squared distance, "
                        "sum((G - A) ** 2), with no square root", "style_loss_sqrt"),
        ("style_weights not applied", "multiply each layer's squared distance by its style_weights[i]",
         "style_loss_unweighted")],
    "tv_loss": [
        ("absolute differences", "square the neighbour differences instead of taking their absolute value",
         "tv_loss_abs"),
        ("horizontal differences only", "add the vertical differences, img[:, :, 1:, :] - img[:, :, :-1, :]",
         "tv_loss_horizontal_only"),
        ("vertical differences only", "add the horizontal differences, img[:, :, :, 1:] - img[:, :, :, :-1]",
         "tv_loss_vertical_only")],
    "preserve_color": [
        ("luminance and chrominance swapped", "keep Y (luminance) of the stylized image and I, Q (chrominance) of "
                                              "the content image, not the other way round", "preserve_color_swapped"),
        ("not clamped", "clamp the result to [0, 1]: recombining saturated colours leaves the valid range",
         "preserve_color_unclamped")],
    "blend_style_targets": [
        ("weights not normalized", "divide the weighted sum by the sum of the weights, so they add up to 1",
         "blend_style_targets_unnormalized"),
        ("weights ignored", "weight each style's Gram matrix by its blend weight instead of taking the plain mean",
         "blend_style_targets_plain_mean")],
}


def _mistakes(qid: str) -> dict:
    """``{"mistakes": [...]}`` for the Question of ``qid``: the instructor-only functions of ``KNOWN_MISTAKES``."""
    return {"mistakes": [Mistake(name, hint, f"{_MISTAKES_MODULE}:{fn}") for name, hint, fn in KNOWN_MISTAKES[qid]]}


# ------------------------------------------------------------------------------------------------ questions

CONTENT = Question(
    id="content_loss", points=1, build=build_content, **_mistakes("content_loss"),
    description="content_weight * sum((F - P)^2)",
    cases=[Case("public_n1", seed=0, public=True, params={"n": 1, "c": 8, "h": 6, "w": 6, "weight": 0.06}),
           Case("public_n1_wide", seed=401, params={"n": 1, "c": 16, "h": 4, "w": 9, "weight": 3e-2}, public=True),
           Case("hidden_n3", seed=402, params={"n": 3, "c": 5, "h": 7, "w": 5, "weight": 1.5})],
    compare=LOSS_MATCH)

STYLE = Question(
    id="style_loss", calls=("gram_matrix",), points=2, build=build_style, **_mistakes("style_loss"),
    description="sum_i w_i * sum((G(feats[layer_i]) - A_i)^2), normalized Gram matrices",
    cases=[Case("public_n1_3layers", seed=0, public=True,
                params={"n": 1, "shapes": [[4, 8, 8], [6, 6, 6], [8, 4, 4], [10, 3, 3], [12, 2, 2]],
                        "style_layers": [0, 2, 3], "style_weights": [200.0, 800.0, 30.0]}),
           Case("public_n1_unsorted", seed=411,
                params={"n": 1, "shapes": [[3, 9, 7], [5, 6, 6], [7, 5, 4], [16, 2, 3]],
                        "style_layers": [3, 0, 1], "style_weights": [5000.0, 40.0, 120.0]}, public=True),
           Case("hidden_n3_per_image", seed=412,
                params={"n": 3, "shapes": [[4, 6, 6], [6, 5, 5], [9, 3, 4]],
                        "style_layers": [1, 2], "style_weights": [300.0, 2000.0], "per_image_targets": True}),
           Case("hidden_n4_shared", seed=413,
                params={"n": 4, "shapes": [[5, 7, 7], [8, 4, 5]],
                        "style_layers": [0, 1], "style_weights": [150.0, 900.0]}),
           Case("hidden_n1_one_layer", seed=414,
                params={"n": 1, "shapes": [[6, 5, 5], [9, 4, 4]], "style_layers": [1],
                        "style_weights": [2500.0]})],
    compare=LOSS_MATCH)

TV = Question(
    id="tv_loss", points=1, build=build_tv, **_mistakes("tv_loss"),
    description="tv_weight * (sum of squared vertical + horizontal neighbour differences)",
    cases=[Case("public_n1_16px", seed=0, public=True, params={"n": 1, "h": 16, "w": 16, "weight": 2e-2}),
           Case("public_n3_12x20", seed=421, params={"n": 3, "h": 12, "w": 20, "weight": 5e-2}, public=True),
           Case("hidden_n1_25x9", seed=422, params={"n": 1, "h": 25, "w": 9, "weight": 1.0})],
    compare=LOSS_MATCH)

COLOUR = Question(
    id="preserve_color", points=2, build=build_colour, **_mistakes("preserve_color"),
    description="YIQ: Y of the stylized image, I and Q of the content, back to RGB, clamped to [0, 1]",
    cases=[Case("public_n2_12px", seed=0, public=True, params={"n": 2, "h": 12, "w": 12, "saturated": 0.3}),
           Case("public_n1_16x10", seed=431, params={"n": 1, "h": 16, "w": 10, "saturated": 0.2}, public=True),
           Case("hidden_n4_8px", seed=432, params={"n": 4, "h": 8, "w": 8, "saturated": 0.5})],
    compare=COLOUR_MATCH)

BLEND = Question(
    id="blend_style_targets", points=2, build=build_blend, **_mistakes("blend_style_targets"),
    description="per layer sum_s w_s G_s / sum_s w_s, shape (1, C, C)",
    cases=[Case("public_2styles", seed=0, public=True, params={"channels": [4, 6, 8], "weights": [3.0, 1.0]}),
           Case("public_3styles_zero", seed=441, params={"channels": [5, 7], "weights": [0.2, 0.0, 0.5]}, public=True),
           Case("hidden_1style", seed=442, params={"channels": [3, 4, 6, 9], "weights": [2.5]}),
           Case("hidden_4styles", seed=443, params={"channels": [8], "weights": [1.0, 4.0, 2.0, 0.5]})],
    compare=LOSS_MATCH)

GRAM = Question(
    id="gram_matrix", points=2, build=build_gram, **_mistakes("gram_matrix"),
    description="(N, C, H, W) -> (N, C, C) per image, divided by C*H*W when normalize",
    cases=[Case("public_n2", seed=0, public=True, params={"n": 2, "c": 6, "h": 5, "w": 5, "normalize": True}),
           Case("public_n1_raw", seed=1, public=True, params={"n": 1, "c": 4, "h": 3, "w": 6, "normalize": False}),
           Case("hidden_n1_default", seed=451, params={"n": 1, "c": 8, "h": 4, "w": 7}),
           Case("hidden_n3_unnormalized", seed=452, params={"n": 3, "c": 5, "h": 3, "w": 4, "normalize": False}),
           Case("hidden_n4_wide", seed=453, params={"n": 4, "c": 16, "h": 2, "w": 3, "normalize": True})],
    compare=GRAM_MATCH)

#: gram_matrix last: see the module docstring (the demo's synthetic class breaks positions 0-4).
QUESTIONS = [CONTENT, STYLE, TV, COLOUR, BLEND, GRAM]
ASSIGNMENT = Assignment(id="04_neural_style", questions=QUESTIONS)
