"""Wrong and correct variants of the 03_deepdream functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference) and is graded with the
engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``), the
path the sandboxed worker's results go through too. A wrong variant (a step normalized by the L2 norm, by the max
or not at all, the gradient of sum(A), the layer sliced one too short, gradients accumulating across calls; an
octave loop that drops the detail, runs large to small, carries the image instead of the detail; a guide that
picks the minimum, the guide's mean, ...) must lose points on its own question and on no other; a correct variant
("dx = x" with ``A.backward(A)``, float64, loops, google/deepdream's per-image NumPy code) must get full marks.
The harness is tests/mutant_harness.py.
"""
from __future__ import annotations

import pytest

from autograder.core import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "03_deepdream"
H = Harness(ASSIGNMENT_ID, "mutants_03")
M = H.mutants
globals().update(H.standard_tests(max_points=8))  # + 2 points of written questions in the notebook = 10

#: Wrong variants only the hidden cases can catch: no public case passes bounds to the octave loop.
HIDDEN_ONLY = {("deepdream_octaves", "no_clamp")}


def test_the_mutants_the_issue_names_are_in_the_corpus():
    assert {"l2_norm", "max_norm", "no_norm", "sum_of_A", "slice_too_short", "grad_accumulates"} \
        <= set(M.WRONG["deepdream_step"])
    assert {"detail_not_carried", "large_to_small"} <= set(M.WRONG["deepdream_octaves"])
    assert {"argmin", "guide_mean"} <= set(M.WRONG["guided_gradient"])
    assert "dx_equals_x" in M.CORRECT["deepdream_step"] and "dx_equals_x" in M.CORRECT["deepdream_octaves"]


def test_every_conceptual_wrong_variant_already_fails_a_public_case():
    H.check_public_cases_catch_wrong_variants(HIDDEN_ONLY)


def test_hidden_only_mutants_fail_a_hidden_case():
    for qid, name in HIDDEN_ONLY:
        res = H.graded(qid, "wrong", name)
        assert all(c.passed for c in res.cases if c.public), (qid, name)
        assert any(not c.passed for c in res.cases if not c.public), (qid, name)


def test_accumulated_gradients_pass_one_call_and_fail_repeated_calls():
    """Only Question.repeat catches the step that never resets img.grad: with one call per case it would pass."""
    from dataclasses import replace

    q = H.entry.assignment.question("deepdream_step")
    assert q.repeat >= 2
    fn = M.WRONG["deepdream_step"]["grad_accumulates"]
    once = replace(q, repeat=1)
    from autograder.core import calls, casefile

    for case in q.cases:
        cf = H.case_file(q.id, case.name)
        # the reference output of one call, recomputed: a single call of the mutant must match it
        ref_args = casefile.build_args(cf)
        calls.call(H.reference(q.id), ref_args, q.inplace, repeat=1)
        status, out = calls.run(fn, casefile.build_args(cf), q.inplace, repeat=1)
        assert status["status"] == "ok"
        verdict, *_ = once.compare.compare({"out": ref_args["img"].detach()}, out)
        assert verdict == V.PASSED, case.name
    assert all(not c.passed for c in H.graded(q.id, "wrong", "grad_accumulates").cases)


def test_large_to_small_returns_the_small_image():
    res = H.graded("deepdream_octaves", "wrong", "large_to_small")
    assert any(c.verdict == V.WRONG_SHAPE for c in res.cases if c.public)


# --------------------------------------------------------------------------------- known mistakes (issue 13)

#: mutant -> the known mistake (autograder/questions/03_deepdream.py) it must be diagnosed as
DIAGNOSES = {
    ("deepdream_step", "l2_norm"): "L2-normalized step",
    ("deepdream_step", "max_norm"): "max-normalized step",
    ("deepdream_step", "no_norm"): "unnormalized step",
    ("deepdream_step", "sum_of_A"): "gradient of sum(A)",
    ("deepdream_step", "slice_too_short"): "layer left out",
    ("deepdream_step", "grad_accumulates"): "gradient accumulates",
    ("deepdream_step", "per_image_mean"): "per-image mean",
    ("deepdream_octaves", "detail_not_carried"): "detail not carried",
    ("deepdream_octaves", "large_to_small_resized"): "large to small",
    ("deepdream_octaves", "carries_image_not_detail"): "image carried",
    ("deepdream_octaves", "shrinks_previous_octave"): "octave shrunk from the previous one",
    ("guided_gradient", "argmin"): "argmin",
    ("guided_gradient", "guide_mean"): "guide's mean",
    ("guided_gradient", "plain_activations"): "plain DeepDream",
    ("guided_gradient", "nearest_by_distance"): "nearest in distance",
}


def _engine_reads_mistakes() -> bool:
    return bool(getattr(H.entry.assignment.question("deepdream_step"), "mistakes", ()))


def test_every_declared_mistake_is_exercised_by_a_mutant():
    import importlib

    qfile = importlib.import_module("autograder.questions.03_deepdream")
    declared = {(qid, name) for qid, items in qfile.KNOWN_MISTAKES.items() for name, _, _ in items}
    assert declared == {(qid, name) for (qid, _), name in DIAGNOSES.items()}
    for (qid, mutant) in DIAGNOSES:
        assert mutant in M.WRONG[qid]


@pytest.mark.parametrize("qid,name", list(DIAGNOSES), ids=[f"{q}-{n}" for q, n in DIAGNOSES])
def test_known_mistakes_name_the_mutant(qid, name):
    """Every case the mutant fails on with wrong values names its own mistake (never another one)."""
    if not _engine_reads_mistakes():
        pytest.skip("this engine's Question has no known mistakes")
    res = H.graded(qid, "wrong", name)
    failed = [c for c in res.cases if c.verdict == V.WRONG_VALUES]
    assert failed
    for c in failed:
        assert f'known mistake "{DIAGNOSES[(qid, name)]}"' in c.message, (c.case, c.message)


def test_correct_variants_and_other_wrong_answers_are_not_misdiagnosed():
    if not _engine_reads_mistakes():
        pytest.skip("this engine's Question has no known mistakes")
    for qid, fns in M.WRONG.items():
        for name in fns:
            if (qid, name) in DIAGNOSES:
                continue
            for c in H.graded(qid, "wrong", name).cases:
                assert "known mistake" not in c.message, (qid, name, c.case, c.message)


# ------------------------------------------------------------------------------ side effects and types (issue 13)


@pytest.mark.parametrize("qid,name,verdict,words", [
    ("deepdream_octaves", "overwrites_input", "modified input", "values were changed"),
    ("deepdream_octaves", "requires_grad_on_input", "modified input", "requires_grad"),
    ("guided_gradient", "returns_numpy", "wrong type", "NumPy"),
])
def test_side_effects_and_numpy_outputs_are_named(qid, name, verdict, words):
    """Right values, wrong manners: every case is lost with a verdict and message that say what went wrong."""
    if verdict not in V.VERDICTS:
        pytest.skip(f"this engine has no {verdict!r} verdict")
    res = H.graded(qid, "wrong", name)
    assert res.points == 0
    for c in res.cases:
        assert c.verdict == verdict and words in c.message, (c.case, c.verdict, c.message)
