"""From what happened during a call (a status from :mod:`autograder.calls` or the worker) to a verdict.

Shared by the fast grader and the in-process paths, so the same outcome gets the same verdict, message and points
everywhere.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from . import calls
from . import verdicts as V
from .compare import compare
from .scoring import case_points
from .spec import Case, Question

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
    if kind == calls.BAD_OUTPUT:
        return V.ERROR, msg
    if kind == calls.MEMORY:
        limit = f"the limit is {memory_mb} MB per question" if memory_mb else "out of memory"
        return V.CRASHED, f"ran out of memory ({limit}): {msg}"
    if kind == calls.EXIT:
        return V.CRASHED, msg
    if kind == "timeout":
        limit = f"{timeout:g} s" if timeout else "the time limit"
        return V.TIMEOUT, f"did not finish within {limit} (the time limit for all cases of a question)"
    if kind == "crashed":
        return V.CRASHED, f"{msg or 'the process died'} while running this case"
    if kind == "engine_error":
        return V.ERROR, f"internal grading error (tell your instructor): {msg}"
    return V.ERROR, msg or f"unexpected status {kind!r}"


def judge_case(question: Question, case: Case, status: Mapping[str, Any],
               outputs: Mapping[str, torch.Tensor] | None, expected: Mapping[str, torch.Tensor],
               inputs: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None, *,
               timeout: float | None = None, memory_mb: int | None = None) -> V.CaseResult:
    """The :class:`~autograder.verdicts.CaseResult` of one case."""
    max_points = case_points(question, case.name)
    if status.get("status") == calls.OK and outputs is not None:
        try:
            verdict, message = compare(question.compare, expected, outputs, inputs)
        except Exception as exc:  # noqa: BLE001 - never let one odd output stop grading
            verdict, message = V.ERROR, f"the output could not be compared: {type(exc).__name__}: {exc}"
    else:
        verdict, message = _status_verdict(status, question.id, timeout, memory_mb)
    points = max_points if verdict == V.PASSED else 0.0
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
    return V.CaseResult(question.id, case.name, case.public, verdict, message, points, max_points,
                        dict(outputs) if outputs is not None else None)


def same_for_all_cases(question: Question, verdict: str, message: str) -> list[V.CaseResult]:
    """Every case of a question gets the same verdict (missing function, unreadable notebook...)."""
    return [V.CaseResult(question.id, c.name, c.public, verdict, message, 0.0, case_points(question, c.name))
            for c in question.cases]


def question_result(question: Question, cases: list[V.CaseResult]) -> V.Result:
    from .scoring import question_points

    points = question_points(question, [c.case for c in cases if c.passed])
    return V.summarize(question.id, cases, points, float(question.points))
