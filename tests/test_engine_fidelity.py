"""Grading fidelity on what real student code does: side effects on the inputs, NumPy outputs, known mistakes,
in-place steps that do nothing or leak gradients, partial credit.

Every real assignment is checked: a function that is right but changes an argument it must leave alone (values,
``requires_grad``, ``.grad``), or returns NumPy, loses exactly the case where it did so, with a message naming it.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from autograder.core import calls, casefile, judge, registry
from autograder.core import verdicts as V
from autograder.course.layout import assignment_ids
from autograder.core.scoring import question_points
from autograder.core.spec import Mistake

IDS = assignment_ids()


def _grade(entry, q, fn, stored_mistakes: bool = True):
    """Every case of ``q`` graded in this process, the way the worker + grader do it (``stored_mistakes``: with the
    known mistakes' outputs the case file stores, as the grader does; False: the mistakes are run, as for a case
    file generated before they were stored)."""
    results = []
    for case in q.cases:
        cf = casefile.read(entry.case_path(q, case))
        status, outputs = calls.run(fn, casefile.build_args(cf), q.inplace, q.positional, cf.meta.get("seed"),
                                    q.repeat, q.optional)
        results.append(judge.judge_case(q, case, status, outputs, cf.expected,
                                        lambda cf=cf: casefile.build_args(cf),
                                        stored_mistakes=cf.mistakes if stored_mistakes else None))
    return results


def _watched_question(entry):
    """The first question (not in place) with a floating-point tensor argument, and that argument's name."""
    for q in entry.assignment.questions:
        if q.inplace or q.positional:
            continue
        args = casefile.build_args(casefile.read(entry.case_path(q, q.cases[0])))
        for name, value in args.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return q, name
    pytest.skip(f"{entry.id} has no question with a floating-point tensor argument")


def _misbehaving(fn, name, how, calls_to_spoil=None):
    """``fn``, but on the first ``calls_to_spoil`` calls (all when None) it also does ``how`` to argument ``name``."""
    counter = itertools.count()
    first: dict[int, bool] = {}

    def wrapper(**kwargs):
        out = fn(**kwargs)
        if calls_to_spoil is None or next(counter) < calls_to_spoil:
            t = kwargs[name]
            if how == "values":
                with torch.no_grad():
                    t.add_(1.0)
            elif how == "requires_grad":                  # flipped from what it was before the first call
                first.setdefault(id(t), not t.requires_grad)
                t.requires_grad_(first[id(t)])
            elif how == "grad":
                t.grad = torch.ones_like(t)
            elif how == "numpy":
                return out.detach().cpu().numpy()
        return out
    return wrapper


@pytest.mark.parametrize("assignment_id", IDS)
@pytest.mark.parametrize("how,verdict,words", [
    ("values", V.MODIFIED_INPUT, "values were changed"),
    ("requires_grad", V.MODIFIED_INPUT, "requires_grad was switched"),
    ("grad", V.MODIFIED_INPUT, ".grad was left set"),
    ("numpy", V.WRONG_TYPE, "NumPy"),
])
def test_side_effects_and_numpy_lose_exactly_the_case(assignment_id, how, verdict, words):
    entry = registry.get(assignment_id)
    q, name = _watched_question(entry)
    reference = entry.reference_function(q)
    # spoiled on every call: every case is lost, each with a message that names the argument
    for r in _grade(entry, q, _misbehaving(reference, name, how)):
        assert r.verdict == verdict and r.points == 0, (r.case, r.verdict, r.message)
        assert words in r.message and (how == "numpy" or f"`{name}`" in r.message), r.message
    # spoiled on the first call only: exactly the first case is lost
    results = _grade(entry, q, _misbehaving(reference, name, how, calls_to_spoil=max(1, q.repeat)))
    assert [r.verdict for r in results] == [verdict] + [V.PASSED] * (len(results) - 1)


def test_inputs_that_are_lists_of_tensors_are_watched_too():
    args = {"feats": [torch.zeros(2), torch.ones(3)], "w": 1.0}
    before = {n: calls._snapshot(t) for n, t in calls._watched(args, None)}
    args["feats"][1].mul_(2)
    found = calls.side_effects(before, args, None)
    assert len(found) == 1 and found[0].startswith("`feats[1]`")


def test_meta_tensor_is_a_wrong_type_not_not_attempted():
    status, out = calls.run(lambda x: torch.empty(2, device="meta"), {"x": torch.zeros(2)})
    assert status["status"] == calls.WRONG_TYPE and "meta" in status["message"] and out is None


def test_optional_arguments_reach_only_functions_that_take_them():
    args = {"X": 1, "target_y": 2, "model": 3, "learning_rate": 4, "bounds": 5}
    optional = ("learning_rate", "bounds")
    assert calls.accepted_args(lambda X, target_y, model: 0, args, optional) == {"X": 1, "target_y": 2, "model": 3}
    assert calls.accepted_args(lambda X, target_y, model, **kw: 0, args, optional) == args
    assert calls.accepted_args(lambda X, target_y, model, *, bounds=None: 0, args, optional) == {
        "X": 1, "target_y": 2, "model": 3, "bounds": 5}


# ------------------------------------------------------------------------------------------- known mistakes

MISTAKES = [(aid, q.id, m) for aid in IDS for q in registry.get(aid).assignment.questions for m in q.mistakes
            if isinstance(m, Mistake)]


@pytest.mark.parametrize("assignment_id", IDS)
def test_every_assignment_names_at_least_two_mistakes(assignment_id):
    questions = registry.get(assignment_id).assignment.questions
    assert sum(isinstance(m, Mistake) for q in questions for m in q.mistakes) >= 2


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "run"])
@pytest.mark.parametrize("assignment_id,qid,mistake", MISTAKES,
                         ids=[f"{q}-{m.name}" for _, q, m in MISTAKES])
def test_known_mistake_is_named_when_made(assignment_id, qid, mistake, stored):
    entry = registry.get(assignment_id)
    q = entry.assignment.question(qid)
    results = _grade(entry, q, judge._resolve(mistake.function), stored_mistakes=stored)
    failing = [r for r in results if not r.passed]
    assert failing, f"the mistake {mistake.name!r} passes every case of {qid}"
    assert any(f'known mistake "{mistake.name}"' in r.message for r in failing), [r.message for r in failing]


def _without_reference(monkeypatch):
    """As in a student's kernel: the instructor-only mistakes module cannot be imported."""
    def missing(path):
        raise ModuleNotFoundError("No module named 'utils.reference'")

    monkeypatch.setattr(judge, "_resolve", missing)


def test_a_mistake_that_cannot_be_looked_up_is_skipped(monkeypatch):
    """A case file without stored mistakes, where the mistakes module is absent: the diagnosis is skipped."""
    entry = registry.get("01_saliency_class_visualization")
    q = entry.assignment.question("compute_saliency_maps")
    wrong = judge._resolve(q.mistakes[0].function)
    _without_reference(monkeypatch)
    results = _grade(entry, q, wrong, stored_mistakes=False)
    assert all(r.verdict == V.WRONG_VALUES and "known mistake" not in r.message for r in results)


def test_stored_mistakes_need_no_reference_and_are_what_the_mistakes_return(monkeypatch):
    """The case files store each known mistake's outputs: the grader (and a student's kernel, which has no
    reference) names the mistake without running anything, and what is stored is what the mistake returns now."""
    entry = registry.get("01_saliency_class_visualization")
    q = entry.assignment.question("compute_saliency_maps")
    mistake = q.mistakes[0]
    for case in q.cases:
        cf = casefile.read(entry.case_path(q, case))
        status, now = calls.run(judge._resolve(mistake.function), casefile.build_args(cf), q.inplace, q.positional,
                                cf.meta.get("seed"), q.repeat, q.optional)
        assert status["status"] == calls.OK and set(now) == set(cf.mistakes[mistake.function])
        assert all(torch.equal(now[k], cf.mistakes[mistake.function][k]) for k in now)
        assert cf.inputs_only().mistakes is None and not any(k.startswith("mistake/") for k in cf.inputs_only().tensors)
    wrong = judge._resolve(mistake.function)
    _without_reference(monkeypatch)
    results = _grade(entry, q, wrong)
    assert any(f'known mistake "{mistake.name}"' in r.message for r in results)


def test_a_batch_runs_each_known_mistake_once_per_case(monkeypatch):
    """With a cache (the batch grader keeps one per assignment), judging many wrong answers runs each known mistake
    once per case, and the verdicts and messages are those judged without a cache."""
    entry = registry.get("01_saliency_class_visualization")
    q = entry.assignment.question("compute_saliency_maps")
    wrong = judge._resolve(q.mistakes[-1].function)
    answers = []
    for case in q.cases:
        cf = casefile.read(entry.case_path(q, case))
        status, outputs = calls.run(wrong, casefile.build_args(cf), q.inplace, q.positional, cf.meta.get("seed"),
                                    q.repeat, q.optional)
        answers.append((case, cf, status, outputs))
    plain = [judge.judge_case(q, case, status, outputs, cf.expected, lambda cf=cf: casefile.build_args(cf))
             for case, cf, status, outputs in answers]
    ran = []
    real_run = calls.run
    monkeypatch.setattr(calls, "run", lambda fn, *a, **k: (ran.append(fn), real_run(fn, *a, **k))[1])
    cache: dict = {}
    for student in range(3):
        got = [judge.judge_case(q, case, status, outputs, cf.expected, lambda cf=cf: casefile.build_args(cf),
                                mistake_cache=cache) for case, cf, status, outputs in answers]
        assert [(r.verdict, r.message, r.points) for r in got] == [(r.verdict, r.message, r.points) for r in plain]
        if student == 0:
            first = len(ran)
    assert any(f'known mistake "{q.mistakes[-1].name}"' in r.message for r in plain)
    assert 0 < first <= len(q.cases) * len(q.mistakes) and len(ran) == first  # nothing ran again


# --------------------------------------------------------------------------------------- in-place questions


def test_a_step_that_does_nothing_says_so():
    entry = registry.get("01_saliency_class_visualization")
    q = entry.assignment.question("class_visualization_update_step")
    for r in _grade(entry, q, lambda img, model, target_y, l2_reg, learning_rate: None):
        assert r.verdict == V.WRONG_VALUES and "`img` was not modified" in r.message, r.message


def test_a_step_that_never_resets_the_gradient_says_so():
    def accumulating(img, model, target_y, l2_reg, learning_rate):
        (model(img)[0, target_y] - l2_reg * img.pow(2).sum()).backward()
        with torch.no_grad():
            img += learning_rate * img.grad / img.grad.norm()

    entry = registry.get("01_saliency_class_visualization")
    q = entry.assignment.question("class_visualization_update_step")
    for r in _grade(entry, q, accumulating):
        assert r.verdict == V.WRONG_VALUES and "`img.grad` still holds a gradient" in r.message, r.message


# ------------------------------------------------------------------------------------------ partial credit


def test_partial_credit_per_case_adds_up():
    q = registry.get("05_fooling_images").assignment.question("make_fooling_image")
    names = [c.name for c in q.cases]
    assert question_points(q, {n: 1.0 for n in names}) == q.points
    assert question_points(q, {n: 0.75 for n in names}) == pytest.approx(0.75 * q.points)
    assert question_points(q, {names[0]: 0.5}) == pytest.approx(q.points * 0.5 / len(names))
    assert question_points(q, names[:1]) == pytest.approx(q.points / len(names))


def test_a_mistake_whose_output_is_not_finite_names_nothing(monkeypatch):
    entry = registry.get("01_saliency_class_visualization")
    q = entry.assignment.question("compute_saliency_maps")
    monkeypatch.setattr(judge, "_resolve", lambda path: lambda X, y, model: torch.full(X.shape[:1] + X.shape[2:],
                                                                                       float("nan")))
    results = _grade(entry, q, lambda X, y, model: torch.zeros(X.shape[0], *X.shape[2:]))
    assert all(r.verdict == V.WRONG_VALUES and "known mistake" not in r.message for r in results)
