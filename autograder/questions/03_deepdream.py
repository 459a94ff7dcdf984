"""03_deepdream: the DeepDream step, the octave loop, and guided dreaming's objective.

* ``deepdream_step`` (in place) is called 3 times in a row on the same ``img`` in every case (``repeat``): a step
  that lets gradients accumulate in ``img.grad`` is right on the first call only, and only repeated calls show it.
* ``deepdream_octaves`` is graded deterministically (no jitter) on tiny models with a few steps per octave. It is
  self-contained (it does not call ``deepdream_step``), so a broken step never costs the octave question. It is
  called twice per case, so a function that changes its input ``img`` shows up.
* ``guided_gradient`` is a pure function of two activation tensors (no model). Inputs are drawn so that the best
  and second-best dot products at every position differ clearly (``MIN_GAP``), so the argmax is unambiguous for any
  float32 or float64 formulation.

Hidden cases change the seed, the batch size (N = 1 and N > 2), the image shape (non-square too), the layer, the
number of octaves, the scale, the bounds and the dtype. Known mistakes (``KNOWN_MISTAKES``, functions in
``utils.reference.deepdream``) let the grader name a typical wrong answer (L2-normalized step, gradient of sum(A),
layer left out, accumulated gradients, detail not carried, octaves large to small, argmin, the guide's mean...).
"""
from __future__ import annotations

import torch

from autograder.core.spec import Assignment, Case, Mistake, ModelRef, Question, TensorMatch

from ._inputs import gen

#: Smallest allowed gap between the best and the second-best dot product of ``guided_gradient``'s inputs.
MIN_GAP = 1e-2


# ------------------------------------------------------------------------------------------------- builders


def build_step(seed: int, n: int, height: int, layer_index: int, learning_rate: float, width: int | None = None,
               model: str = "tiny_cnn") -> dict:
    g = gen(seed)
    img = torch.randn(n, 3, height, width or height, generator=g).requires_grad_(True)
    return {"img": img,
            "model": ModelRef("shapes") if model == "shapes" else ModelRef(model, seed=seed),
            "layer_index": layer_index,
            "learning_rate": learning_rate}


def build_octaves(seed: int, n: int, height: int, width: int, layer_index: int, num_octaves: int,
                  octave_scale: float, num_steps: int, learning_rate: float, bounds: float | None = None) -> dict:
    g = gen(seed)
    inputs = {"img": torch.randn(n, 3, height, width, generator=g),
              "model": ModelRef("tiny_cnn", seed=seed),
              "layer_index": layer_index,
              "num_octaves": num_octaves,
              "octave_scale": octave_scale,
              "num_steps": num_steps,
              "learning_rate": learning_rate}
    if bounds is not None:     # per-channel bounds around +-bounds (the case's img starts partly outside them)
        lo = -bounds * torch.tensor([1.0, 0.8, 1.2]).view(1, 3, 1, 1)
        inputs["bounds"] = (lo, -lo)
    return inputs


def _separated(scores: torch.Tensor) -> bool:
    top2 = scores.topk(2, dim=-1).values
    return bool(((top2[..., 0] - top2[..., 1]) > MIN_GAP).all())


def build_guide(seed: int, n: int, channels: int, height: int, width: int, guide_height: int, guide_width: int,
                dtype: str = "float32", nonnegative: bool = False) -> dict:
    g = gen(seed)
    for _ in range(100):         # redraw until every argmax is clear (a near-tie would depend on rounding)
        a = torch.randn(n, channels, height, width, generator=g, dtype=torch.float64)
        b = torch.randn(1, channels, guide_height, guide_width, generator=g, dtype=torch.float64)
        if nonnegative:          # like ReLU features, without exact zeros (an all-zero vector ties everywhere)
            a, b = a.abs() + 0.05, b.abs() + 0.05
        a, b = a.to(getattr(torch, dtype)), b.to(getattr(torch, dtype))
        dots = torch.einsum("ncp,cq->npq", a.double().flatten(2), b.double().reshape(channels, -1))
        if _separated(dots):
            return {"activations": a, "guide_features": b}
    raise RuntimeError(f"build_guide: no well-separated draw for seed {seed}")


# ------------------------------------------------------------------------------------------- known mistakes

_REF = "utils.reference.deepdream:"

#: question -> (name, hint, function in utils.reference.deepdream): typical wrong answers the grader names when a
#: student's output matches one (tests/test_mutants_03.py checks that each mutant is diagnosed as its own mistake).
KNOWN_MISTAKES = {
    "deepdream_step": [
        ("L2-normalized step", "you divided the step by the gradient's L2 norm (class visualization's step); "
         "DeepDream divides by the mean absolute value: g / g.abs().mean()", "mistake_step_l2_norm"),
        ("max-normalized step", "you divided the step by max |g|; divide by the mean absolute value, "
         "g / g.abs().mean()", "mistake_step_max_norm"),
        ("unnormalized step", "the step is learning_rate * g; divide g by its mean absolute value first",
         "mistake_step_unnormalized"),
        ("gradient of sum(A)", "you climbed sum(A); the objective is 1/2 sum(A**2), whose gradient at the layer is "
         "A itself (A.backward(A))", "mistake_step_sum_of_activations"),
        ("layer left out", "model.features[:layer_index] stops one layer early; include the layer: "
         "model.features[:layer_index + 1]", "mistake_step_layer_excluded"),
        ("gradient accumulates", "correct on the first call only: img.grad is never reset, so every later step "
         "follows the sum of all gradients so far; zero img.grad after the step or use torch.autograd.grad",
         "mistake_step_grad_accumulates"),
        ("per-image mean", "you normalized each image by its own mean |g|; use one mean over the whole tensor",
         "mistake_step_per_image_mean"),
    ],
    "deepdream_octaves": [
        ("detail not carried", "every octave restarted from the resized original; carry the detail: "
         "x = base + resize(detail, size), then detail = x - base", "mistake_octaves_detail_not_carried"),
        ("large to small", "the octaves ran from the full size down; start with the smallest "
         "(loop over reversed(sizes))", "mistake_octaves_large_to_small"),
        ("image carried", "you resized the dreamed image itself to the next scale; add the resized detail "
         "(x - base) to the next octave's sharp base resize(img, size) instead", "mistake_octaves_image_carried"),
        ("octave shrunk from the previous one", "google/deepdream's layout; here every octave's base is "
         "resize(img, size), straight from the original", "mistake_octaves_shrunk_from_previous"),
    ],
    "guided_gradient": [
        ("argmin", "you picked the guide vector with the smallest dot product; take the argmax",
         "mistake_guide_argmin"),
        ("guide's mean", "you used the guide's mean feature vector everywhere; at every position pick the guide "
         "vector with the largest dot product", "mistake_guide_mean"),
        ("plain DeepDream", "that is plain DeepDream's gradient (the activations themselves); guided dreaming "
         "returns the best-matching guide vector", "mistake_guide_activations"),
        ("nearest in distance", "you picked the closest guide vector in Euclidean distance; the objective uses the "
         "largest dot product (longer guide vectors win more often)", "mistake_guide_nearest"),
    ],
}


def _mistakes(qid: str) -> dict:
    """``mistakes=...`` of question ``qid``: the instructor-only functions named in ``KNOWN_MISTAKES``."""
    return {"mistakes": tuple(Mistake(name, hint, _REF + fn) for name, hint, fn in KNOWN_MISTAKES[qid])}


# ------------------------------------------------------------------------------------------------ questions

STEP = Question(
    id="deepdream_step", points=3, build=build_step, inplace="img", repeat=3, **_mistakes("deepdream_step"),
    description="img += lr * g / mean|g|, g = d(1/2 ||A||^2)/d img, A = model.features[:layer_index + 1](img)",
    cases=[Case("public_n1_16px_relu2", seed=0, public=True,
                params={"n": 1, "height": 16, "layer_index": 4, "learning_rate": 0.1}),
           Case("public_n3_20px_conv1", seed=301,
                params={"n": 3, "height": 20, "layer_index": 0, "learning_rate": 0.05}, public=True),
           Case("hidden_n1_24x18_last", seed=302,
                params={"n": 1, "height": 24, "width": 18, "layer_index": 7, "learning_rate": 0.2}),
           Case("hidden_n5_12px_pool1", seed=303,
                params={"n": 5, "height": 12, "layer_index": 2, "learning_rate": 0.1}),
           Case("hidden_shapes_n2_32px", seed=304,
                params={"n": 2, "height": 32, "layer_index": 6, "learning_rate": 0.05, "model": "shapes"})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

OCTAVES = Question(
    id="deepdream_octaves", points=3, build=build_octaves, repeat=2, **_mistakes("deepdream_octaves"),
    description="smallest octave first; x = base + resize(detail); num_steps normalized steps; detail = x - base",
    cases=[Case("public_n1_20px_3oct", seed=0, public=True,
                params={"n": 1, "height": 20, "width": 20, "layer_index": 4, "num_octaves": 3, "octave_scale": 1.4,
                        "num_steps": 3, "learning_rate": 0.1}),
           Case("public_n3_24x18_2oct", seed=311,
                params={"n": 3, "height": 24, "width": 18, "layer_index": 1, "num_octaves": 2, "octave_scale": 1.5,
                        "num_steps": 4, "learning_rate": 0.05}, public=True),
           Case("hidden_n1_28px_bounds", seed=312,
                params={"n": 1, "height": 28, "width": 28, "layer_index": 7, "num_octaves": 3, "octave_scale": 1.3,
                        "num_steps": 2, "learning_rate": 0.2, "bounds": 1.5}),
           Case("hidden_n2_32x26_4oct", seed=313,
                params={"n": 2, "height": 32, "width": 26, "layer_index": 3, "num_octaves": 4, "octave_scale": 1.6,
                        "num_steps": 2, "learning_rate": 0.1}),
           Case("hidden_n1_16px_1oct", seed=314,
                params={"n": 1, "height": 16, "width": 16, "layer_index": 5, "num_octaves": 1, "octave_scale": 1.4,
                        "num_steps": 3, "learning_rate": 0.1})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

GUIDE = Question(
    id="guided_gradient", points=2, build=build_guide, repeat=2, **_mistakes("guided_gradient"),
    description="at every position, the guide's feature vector with the largest dot product",
    cases=[Case("public_n1_c8", seed=0, public=True,
                params={"n": 1, "channels": 8, "height": 5, "width": 6, "guide_height": 4, "guide_width": 4}),
           Case("public_n3_c16", seed=321,
                params={"n": 3, "channels": 16, "height": 4, "width": 4, "guide_height": 7, "guide_width": 5}, public=True),
           Case("hidden_n1_nonnegative", seed=322,
                params={"n": 1, "channels": 12, "height": 6, "width": 3, "guide_height": 5, "guide_width": 6,
                        "nonnegative": True}),
           Case("hidden_n4_float64", seed=323,
                params={"n": 4, "channels": 5, "height": 3, "width": 5, "guide_height": 3, "guide_width": 3,
                        "dtype": "float64"})],
    compare=TensorMatch(rtol=1e-5, atol=1e-6))

QUESTIONS = [STEP, OCTAVES, GUIDE]
ASSIGNMENT = Assignment(id="03_deepdream", questions=QUESTIONS)
