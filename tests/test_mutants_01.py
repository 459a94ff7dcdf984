"""Wrong and correct variants of the 01_saliency_class_visualization functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference); every question is graded
with the engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``),
the path the sandboxed worker's results go through too. A wrong variant must lose points on its own question and on
no other; a correct variant (per-image loop, float64 inside, another norm call, zeroing the gradient before or
after, ...) must get full marks. Case files are the committed ones when present, otherwise built in memory from the
question spec exactly as the reference generator does.
"""
from __future__ import annotations

import importlib.util
import inspect
from functools import lru_cache
from pathlib import Path

import pytest

import utils.reference as R
from autograder import calls, casefile, judge, references, registry
from autograder import verdicts as V

ASSIGNMENT_ID = "01_saliency_class_visualization"
_MUTANTS = Path(__file__).resolve().parent / "mutants" / "mutants_01.py"


def _load_mutants():
    spec = importlib.util.spec_from_file_location("mutants_01", _MUTANTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M = _load_mutants()

#: Mutants that only show up when the engine calls an in-place step several times on the same ``img`` (gradients
#: accumulating in ``img.grad``). They are expected to fail until the engine supports repeated calls
#: (``Question.repeat``); ``strict`` turns the xfail into an error the day they are caught, as a reminder.
NEEDS_REPEATED_CALLS = {("class_visualization_update_step", "no_grad_reset"),
                        ("neuron_visualization_update_step", "no_grad_reset")}


def _engine_repeats(q) -> bool:
    return getattr(q, "repeat", 1) > 1 and "repeat" in inspect.signature(calls.run).parameters


@lru_cache(maxsize=None)
def _entry():
    return registry.get(ASSIGNMENT_ID)


@lru_cache(maxsize=None)
def _case_file(qid: str, case_name: str) -> casefile.CaseFile:
    entry = _entry()
    q = entry.assignment.question(qid)
    case = next(c for c in q.cases if c.name == case_name)
    path = entry.case_path(q, case)
    if path.exists():
        return casefile.read(path)
    return references.build_case(entry, q, case)


def grade_question(qid: str, fn) -> V.Result:
    q = _entry().assignment.question(qid)
    extra = {"repeat": q.repeat} if _engine_repeats(q) else {}
    results = []
    for case in q.cases:
        cf = _case_file(qid, case.name)
        status, outputs = calls.run(fn, casefile.build_args(cf), q.inplace, q.positional, **extra)
        results.append(judge.judge_case(q, case, status, outputs, cf.expected, lambda cf=cf: casefile.build_args(cf)))
    return judge.question_result(q, results)


@lru_cache(maxsize=None)
def _reference_results() -> dict[str, float]:
    return {q.id: grade_question(q.id, getattr(R, q.reference_name)).points for q in _entry().assignment.questions}


def grade_submission(replace: dict) -> dict[str, V.Result]:
    """Every question graded, with the reference for every function not in ``replace``."""
    return {q.id: grade_question(q.id, replace.get(q.id, getattr(R, q.reference_name)))
            for q in _entry().assignment.questions}


def _params(table, expect_fail=frozenset()):
    out = []
    for qid, fns in table.items():
        for name in fns:
            marks = []
            if (qid, name) in expect_fail:
                q = _entry().assignment.question(qid)
                if not _engine_repeats(q):
                    marks = [pytest.mark.xfail(strict=True, reason="needs the engine to call the step several times "
                                                                   "on the same img (Question.repeat)")]
            out.append(pytest.param(qid, name, id=f"{qid}-{name}", marks=marks))
    return out


def test_every_question_has_wrong_and_correct_variants():
    ids = [q.id for q in _entry().assignment.questions]
    assert sorted(M.WRONG) == sorted(ids)
    assert sorted(M.CORRECT) == sorted(ids)
    assert _entry().assignment.max_points == 12


def test_reference_gets_full_marks():
    for q in _entry().assignment.questions:
        assert _reference_results()[q.id] == q.points, q.id


@pytest.mark.parametrize("qid,name", _params(M.WRONG, NEEDS_REPEATED_CALLS))
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
