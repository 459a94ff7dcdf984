"""Wrong and correct variants of the 05_fooling_images functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference) and is graded with the
engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``), the
path the sandboxed worker's results go through too; property checks run exactly as in grading (the model is
rebuilt from the case file and re-run on the variant's output). A wrong variant (descent instead of ascent, the
untargeted attack when a target is asked, a softmax-probability gradient, unnormalized steps, no early stop,
no clamping, ...) must lose points on its own question and on no other; a correct variant (another norm call, a
loop with a different but valid stopping check, another objective for the untargeted and unrecognizable
images, ...) must get full marks. The harness is tests/mutant_harness.py.
"""
from __future__ import annotations

import pytest
import torch

from autograder.core import casefile
from autograder.core import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "05_fooling_images"
H = Harness(ASSIGNMENT_ID, "mutants_05")
M = H.mutants
globals().update(H.standard_tests(max_points=8))  # + 2 points of written questions in the notebook = 10
_graded = H.graded


def test_the_mutants_the_issue_names_are_in_the_corpus():
    assert {"descent", "softmax_probability", "unnormalized", "no_clamp"} <= set(M.WRONG["fooling_step"])
    assert {"descent", "untargeted", "unnormalized", "no_early_stop", "no_clamp"} <= set(M.WRONG["make_fooling_image"])
    assert {"linalg_norm", "step_then_check", "while_score_check"} <= set(M.CORRECT["make_fooling_image"])


def test_every_wrong_variant_already_fails_a_public_case():
    """What a student gets wrong shows in the self-check; the hidden cases then add other sizes and sources."""
    H.check_public_cases_catch_wrong_variants({("make_fooling_image", "no_grad_reset")})


# -------------------------------------------------------------------- the properties catch what they promise


def _verdict_mentions(qid: str, name: str, prop: str) -> bool:
    res = _graded(qid, "wrong", name)
    return any(prop in c.message for c in res.cases if c.verdict == V.PROPERTY_FAILED)


@pytest.mark.parametrize("qid,name,prop", [
    ("make_fooling_image", "untargeted", "fooled into the target class"),
    ("make_fooling_image", "descent", "fooled into the target class"),
    ("make_fooling_image", "no_early_stop", "small perturbation"),
    ("make_fooling_image", "unnormalized", "small perturbation"),
    ("make_fooling_image", "two_extra_steps", "stops at the decision boundary"),
    ("make_fooling_image", "no_grad_reset", "small perturbation"),
    ("make_fooling_image", "no_clamp", "stays in the valid range"),
    ("make_untargeted_fooling_image", "ascent", "no longer the true class"),
    ("make_untargeted_fooling_image", "no_early_stop", "small perturbation"),
    ("make_untargeted_fooling_image", "no_clamp", "stays in the valid range"),
    ("make_unrecognizable_image", "argmax_stop", "confident enough"),
    ("make_unrecognizable_image", "no_clamp", "stays in the valid range"),
])
def test_the_named_property_catches_the_mutant(qid, name, prop):
    assert _verdict_mentions(qid, name, prop), [(c.case, c.message) for c in _graded(qid, "wrong", name).cases]


def test_fooling_step_mutants_fail_as_wrong_values():
    for name in ("descent", "softmax_probability", "unnormalized", "no_clamp"):
        res = _graded("fooling_step", "wrong", name)
        assert {c.verdict for c in res.cases if not c.passed} == {V.WRONG_VALUES}, name


def test_properties_accept_the_reference_and_reject_the_unchanged_image():
    """Direct checks of the property functions on one committed case (no student code involved)."""
    qmod = H.entry
    q = qmod.assignment.question("make_fooling_image")
    cf = H.case_file(q.id, q.cases[0].name)
    inputs = casefile.build_args(cf)
    expected = cf.expected
    for prop in q.compare.properties:
        ok, why = prop.check(inputs, expected, expected)
        assert ok, (prop.name, why)
    unchanged = {"out": inputs["X"].clone()}
    fooled = next(p for p in q.compare.properties if p.name == "fooled into the target class")
    assert not fooled.check(inputs, unchanged, expected)[0]
    # an image just outside the valid range fails, one exactly on its edge passes
    lo, hi = inputs["bounds"]
    rng = next(p for p in q.compare.properties if p.name == "stays in the valid range")
    edge = {"out": torch.maximum(torch.minimum(expected["out"], hi), lo)}
    edge["out"][0, 0, 0, 0] = hi[0, 0, 0, 0]
    assert rng.check(inputs, edge, expected)[0]
    edge["out"][0, 0, 0, 0] = hi[0, 0, 0, 0] + 1e-3
    assert not rng.check(inputs, edge, expected)[0]


def test_cs231n_three_argument_version_without_clamp_gets_partial_credit():
    """cs231n's make_fooling_image(X, target_y, model) runs unchanged; it never clamps, so the valid-range item of
    each case is lost and the rest earned."""
    q = H.entry.assignment.question("make_fooling_image")
    res = _graded("make_fooling_image", "wrong", "cs231n_no_clamp")
    assert 0.5 * q.points <= res.points < q.points
    assert all(c.passed or "stays in the valid range" in c.message for c in res.cases)


def test_one_extra_step_past_the_boundary_is_accepted_on_every_case_and_two_are_not():
    one = _graded("make_fooling_image", "correct", "one_extra_step")
    assert all(c.passed for c in one.cases)
    two = _graded("make_fooling_image", "wrong", "two_extra_steps")
    assert sum(not c.passed for c in two.cases) >= len(two.cases) - 1, [(c.case, c.message) for c in two.cases]
