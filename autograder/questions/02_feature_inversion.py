"""02_feature_inversion: reconstructing an image from its code (Mahendran and Vedaldi, CVPR 2015).

``feature_reconstruction_loss``, ``alpha_norm`` and ``tv_norm`` have one right answer each, so they are tensor
matches. ``invert_features`` has many right answers (any good local minimum of the objective from any random
start), so it is a property check, on tiny CNNs (``autograder.core.tiny_models.tiny_cnn``, weights drawn from the case's
seed) and small images, calibrated on the reference's own result for the same case:

* **matches the code** (required): for every image, the relative feature error ``||Phi(x) - Phi0||^2 /
  ||Phi0||^2`` of the student's reconstruction (recomputed here, in the grader's process) is at most
  ``ERROR_FACTOR * reference + ERROR_SLACK``;
* **stays in the valid range** (its own share of the case): every value within ``bounds`` (clamped after every
  step);
* **regularized** (its own share of the case): ``tv_norm(x, beta)`` of each image is at most
  ``TV_FACTOR * reference + TV_SLACK``, so a loop that drops the TV term (or its weight, or beta) and fits the code
  with high-frequency noise loses that share.

The grader checks each function on its own: ``invert_features`` is graded on its result only, so a student whose
loop calls their own (correct) three functions and one whose loop writes the objective out get the same marks; a
wrong ``tv_norm`` called from ``invert_features`` can cost both questions, which the notebook says.

Hidden cases change the seed, the batch size (N = 1 and N > 2), the shapes (non-square, other channel counts, 2-D
class scores for the loss), the exponents (odd alpha, non-integer alpha and beta) and, for the inversion, the layer,
the image source (procedural shapes, a photo), beta and a start where half the pixels sit on the range's edges
(equal neighbours: a TV without a guard inside the power returns NaN there for beta < 2).

Known mistakes (``Question.mistakes``; the functions are instructor-only, in ``utils.reference.feature_inversion``)
name what a wrong value matches: an unnormalized or MSE loss, a missing square or absolute value, a TV with the
power per direction, beta instead of beta / 2, the wrong crop or assignment 04's squared TV.
``tests/test_mutants_02.py`` checks that each names its mutant.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from utils.models import layer_output

from autograder.core.spec import Assignment, Case, Mistake, ModelRef, Property, PropertyCheck, Question, TensorMatch

from ._inputs import gen, shapes_bounds, shapes_card, shapes_normalize

ERROR_FACTOR = 5.0       # a student's relative feature error may be this many times the reference's ...
ERROR_SLACK = 0.03       # ... plus this much (the reference reaches 0.01 .. 0.24 on these cases, and 12 other
#                          random starts at most 1.4 times that; one denominator for the whole batch, as
#                          feature_reconstruction_loss has, reaches up to 3.4 times it on the public case)
TV_FACTOR = 3.0          # the reconstruction's tv_norm may be this many times the reference's ...
TV_SLACK = 2.0           # ... plus this much
RANGE_TOL = 1e-5         # values may overshoot the valid range by float rounding only
TV_EPS = 1e-8            # as in utils.reference.feature_inversion (the notebook asks for the same)


# ------------------------------------------------------------------------------------------------- inputs


def _images(seed: int, n: int, size: tuple[int, int], photo: str | None = None) -> torch.Tensor:
    """``n`` procedural shapes images (or one photo), cropped to ``size = (H, W)``."""
    H, W = size
    if photo is not None:
        from utils.data import load_photo

        return shapes_normalize(load_photo(photo, max(H, W))[None])[..., :H, :W].contiguous()
    from utils.data import make_shapes

    images, _, _ = make_shapes(n, seed=seed, size=max(H, W))
    return shapes_normalize(images)[..., :H, :W].contiguous()


def build_loss(seed: int, shape: list[int], noise: float) -> dict:
    """Target features (ReLU-like: non-negative, some exact zeros) and features = target + noise."""
    g = gen(seed)
    target = torch.randn(*shape, generator=g).clamp_min(-0.3) + 0.3
    scale = 0.5 + 2.0 * torch.rand((), generator=g)
    target = scale * target
    features = target + noise * scale * torch.randn(*shape, generator=g)
    return {"features": features, "target": target}


def build_alpha(seed: int, shape: list[int], alpha: float, scale: float = 1.0) -> dict:
    g = gen(seed)
    return {"x": scale * torch.randn(*shape, generator=g), "alpha": alpha}


def build_tv(seed: int, shape: list[int], beta: float, flat: bool = False) -> dict:
    """Smooth-ish random images (a random field plus noise); ``flat``: piecewise constant blocks, so many
    neighbours are exactly equal."""
    g = gen(seed)
    n, c, h, w = shape
    if flat:
        blocks = torch.randn(n, c, (h + 3) // 4, (w + 3) // 4, generator=g)
        x = blocks.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)[..., :h, :w]
    else:
        coarse = torch.randn(n, c, (h + 2) // 3, (w + 2) // 3, generator=g)
        x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        x = x + 0.2 * torch.randn(n, c, h, w, generator=g)
    return {"x": x.contiguous(), "beta": beta}


def build_invert(seed: int, n: int, size: list[int], layer_index: int, beta: float, tv_weight: float,
                 alpha_weight: float = 1e-5, num_iterations: int = 150, learning_rate: float = 0.05,
                 init_std: float = 0.1, photo: str | None = None) -> dict:
    from autograder.core.tiny_models import build_tiny

    model = build_tiny("tiny_cnn", seed=seed)
    x0 = _images(seed, n, tuple(size), photo)
    with torch.no_grad():
        target = layer_output(x0, model, layer_index)
    return {"target": target.contiguous(),
            "model": ModelRef("tiny_cnn", seed=seed),
            "layer_index": layer_index,
            "size": list(size),
            "bounds": shapes_bounds(),
            "num_iterations": num_iterations,
            "learning_rate": learning_rate,
            "alpha": 6.0,
            "alpha_weight": alpha_weight,
            "beta": beta,
            "tv_weight": tv_weight,
            "init_std": init_std}


# --------------------------------------------------------------------------------------------- properties


def _relative_errors(inputs: Mapping[str, Any], x: torch.Tensor) -> torch.Tensor:
    model, k = inputs["model"], int(inputs["layer_index"])
    target = inputs["target"].to(torch.float64)
    with torch.no_grad():
        phi = layer_output(x.to(torch.float32), model, k).to(torch.float64)
    return (phi - target).flatten(1).pow(2).sum(1) / target.flatten(1).pow(2).sum(1)


def _tv(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-image tv_norm, float64."""
    x = x.to(torch.float64)
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return (right.pow(2) + down.pow(2) + TV_EPS).pow(beta / 2).flatten(1).sum(1)


def prop_matches_code(inputs, output, expected):
    got = _relative_errors(inputs, output["out"])
    ref = _relative_errors(inputs, expected["out"])
    allowed = ERROR_FACTOR * ref + ERROR_SLACK
    bad = (got > allowed).nonzero().reshape(-1).tolist()
    if not bad:
        return True, f"relative feature error {float(got.max()):.3g} (reference {float(ref.max()):.3g})"
    i = bad[0]
    hint = ("it did not improve on the random start: minimize the objective (do not maximize it), update the "
            "image (not a copy of it) and compute the features with model.features[:layer_index + 1]"
            if float(got[i]) > 0.5 else "run every iteration of Adam on the full objective")
    return False, (f"image {i}: relative feature error {float(got[i]):.3g}, allowed at most {float(allowed[i]):.3g} "
                   f"(the reference reaches {float(ref[i]):.3g}); {hint}")


def prop_in_valid_range(inputs, output, expected):
    lo, hi = (b.to(torch.float64) for b in inputs["bounds"])
    x = output["out"].to(torch.float64)
    below = (lo - x).clamp_min(0)
    above = (x - hi).clamp_min(0)
    worst = float(torch.maximum(below, above).max())
    if worst <= RANGE_TOL:
        return True, "every value is a valid pixel"
    n = int(((below > RANGE_TOL) | (above > RANGE_TOL)).sum())
    return False, (f"{n} of {x.numel()} values are outside the valid range (up to {worst:.3g} beyond it): clamp "
                   f"the image into [lo, hi] after every step")


def prop_regularized(inputs, output, expected):
    beta = float(inputs["beta"])
    got = _tv(output["out"], beta)
    ref = _tv(expected["out"], beta)
    allowed = TV_FACTOR * ref + TV_SLACK
    bad = (got > allowed).nonzero().reshape(-1).tolist()
    if not bad:
        return True, f"tv_norm {float(got.max()):.3g} (reference {float(ref.max()):.3g})"
    i = bad[0]
    return False, (f"image {i} is too rough: tv_norm(x, beta={beta:g}) = {float(got[i]):.4g}, allowed at most "
                   f"{float(allowed[i]):.4g} (the reference's is {float(ref[i]):.4g}); add "
                   f"tv_weight * tv_norm(x, beta) (and alpha_weight * alpha_norm(x, alpha)) to the relative error")


# ------------------------------------------------------------------------------------------- known mistakes

_REF = "utils.reference.feature_inversion:_mistake_"

LOSS_MISTAKES = [
    Mistake("not normalized", "you returned ||features - target||^2; divide it by ||target||^2",
            _REF + "loss_not_normalized"),
    Mistake("mean squared error", "you divided by the number of entries (a mean); divide the sum by ||target||^2",
            _REF + "loss_mse"),
    Mistake("norm not squared", "you divided by ||target||; the denominator is its square, sum(target ** 2)",
            _REF + "loss_norm_not_squared"),
    Mistake("per-image average", "you averaged per-image relative errors; sum over every entry of the batch, then "
            "divide once", _REF + "loss_per_image_mean"),
]
ALPHA_MISTAKES = [
    Mistake("absolute value missing", "you summed x ** alpha; take |x| first (odd alpha makes negatives count "
            "negative)", _REF + "alpha_no_abs"),
    Mistake("root taken", "you returned the alpha-norm itself; the regularizer is its alpha-th power, "
            "sum |x| ** alpha", _REF + "alpha_root"),
]
TV_MISTAKES = [
    Mistake("beta instead of beta / 2", "you raised dx^2 + dy^2 to the power beta; the exponent is beta / 2",
            _REF + "tv_beta_not_half"),
    Mistake("power per direction", "you summed |dx| ** beta + |dy| ** beta; the power beta / 2 applies to the sum "
            "dx^2 + dy^2 at each pixel", _REF + "tv_power_per_direction"),
    Mistake("wrong crop", "a direction was summed over its full range; take both differences at the same pixels, "
            "i < H-1 and j < W-1 (x[:, :, :-1, 1:] - x[:, :, :-1, :-1] and x[:, :, 1:, :-1] - x[:, :, :-1, :-1])",
            _REF + "tv_full_range"),
    Mistake("squared TV of assignment 04", "this is assignment 04's tv_loss (sum dx^2 + sum dy^2 over full ranges); "
            "here the power beta / 2 applies to dx^2 + dy^2 at each pixel, cropped to i < H-1, j < W-1",
            _REF + "tv_squared_of_04"),
]


# ------------------------------------------------------------------------------------------------ questions

LOSS = Question(
    id="feature_reconstruction_loss", points=1, build=build_loss, mistakes=LOSS_MISTAKES,
    description="||features - target||^2 / ||target||^2, sums over every entry",
    cases=[Case("public_n2", seed=0, public=True, params={"shape": [2, 8, 5, 5], "noise": 0.3}),
           Case("public_n1", seed=501, params={"shape": [1, 16, 3, 3], "noise": 1.0}, public=True),
           Case("hidden_n4_nonsquare", seed=502, params={"shape": [4, 6, 7, 5], "noise": 0.1}),
           Case("hidden_scores_n3", seed=503, params={"shape": [3, 10], "noise": 0.5})],
    compare=TensorMatch(rtol=1e-4, atol=1e-6))

ALPHA = Question(
    id="alpha_norm", points=1, build=build_alpha, mistakes=ALPHA_MISTAKES,
    description="sum |x|^alpha over every entry",
    cases=[Case("public_n2_alpha6", seed=0, public=True, params={"shape": [2, 3, 6, 6], "alpha": 6.0}),
           Case("public_n1_alpha3", seed=1, public=True, params={"shape": [1, 3, 5, 7], "alpha": 3.0}),
           Case("hidden_n4_alpha1", seed=511, params={"shape": [4, 3, 4, 4], "alpha": 1.0, "scale": 2.0}),
           Case("hidden_n1_alpha2.5", seed=512, params={"shape": [1, 2, 9, 5], "alpha": 2.5}),
           Case("hidden_n3_alpha5", seed=513, params={"shape": [3, 3, 8, 6], "alpha": 5.0, "scale": 0.5})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

TV = Question(
    id="tv_norm", points=2, build=build_tv, mistakes=TV_MISTAKES,
    description="sum over i<H-1, j<W-1 of ((x[i,j+1]-x[i,j])^2 + (x[i+1,j]-x[i,j])^2)^(beta/2)",
    cases=[Case("public_n2_beta1", seed=0, public=True, params={"shape": [2, 3, 10, 12], "beta": 1.0}),
           Case("public_n1_beta2", seed=1, public=True, params={"shape": [1, 3, 8, 8], "beta": 2.0}),
           Case("hidden_n3_beta2_nonsquare", seed=521, params={"shape": [3, 3, 9, 14], "beta": 2.0}),
           Case("hidden_n1_beta1.5_c2", seed=522, params={"shape": [1, 2, 16, 11], "beta": 1.5}),
           Case("hidden_n4_beta3", seed=523, params={"shape": [4, 3, 7, 7], "beta": 3.0}),
           Case("hidden_n2_beta1_blocks", seed=524, params={"shape": [2, 3, 12, 12], "beta": 1.0, "flat": True})],
    compare=TensorMatch(rtol=1e-3, atol=1e-4))   # rtol: the guard inside the power may be 1e-10 .. 1e-7

INVERT = Question(
    id="invert_features", calls=("alpha_norm", "tv_norm"), points=3, build=build_invert,
    description="Adam from noise on relative error + alpha_weight alpha_norm + tv_weight tv_norm, clamped",
    cases=[Case("public_edges_layer2_beta1_n2", seed=0, public=True,
                params={"n": 2, "size": [16, 16], "layer_index": 2, "beta": 1.0, "tv_weight": 3e-3,
                        "init_std": 3.0}),
           Case("public_layer4_16px", seed=530,
                params={"n": 1, "size": [16, 16], "layer_index": 4, "beta": 2.0, "tv_weight": 1e-3}, public=True),
           Case("hidden_layer1_beta1_20px", seed=531,
                params={"n": 1, "size": [20, 20], "layer_index": 1, "beta": 1.0, "tv_weight": 3e-3}),
           Case("hidden_layer7_n3", seed=532,
                params={"n": 3, "size": [16, 16], "layer_index": 7, "beta": 2.0, "tv_weight": 1e-3}),
           Case("hidden_photo_layer5_24x20", seed=533,
                params={"n": 1, "size": [24, 20], "layer_index": 5, "beta": 2.0, "tv_weight": 2e-3,
                        "photo": "chelsea"}),
           Case("hidden_edges_layer5_beta1.5", seed=534,
                params={"n": 1, "size": [18, 18], "layer_index": 5, "beta": 1.5, "tv_weight": 2e-3,
                        "init_std": 2.5})],
    compare=PropertyCheck([Property("matches the code", prop_matches_code),
                           Property("stays in the valid range", prop_in_valid_range, required=False),
                           Property("regularized", prop_regularized, required=False)]))

QUESTIONS = [LOSS, ALPHA, TV, INVERT]
ASSIGNMENT = Assignment(id="02_feature_inversion", questions=QUESTIONS)
