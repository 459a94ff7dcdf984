"""From what happened during a call (a status from :mod:`autograder.core.calls` or the worker) to a verdict.

Shared by the fast grader and the in-process paths, so the same outcome gets the same verdict, message and points
everywhere.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

import importlib

from autograder.core import calls
from autograder.core import verdicts as V
from autograder.core.scoring import DECIMALS, case_points
from autograder.core.spec import Case, Mistake, Question

#: Messages are one line for a student; anything longer (a hostile worker's, say) is cut.
MAX_MESSAGE = 600


def _status_verdict(status: Mapping[str, Any], fn_name: str, timeout: float | None,
                    memory_mb: int | None) -> tuple[str, str]:
    kind = status.get("status")
    msg = str(status.get("message", ""))
    if kind == calls.NOT_IMPLEMENTED:
        return V.NOT_ATTEMPTED, f"`{fn_name}` raises NotImplementedError: replace the stub with your code"
    if kind == calls.EXCEPTION:
        where = f" (at {status['where']})" if status.get("where") else ""
        return V.ERROR, f"{status.get('exc_type', 'Exception')}: {msg}{where}"
    if kind == calls.WRONG_TYPE:
        return V.WRONG_TYPE, msg
    if kind == calls.BAD_OUTPUT:
        return V.ERROR, msg
    if kind == calls.MEMORY:
        limit = f"the limit is {memory_mb} MB per question" if memory_mb else "out of memory"
        return V.CRASHED, f"ran out of memory ({limit}): {msg}"
    if kind == calls.EXIT:
        return V.CRASHED, msg
    if kind == calls.TIMEOUT:
        limit = f"{timeout:g} s" if timeout else "the time limit"
        return V.TIMEOUT, f"did not finish within {limit} (the time limit for all cases of a question)"
    if kind == calls.CRASHED:
        return V.CRASHED, f"{msg or 'the process died'} while running this case"
    if kind == calls.ENGINE_ERROR:
        return V.ERROR, f"internal grading error (tell your instructor): {msg}"
    return V.ERROR, msg or f"unexpected status {kind!r}"


def _resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def mistake_outputs(question: Question, case: Case, mistake: Mistake,
                     inputs: Callable[[], Mapping[str, Any]]) -> dict[str, torch.Tensor] | None:
    """The outputs of ``mistake``'s function called exactly like the student's (same inputs, seed, repeats), in
    this process; None when it cannot be looked up (instructor-only code absent, as in a student's kernel), fails
    or returns no output."""
    try:
        fn = _resolve(mistake.function)
        status, theirs = calls.run(fn, inputs(), question.inplace, question.positional, case.seed,
                                   question.repeat, question.optional)
    except Exception:  # noqa: BLE001 - diagnosis is best effort
        return None
    return theirs if status.get("status") == calls.OK else None


def known_mistake(question: Question, case: Case, outputs: Mapping[str, torch.Tensor],
                  inputs: Callable[[], Mapping[str, Any]], cache: dict | None = None,
                  stored: Mapping[str, Mapping[str, torch.Tensor] | None] | None = None) -> Mistake | None:
    """The first of the question's known mistakes whose output the student's output matches, if any.

    A mistake's outputs come from ``stored`` (the case file's, computed when it was generated: see
    :attr:`~autograder.core.casefile.CaseFile.mistakes`) when it has them; otherwise its function is called exactly
    like the student's (same inputs, seed, repeats), in this process. A mistake that cannot be looked up
    (instructor-only code absent, as in a student's kernel) or that fails is skipped. ``cache`` (one dict per set of
    case files, e.g. per prepared assignment of a batch) keeps each called mistake's outputs per case, so a batch runs
    each mistake once per case instead of once per wrong answer; the outputs are only read."""
    for mistake in question.mistakes:
        key = (question.id, case.name, mistake.function)
        if stored is not None and mistake.function in stored:
            theirs = stored[mistake.function]
        elif cache is not None and key in cache:
            theirs = cache[key]
        else:
            theirs = mistake_outputs(question, case, mistake, inputs)
            if cache is not None:
                cache[key] = theirs
        if theirs is None or set(theirs) != set(outputs):
            continue
        if not all(bool(torch.isfinite(t).all()) for t in theirs.values() if t.is_floating_point()):
            continue                                # a NaN tolerance would match any answer
        if question.compare.same_answer(theirs, outputs):
            return mistake
    return None


def _hints(question: Question, status: Mapping[str, Any]) -> list[str]:
    """What the call's notes say about a wrong in-place answer."""
    notes = status.get("notes") or []
    name = question.inplace
    hints = []
    if calls.NOTE_UNCHANGED in notes:
        hints.append(f"`{name}` was not modified by the call: the function must update `{name}` in place "
                     f"(e.g. `with torch.no_grad(): {name} += step`), not rebind a local name or return a new tensor")
    elif calls.NOTE_GRAD_LEFT in notes and question.repeat > 1:
        hints.append(f"`{name}.grad` still holds a gradient after the call, so the next call on the same `{name}` "
                     f"adds to it (the grader calls the function {question.repeat} times in a row, as the notebook's "
                     f"loop does): reset it with `{name}.grad.zero_()` after the step, or use `torch.autograd.grad`")
    return hints


def judge_case(question: Question, case: Case, status: Mapping[str, Any],
               outputs: Mapping[str, torch.Tensor] | None, expected: Mapping[str, torch.Tensor],
               inputs: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None, *,
               timeout: float | None = None, memory_mb: int | None = None,
               mistake_cache: dict | None = None,
               compare_inputs: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
               stored_mistakes: Mapping[str, Mapping[str, torch.Tensor] | None] | None = None) -> V.CaseResult:
    """The :class:`~autograder.core.verdicts.CaseResult` of one case (``mistake_cache``, ``stored_mistakes``: see
    :func:`known_mistake`).

    ``compare_inputs``: the inputs the comparison reads, if not ``inputs`` (comparisons only read them, so they may
    be built once and shared; a known mistake is called on fresh ``inputs``, as a student's function is)."""
    max_points = case_points(question, case.name)
    credit = 0.0
    side_effects = status.get("side_effects") if status.get("status") == calls.OK else None
    if side_effects and isinstance(side_effects, list):
        more = f" (and {len(side_effects) - 1} more argument(s))" if len(side_effects) > 1 else ""
        verdict, message = V.MODIFIED_INPUT, f"changed an argument it must leave alone: {side_effects[0]}{more}"
    elif status.get("status") == calls.OK and outputs is not None:
        try:
            verdict, message, credit = question.compare.compare(
                expected, outputs, inputs if compare_inputs is None else compare_inputs)
        except Exception as exc:  # noqa: BLE001 - never let one odd output stop grading
            verdict, message = V.ERROR, f"the output could not be compared: {type(exc).__name__}: {exc}"
        if verdict == V.WRONG_VALUES:
            hints = _hints(question, status) if question.inplace else []
            mistake = known_mistake(question, case, outputs, inputs, mistake_cache, stored_mistakes) \
                if callable(inputs) else None
            if mistake is not None:
                hints.insert(0, f"this is the known mistake \"{mistake.name}\": {mistake.hint}")
            if hints:
                message = "; ".join(hints) + f" ({message})"
    else:
        verdict, message = _status_verdict(status, question.id, timeout, memory_mb)
    points = max_points if verdict == V.PASSED else round(max_points * credit, DECIMALS)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
    return V.CaseResult(question.id, case.name, case.public, verdict, message, points, max_points,
                        dict(outputs) if outputs is not None else None)


def same_for_all_cases(question: Question, verdict: str, message: str) -> list[V.CaseResult]:
    """Every case of a question gets the same verdict (missing function, unreadable notebook...)."""
    return [V.CaseResult(question.id, c.name, c.public, verdict, message, 0.0, case_points(question, c.name))
            for c in question.cases]


def credits(cases: list[V.CaseResult]) -> dict[str, float]:
    """Share of its points each case earned (1 for passed cases), by case name."""
    return {c.case: 1.0 if c.passed else (c.points / c.max_points if c.max_points else 0.0) for c in cases}


def question_result(question: Question, cases: list[V.CaseResult]) -> V.Result:
    from autograder.core.scoring import question_points

    points = question_points(question, credits(cases))
    return V.summarize(question.id, cases, points, float(question.points))
