"""Wrong and correct variants of the 06_metric_embeddings functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference); the whole submission is
graded question by question with the engine's own in-process path (case files -> ``calls.run`` ->
``judge.judge_case`` -> ``judge.question_result``), the one the sandboxed worker's results go through too.
A wrong variant must lose points on its own question and on no other; a correct variant must get full marks.
The harness (tests/mutant_harness.py) uses the committed case files, so the committed references are what is tested.
"""
from __future__ import annotations

from functools import lru_cache

import pytest

from autograder import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "06_metric_embeddings"
H = Harness(ASSIGNMENT_ID, "mutants_06")
M = H.mutants
grade_question = H.grade_question


def _entry():
    return H.entry


@lru_cache(maxsize=None)
def _reference_results() -> dict[str, float]:
    return {q.id: grade_question(q.id, H.reference(q.id)).points for q in _entry().assignment.questions}


grade_submission = H.grade_submission


def _params(table):
    return [pytest.param(qid, name, id=f"{qid}-{name}") for qid, fns in table.items() for name in fns]


def test_every_question_has_wrong_and_correct_variants():
    ids = [q.id for q in _entry().assignment.questions]
    assert sorted(M.WRONG) == sorted(ids)
    assert sorted(M.CORRECT) == sorted(ids)
    assert _entry().assignment.max_points == 17


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
    """Conventions a student can get wrong are visible in the self-check; only hard-coded sizes / counts and the
    edge-case conventions (singletons, separated clusters) need the hidden cases."""
    hidden_only = {("pairwise_distances", "always_plain"), ("pairwise_distances", "hardcoded_n"),
                   ("recall_at_k", "ignores_k"), ("recall_at_k", "majority_vote"),
                   ("recall_at_k", "skips_singletons"), ("contrastive_loss", "hardcoded_batch"),
                   ("triplet_loss", "mean_nonzero"), ("triplet_loss", "hardcoded_batch"),
                   ("batch_all_triplets", "hardcoded_classes"), ("batch_all_triplets", "hardcoded_batch"),
                   ("batch_hard_triplets", "self_counts_as_positive"),
                   ("semi_hard_triplets", "hardcoded_margin"), ("batch_all_triplet_loss", "hardcoded_classes"),
                   ("lifted_structured_loss", "mean_nonzero"), ("lifted_structured_loss", "hardcoded_pair_count"),
                   ("npair_loss", "hardcoded_batch")}
    for qid, fns in M.WRONG.items():
        for name, fn in fns.items():
            res = grade_question(qid, fn)
            public_failed = any(c.public and not c.passed for c in res.cases)
            if (qid, name) not in hidden_only:
                assert public_failed, f"{qid}/{name} passes the public case"
