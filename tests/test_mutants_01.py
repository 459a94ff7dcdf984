"""Wrong and correct variants of the 01_saliency_class_visualization functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference); every question is graded
with the engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``),
the path the sandboxed worker's results go through too. A wrong variant must lose points on its own question and on
no other; a correct variant (per-image loop, float64 inside, another norm call, zeroing the gradient before or
after, ...) must get full marks. The harness is tests/mutant_harness.py.
"""
from __future__ import annotations

from functools import lru_cache

import pytest

import utils.reference as R
from autograder import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "01_saliency_class_visualization"
H = Harness(ASSIGNMENT_ID, "mutants_01")
M = H.mutants
grade_question = H.grade_question


def _entry():
    return H.entry


#: Mutants that only show up because the engine calls an in-place step several times on the same ``img``
#: (``Question.repeat``): gradients accumulating in ``img.grad``.
NEEDS_REPEATED_CALLS = {("class_visualization_update_step", "no_grad_reset"),
                        ("neuron_visualization_update_step", "no_grad_reset")}


@lru_cache(maxsize=None)
def _reference_results() -> dict[str, float]:
    return {q.id: grade_question(q.id, getattr(R, q.reference_name)).points for q in _entry().assignment.questions}


grade_submission = H.grade_submission


def _params(table):
    return [pytest.param(qid, name, id=f"{qid}-{name}") for qid, fns in table.items() for name in fns]


def test_every_question_has_wrong_and_correct_variants():
    ids = [q.id for q in _entry().assignment.questions]
    assert sorted(M.WRONG) == sorted(ids)
    assert sorted(M.CORRECT) == sorted(ids)
    assert _entry().assignment.max_points == 12


def test_reference_gets_full_marks():
    for q in _entry().assignment.questions:
        assert _reference_results()[q.id] == q.points, q.id


@pytest.mark.parametrize("qid,name", _params(M.WRONG))
def test_wrong_variant_loses_points_only_on_its_question(qid, name):
    results = grade_submission({qid: M.WRONG[qid][name]})
    q = _entry().assignment.question(qid)
    assert results[qid].points < q.points, f"{name} got full marks on {qid}"
    failing = [c for c in results[qid].cases if not c.passed]
    assert all(c.verdict != V.NOT_ATTEMPTED for c in failing)
    for other, res in results.items():
        if other != qid:
            assert res.points == _entry().assignment.question(other).points, (other, res)


@pytest.mark.parametrize("qid,name", _params(M.CORRECT))
def test_correct_variant_gets_full_marks(qid, name):
    res = grade_question(qid, M.CORRECT[qid][name])
    bad = [(c.case, c.verdict, c.message) for c in res.cases if not c.passed]
    assert res.points == _entry().assignment.question(qid).points, bad


def test_conceptual_mutants_already_fail_a_public_case():
    """What a student can get wrong conceptually shows in the self-check; only hard-coded sizes, the per-image
    percentile, N-dependent scaling and accumulated gradients need the hidden cases."""
    hidden_only = {("compute_saliency_maps", "hardcoded_batch"), ("compute_saliency_maps", "mean_of_scores"),
                   *NEEDS_REPEATED_CALLS}
    for qid, fns in M.WRONG.items():
        for name, fn in fns.items():
            if (qid, name) in hidden_only:
                continue
            res = grade_question(qid, fn)
            assert any(c.public and not c.passed for c in res.cases), f"{qid}/{name} passes the public case"


def test_hardcoded_batch_mutant_passes_public_but_fails_hidden():
    res = grade_question("compute_saliency_maps", M.WRONG["compute_saliency_maps"]["hardcoded_batch"])
    assert all(c.passed for c in res.cases if c.public)
    verdicts = {c.case: c.verdict for c in res.cases if not c.public}
    assert verdicts["hidden_n1_24px"] == V.ERROR                       # index 1 is out of bounds for N = 1
    assert verdicts["hidden_n5_20px"] == V.WRONG_VALUES                # images 3.. get an all-zero map
