"""Wrong and correct variants of the 04_neural_style functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference) and is graded with the
engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``), the
path the sandboxed worker's results go through too. A wrong variant (a Gram matrix not normalized, divided by
H*W only, mixing the batch through ``features.view(C, -1)``, over positions instead of channels; a content loss
as a mean; a style loss with a square root or without its weights; TV with absolute values or one direction only;
colour preservation with luminance and chrominance swapped; an unnormalized blend ...) must lose points on its own
question and on no other; a correct variant (einsum, bmm, loops, float64, another chrominance pair, a published
rounded inverse, ...) must get full marks. The harness is tests/mutant_harness.py.
"""
from __future__ import annotations

import importlib

import pytest

from autograder.core import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "04_neural_style"
H = Harness(ASSIGNMENT_ID, "mutants_04")
M = H.mutants
globals().update(H.standard_tests(max_points=10))  # + 3 points of written questions in the notebook = 13
_graded = H.graded


def test_the_mutants_the_issue_names_are_in_the_corpus():
    assert {"not_normalized", "hw_only", "view_c_mixes_batch", "over_positions"} <= set(M.WRONG["gram_matrix"])
    assert {"einsum", "bmm", "loop_float64"} <= set(M.CORRECT["gram_matrix"])
    assert "mean" in M.WRONG["content_loss"]
    assert {"sqrt", "no_weights"} <= set(M.WRONG["style_loss"])
    assert {"abs", "horizontal_only", "vertical_only"} <= set(M.WRONG["tv_loss"])
    assert "swapped" in M.WRONG["preserve_color"]


def test_every_wrong_variant_already_fails_a_public_case():
    """What a student gets wrong shows in the self-check; the hidden cases then add other sizes and batches."""
    H.check_public_cases_catch_wrong_variants({("gram_matrix", "default_false")})


def test_gram_default_false_fails_only_the_case_that_uses_the_default():
    res = _graded("gram_matrix", "wrong", "default_false")
    assert {c.case for c in res.cases if not c.passed} == {"hidden_n1_default"}


def test_view_c_mixes_the_batch_only_when_n_is_above_one():
    """The cs231n N = 1 recipe is right for one image and wrong for every batch: exactly the N > 1 cases fail."""
    res = _graded("gram_matrix", "wrong", "view_c_mixes_batch")
    cases = {c.case: c for c in res.cases}
    assert cases["public_n1_raw"].passed and cases["hidden_n1_default"].passed
    assert {c.case for c in res.cases if not c.passed} == {"public_n2", "hidden_n3_unnormalized", "hidden_n4_wide"}
    assert all(c.verdict == V.WRONG_VALUES for c in res.cases if not c.passed)


def test_gram_over_positions_is_a_wrong_shape():
    res = _graded("gram_matrix", "wrong", "over_positions")
    assert {c.verdict for c in res.cases} == {V.WRONG_SHAPE}


def test_blend_without_keepdim_is_a_wrong_shape():
    res = _graded("blend_style_targets", "wrong", "no_keepdim")
    assert {c.verdict for c in res.cases} == {V.WRONG_SHAPE}
    assert "expected shape (1, " in res.cases[0].message


@pytest.mark.parametrize("qid,name", [("content_loss", "mean"), ("style_loss", "sqrt"), ("tv_loss", "abs"),
                                      ("preserve_color", "swapped"), ("blend_style_targets", "unnormalized")])
def test_value_mistakes_fail_every_case_as_wrong_values(qid, name):
    res = _graded(qid, "wrong", name)
    assert {c.verdict for c in res.cases} == {V.WRONG_VALUES}, [(c.case, c.message) for c in res.cases]


def test_no_clamp_fails_where_the_content_is_saturated():
    """Every case has saturated content colours, so the recombined colour leaves [0, 1] somewhere in each."""
    res = _graded("preserve_color", "wrong", "no_clamp")
    assert not any(c.passed for c in res.cases)


# ------------------------------------------------------------------------------------ known mistakes (issue 13)

KNOWN = importlib.import_module("autograder.questions.04_neural_style").KNOWN_MISTAKES


def _mistake_params():
    return [pytest.param(qid, name, fn, id=f"{qid}-{fn}") for qid, items in KNOWN.items() for name, _, fn in items]


def test_at_least_two_known_mistakes_per_question_and_each_in_the_corpus():
    from utils.reference import neural_style

    for q in H.entry.assignment.questions:
        assert len(KNOWN[q.id]) >= 2, q.id
        corpus = set(M.WRONG[q.id].values())
        for _, _, fn in KNOWN[q.id]:
            assert getattr(neural_style, fn) in corpus, (q.id, fn)       # graded by the corpus tests above
            assert fn not in neural_style.__all__                         # never a reference answer


@pytest.mark.parametrize("qid,name,fn", _mistake_params())
def test_the_grader_names_the_known_mistake(qid, name, fn):
    q = H.entry.assignment.question(qid)
    if not getattr(q, "mistakes", None):
        pytest.skip("this engine has no known mistakes (Question.mistakes)")
    variant = next(v for v, f in M.WRONG[qid].items() if f.__name__ == fn)
    res = _graded(qid, "wrong", variant)
    named = [c for c in res.cases if f'known mistake "{name}"' in c.message]
    assert named, [(c.case, c.verdict, c.message) for c in res.cases]
    assert any(c.public for c in named)                  # the self-check already names it
