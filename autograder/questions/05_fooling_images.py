"""05_fooling_images: adversarial examples (Szegedy et al. 2013) and unrecognizable images (Nguyen et al. 2014).

``fooling_step`` has one right answer (a normalized ascent step on the raw target score, clamped), so it is a
tensor match. The other three functions have many right answers (any short run of valid steps that ends on the
right side of the decision boundary), so they are property checks, calibrated on the reference's own output for
the same case:

* fooled / not the true class / confident enough: checked by running the model on the student's image here, in
  the grader's process;
* inside the valid range: every pixel stays a real pixel (0..255 before normalization);
* small perturbation: ``||X_out - X||_2 <= ||X_ref - X||_2 + 1.5 * learning_rate`` (one and a half steps);
* not pushed far past the boundary: the winning margin (target score minus the best other score) at most the
  reference's plus 1.5 times what one more reference step adds (measured when the case files are generated,
  ``utils.reference.fooling.calibrate_fooling``), so one extra step past the boundary is accepted on every case
  and two are not.

Staying in the valid range is a partial-credit item: an image that fools the model but is not clamped earns the
other properties' share of the case (cs231n's ``make_fooling_image(X, target_y, model)`` never clamps). The kit's
extra parameters are keyword-only and passed only when the student's function takes them (``Question.optional``),
so a function written to cs231n's three-argument signature is called the way it was written.

The fooling cases use the bundled classifier (a random tiny CNN cannot be fooled into every class: some classes
are out of its reach). Cases were picked (see ``benchmarks/fooling_success.py`` for the measurement over many
pairs) so that each wrong variant of ``tests/mutants/mutants_05.py`` fails at least one public and one hidden
case; hidden cases change the image source (procedural shapes, photos), the image size, the learning rate and the
target class.
"""
from __future__ import annotations

import functools
import hashlib

import torch

from utils.image import clamp_to_bounds

from autograder.core.spec import Assignment, Case, Mistake, ModelRef, Property, PropertyCheck, Question, TensorMatch

from ._inputs import gen, shapes_bounds, shapes_card, shapes_normalize

NUM_CLASSES = 10
SLACK_STEPS = 1.5              # targeted: how far past the reference (in its own steps) an answer may go
# Untargeted attacks have several right objectives (climb the runner-up's lead, or descend the true score), which
# take different numbers of steps, so their slack is relative to the reference instead:
UNTARGETED_FACTOR = 3.0        # perturbation and winning margin may be this many times the reference's ...
UNTARGETED_STEPS = 2.0         # ... plus this many steps (perturbation) or logits (margin)
RANGE_TOL = 1e-5               # pixels may overshoot the valid range by float rounding only
CONFIDENCE_TOL = 1e-4          # softmax probabilities are recomputed here: allow rounding
SCORE_TOL = 1e-4               # an argmax decided by less than this is a tie, not a failure


# ------------------------------------------------------------------------------------------------- inputs


def _images(seed: int, index: int = 0, n: int = 1, size: int = 64, photo: str | None = None) -> torch.Tensor:
    """``n`` images starting at ``index`` of ``make_shapes(index + n, seed, size)``, or a photo resized to ``size``."""
    if photo is not None:
        from utils.data import load_photo

        return shapes_normalize(load_photo(photo, size)[None])
    from utils.data import make_shapes

    images, _, _ = make_shapes(index + n, seed=seed, size=size)
    return shapes_normalize(images[index:index + n])


def _pinned_noise(g: torch.Generator, n: int, size: int) -> torch.Tensor:
    """Images inside the valid range with about a quarter of their values sitting exactly on its edges (a step that
    forgets to clamp shows up at once)."""
    lo, hi = shapes_bounds()
    u = (torch.rand(n, 3, size, size, generator=g) * 1.3 - 0.15).clamp(0.0, 1.0)
    return lo + (hi - lo) * u


def build_step(seed: int, n: int, size: int, targets: list[int], learning_rate: float, model: str = "tiny_cnn",
               source: str = "noise", photo: str | None = None) -> dict:
    g = gen(seed)
    if source == "noise":
        X = _pinned_noise(g, n, size)
    else:
        X = _images(seed, n=n, size=size, photo=photo)
    return {"X": X,
            "target_y": torch.tensor(targets, dtype=torch.long),
            "model": ModelRef(model, seed=seed) if model != "shapes" else ModelRef("shapes"),
            "learning_rate": learning_rate,
            "bounds": shapes_bounds()}


def build_fooling(seed: int, target: int, index: int = 0, size: int = 64, photo: str | None = None,
                  learning_rate: float = 1.0, max_steps: int = 30) -> dict:
    return {"X": _images(seed, index=index, size=size, photo=photo),
            "target_y": target,
            "model": ModelRef("shapes"),
            "learning_rate": learning_rate,
            "max_steps": max_steps,
            "bounds": shapes_bounds()}


def build_untargeted(seed: int, index: int = 0, size: int = 64, photo: str | None = None,
                     learning_rate: float = 1.0, max_steps: int = 30) -> dict:
    """``y`` is the bundled model's prediction on the image (the class to move away from)."""
    from utils.models import load_model

    X = _images(seed, index=index, size=size, photo=photo)
    with torch.no_grad():
        y = int(load_model("shapes", "cpu")(X).argmax(dim=1))
    return {"X": X,
            "y": y,
            "model": ModelRef("shapes"),
            "learning_rate": learning_rate,
            "max_steps": max_steps,
            "bounds": shapes_bounds()}


def build_unrecognizable(seed: int, targets: list[int], size: int, start: str, confidence: float,
                         learning_rate: float = 1.0, max_steps: int = 60) -> dict:
    g = gen(seed)
    n = len(targets)
    lo, hi = shapes_bounds()
    if start == "flat":   # one random flat colour per image
        X_init = lo + (hi - lo) * torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, size, size)
    else:                 # Gaussian noise around mid-grey, clamped into the valid range
        X_init = clamp_to_bounds(0.6 * torch.randn(n, 3, size, size, generator=g), (lo, hi))
    return {"target_y": torch.tensor(targets, dtype=torch.long),
            "model": ModelRef("shapes"),
            "confidence": confidence,
            "X_init": X_init.contiguous(),
            "learning_rate": learning_rate,
            "max_steps": max_steps,
            "bounds": shapes_bounds()}


# --------------------------------------------------------------------------------------------- properties


#: Scores already computed, by (model, image bytes): a case's properties score the same image two or three times.
_SCORES: dict[tuple, tuple[torch.nn.Module, torch.Tensor]] = {}


def _scores(model, X: torch.Tensor) -> torch.Tensor:
    """The model's scores ``(N, classes)`` in float64 for images ``X`` ``(N, 3, H, W)`` (only read by callers)."""
    X = X.detach().to(torch.float32)
    key = (id(model), tuple(X.shape), str(X.device),
           hashlib.blake2b(X.cpu().contiguous().numpy().tobytes(), digest_size=16).digest())
    hit = _SCORES.get(key)
    if hit is not None and hit[0] is model:  # the model is kept alive with its entry: its id is not reused
        return hit[1]
    with torch.no_grad():
        scores = model(X).to(torch.float64)
    if len(_SCORES) >= 512:
        _SCORES.clear()
    _SCORES[key] = (model, scores)
    return scores


def _lead(scores: torch.Tensor, cls: int) -> float:
    """Score of ``cls`` minus the best other score (positive: ``cls`` wins)."""
    s = scores[0].clone()
    own = float(s[cls])
    s[cls] = float("-inf")
    return own - float(s.max())


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    try:
        return shapes_card().classes
    except Exception:  # noqa: BLE001 - names are only decoration
        return tuple(str(i) for i in range(NUM_CLASSES))


def _cls(i: int) -> str:
    names = _names()
    return f"{i} ({names[i]})" if 0 <= i < len(names) else str(i)


def prop_in_valid_range(inputs, output, expected):
    lo, hi = inputs["bounds"]
    x = output["out"].to(torch.float64)
    below = (lo.to(torch.float64) - x).clamp_min(0)
    above = (x - hi.to(torch.float64)).clamp_min(0)
    worst = float(torch.maximum(below, above).max())
    if worst <= RANGE_TOL:
        return True, "every pixel is a valid pixel"
    n = int(((below > RANGE_TOL) | (above > RANGE_TOL)).sum())
    return False, (f"{n} of {x.numel()} values are outside the valid range (up to {worst:.3g} beyond it): "
                   f"clamp the image into [lo, hi] after every step")


def _perturbation(inputs, output, expected, targeted: bool = True):
    X = inputs["X"].to(torch.float64)
    got = float((output["out"].to(torch.float64) - X).norm())
    ref = float((expected["out"].to(torch.float64) - X).norm())
    lr = float(inputs.get("learning_rate", 1.0))
    allowed = ref + SLACK_STEPS * lr if targeted else UNTARGETED_FACTOR * ref + UNTARGETED_STEPS * lr
    return got, ref, allowed


def _small(targeted: bool):
    def prop_small_perturbation(inputs, output, expected):
        got, ref, allowed = _perturbation(inputs, output, expected, targeted)
        if got <= allowed:
            return True, f"||X_out - X|| = {got:.3g} (reference {ref:.3g})"
        return False, (f"the perturbation is too large: ||X_out - X||_2 = {got:.3g}, allowed at most {allowed:.3g} "
                       f"(the reference needs {ref:.3g}); normalize every step by the gradient's L2 norm, reset "
                       f"the gradient between steps and stop as soon as the model is fooled")
    return prop_small_perturbation


def _allowed_lead(expected) -> tuple[float, float]:
    """The reference's lead and the most an answer may lead by: 1.5 reference steps past the reference."""
    ref = float(expected["_lead"])
    gain = max(float(expected["_lead_one_more_step"]) - ref, 0.0)
    return ref, max(ref, 0.0) + SLACK_STEPS * gain + SCORE_TOL


def prop_fooled_into_target(inputs, output, expected):
    t = int(inputs["target_y"])
    s = _scores(inputs["model"], output["out"])
    lead = _lead(s, t)
    if lead >= -SCORE_TOL:
        return True, f"the model says {_cls(t)}"
    return False, (f"the model classifies your image as {_cls(int(s[0].argmax()))}, not the target {_cls(t)} "
                   f"(the target is {-lead:.3g} logits behind)")


def prop_target_not_far_past(inputs, output, expected):
    t = int(inputs["target_y"])
    got = _lead(_scores(inputs["model"], output["out"]), t)
    ref, allowed = _allowed_lead(expected)
    if got <= allowed:
        return True, f"target leads by {got:.3g} logits (reference {ref:.3g})"
    return False, (f"pushed past the decision boundary: the target leads by {got:.3g} logits, allowed at most "
                   f"{allowed:.3g} (the reference stops at {ref:.3g}; one more step would give "
                   f"{float(expected['_lead_one_more_step']):.3g}); stop as soon as the target is the top class")


def prop_not_true_class(inputs, output, expected):
    y = int(inputs["y"])
    s = _scores(inputs["model"], output["out"])
    lead = _lead(s, y)
    if lead <= SCORE_TOL:
        return True, f"the model now says {_cls(int(s[0].argmax()))}"
    return False, f"the model still classifies your image as the true class {_cls(y)} (by {lead:.3g} logits)"


def prop_true_class_not_far_past(inputs, output, expected):
    y = int(inputs["y"])
    model = inputs["model"]
    got = -_lead(_scores(model, output["out"]), y)
    ref = -_lead(_scores(model, expected["out"]), y)
    allowed = UNTARGETED_FACTOR * max(ref, 0.0) + UNTARGETED_STEPS
    if got <= allowed:
        return True, f"another class leads by {got:.3g} logits (reference {ref:.3g})"
    return False, (f"pushed far past the decision boundary: another class leads the true class by {got:.3g} "
                   f"logits, allowed at most {allowed:.3g} (the reference stops at {ref:.3g}); stop as soon as the "
                   f"true class is no longer the top class")


def prop_confident(inputs, output, expected):
    targets = inputs["target_y"].reshape(-1)
    conf = float(inputs["confidence"])
    probs = torch.softmax(_scores(inputs["model"], output["out"]), dim=1)
    p = probs[torch.arange(targets.numel()), targets]
    low = (p < conf - CONFIDENCE_TOL).nonzero().reshape(-1).tolist()
    if not low:
        return True, f"every image reaches p >= {conf:g} (lowest {float(p.min()):.4f})"
    worst = min(low, key=lambda i: float(p[i]))
    return False, (f"{len(low)} of {targets.numel()} images are below confidence {conf:g}: image {worst} reaches "
                   f"p = {float(p[worst]):.4f} for class {_cls(int(targets[worst]))}; keep stepping until the "
                   f"softmax probability (not just the argmax) reaches the confidence")


RANGE = Property("stays in the valid range", prop_in_valid_range, required=False)
SMALL = Property("small perturbation", _small(targeted=True))
SMALL_UNTARGETED = Property("small perturbation", _small(targeted=False))


# ------------------------------------------------------------------------------------------------ questions

STEP = Question(
    id="fooling_step", points=2, build=build_step,
    mistakes=[Mistake("softmax probability", "you climbed the softmax probability of the target; climb its raw score (the logit)",
                      "utils.reference.fooling:fooling_step_softmax_probability"),
              Mistake("unnormalized step", "the step is learning_rate * g; divide it by each image's gradient L2 norm",
                      "utils.reference.fooling:fooling_step_unnormalized"),
              Mistake("one norm for the batch", "you divided by the norm of the whole batch's gradient; each image gets its own norm, g.flatten(1).norm(dim=1)",
                      "utils.reference.fooling:fooling_step_one_norm_for_the_batch")],
    description="X + lr * g / ||g||_2 per image, g = d s_target / dX (raw score), clamped into bounds",
    cases=[Case("public_tiny_n2_16px", seed=0, public=True,
                params={"n": 2, "size": 16, "targets": [3, 7], "learning_rate": 1.0}),
           Case("public_tiny_n3_20px", seed=201,
                params={"n": 3, "size": 20, "targets": [9, 0, 4], "learning_rate": 0.5}, public=True),
           Case("hidden_tiny_n1_12px", seed=202,
                params={"n": 1, "size": 12, "targets": [5], "learning_rate": 2.0}),
           Case("hidden_shapes_n2_64px", seed=203,
                params={"n": 2, "size": 64, "targets": [6, 1], "learning_rate": 1.0, "model": "shapes",
                        "source": "shapes"}),
           Case("hidden_photo_48px", seed=204,
                params={"n": 1, "size": 48, "targets": [2], "learning_rate": 3.0, "model": "shapes",
                        "source": "photo", "photo": "chelsea"})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

FOOLING = Question(
    id="make_fooling_image", points=3, build=build_fooling,
    optional=("learning_rate", "max_steps", "bounds"), calibrate="utils.reference.fooling:calibrate_fooling",
    description="normalized ascent on the raw target score until the target is the argmax, clamped",
    cases=[Case("public_shapes", seed=0, public=True, params={"index": 3, "target": 4}),
           Case("public_shapes_target0", seed=301, params={"index": 2, "target": 0}, public=True),
           Case("hidden_shapes_80px", seed=302, params={"index": 0, "target": 3, "size": 80}),
           Case("hidden_photo", seed=303, params={"photo": "coffee", "target": 4}),
           Case("hidden_shapes_target3", seed=304, params={"index": 3, "target": 3})],
    compare=PropertyCheck([Property("fooled into the target class", prop_fooled_into_target), RANGE, SMALL,
                           Property("stops at the decision boundary", prop_target_not_far_past)]))

UNTARGETED = Question(
    id="make_untargeted_fooling_image", points=1, build=build_untargeted,
    description="normalized steps until the true class is no longer the argmax, clamped",
    cases=[Case("public_shapes", seed=0, public=True, params={"index": 1}),
           Case("public_shapes_56px", seed=311, params={"index": 0, "size": 56}, public=True),
           Case("hidden_photo", seed=312, params={"photo": "astronaut", "learning_rate": 0.5})],
    compare=PropertyCheck([Property("no longer the true class", prop_not_true_class), RANGE, SMALL_UNTARGETED,
                           Property("stops at the decision boundary", prop_true_class_not_far_past)]))

UNRECOGNIZABLE = Question(
    id="make_unrecognizable_image", points=2, build=build_unrecognizable,
    description="from noise or a flat image to softmax(target) >= confidence for every image, clamped",
    cases=[Case("public_noise_n2_48px", seed=0, public=True,
                params={"targets": [3, 8], "size": 48, "start": "noise", "confidence": 0.996}),
           Case("public_flat_n1", seed=401,
                params={"targets": [6], "size": 64, "start": "flat", "confidence": 0.999}, public=True),
           Case("hidden_noise_n3_32px", seed=402,
                params={"targets": [0, 5, 9], "size": 32, "start": "noise", "confidence": 0.99,
                        "learning_rate": 0.5}),
           Case("hidden_flat_n2_40px", seed=403,
                params={"targets": [7, 1], "size": 40, "start": "flat", "confidence": 0.996})],
    compare=PropertyCheck([Property("confident enough", prop_confident), RANGE]))

QUESTIONS = [STEP, FOOLING, UNTARGETED, UNRECOGNIZABLE]
ASSIGNMENT = Assignment(id="05_fooling_images", questions=QUESTIONS)
