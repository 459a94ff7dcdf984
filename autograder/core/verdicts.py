"""Verdicts and result records: what a student sees for every graded case and question.

One verdict per case, from a fixed vocabulary, each with a one-line message written for the student. A question's
verdict is ``passed`` when every case passed, otherwise the verdict (and message) of its first failing case.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED = "passed"
NOT_ATTEMPTED = "not attempted"
MISSING = "missing"
ERROR = "error"
TIMEOUT = "timeout"
CRASHED = "crashed"
WRONG_SHAPE = "wrong shape"
WRONG_DTYPE = "wrong dtype"
NON_FINITE = "non-finite"
WRONG_VALUES = "wrong values"
PROPERTY_FAILED = "property failed"
MODIFIED_INPUT = "modified input"
WRONG_TYPE = "wrong type"

#: Every verdict, in the order reports list them (best first).
VERDICTS = (PASSED, WRONG_VALUES, PROPERTY_FAILED, MODIFIED_INPUT, NON_FINITE, WRONG_SHAPE, WRONG_DTYPE, WRONG_TYPE,
            ERROR, TIMEOUT, CRASHED, MISSING, NOT_ATTEMPTED)

#: What each verdict means, for legends in reports and feedback.
MEANING = {
    PASSED: "the output matched the reference",
    NOT_ATTEMPTED: "the function still raises NotImplementedError (the stub is untouched)",
    MISSING: "no top-level function of that name in the notebook",
    ERROR: "the function raised an exception (or its cell could not run)",
    TIMEOUT: "the function ran longer than the time limit",
    CRASHED: "the process died: exit, segfault or out of memory",
    WRONG_SHAPE: "the output has another shape than the reference",
    WRONG_DTYPE: "the output has another dtype kind (float / int / bool) than the reference",
    NON_FINITE: "the output holds NaN or Inf",
    WRONG_VALUES: "values differ from the reference beyond the tolerance",
    PROPERTY_FAILED: "the answer is not unique and a required property does not hold",
    MODIFIED_INPUT: "the function changed an argument it must leave alone (values, requires_grad or .grad)",
    WRONG_TYPE: "the function returned something that is not a torch tensor (a NumPy array, None, ...)",
}


@dataclass
class CaseResult:
    """The outcome of one case (one call of the student's function)."""

    question: str
    case: str
    public: bool
    verdict: str
    message: str
    points: float = 0.0
    max_points: float = 0.0
    #: The student's outputs (CPU tensors) when they came back; used for feedback images, never stored.
    output: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED


@dataclass
class Result:
    """The outcome of one question: its cases, the points earned and a summary verdict + message."""

    question: str
    points: float
    max_points: float
    verdict: str
    message: str
    cases: list[CaseResult] = field(default_factory=list)


def summarize(question: str, cases: list[CaseResult], points: float, max_points: float) -> Result:
    """Fold case results into a question result (verdict and message of the first failing case)."""
    failing = [c for c in cases if c.verdict != PASSED]
    n = len(cases)
    if not failing:
        return Result(question, points, max_points, PASSED, f"all {n} case{'s' * (n != 1)} passed", cases)
    first = failing[0]
    if first.verdict in (NOT_ATTEMPTED, MISSING) or len(failing) == n and all(
            c.verdict == first.verdict and c.message == first.message for c in failing):
        return Result(question, points, max_points, first.verdict, first.message, cases)
    kind = "public" if first.public else "hidden"
    message = f"{n - len(failing)}/{n} cases passed; {kind} case {first.case!r}: {first.message}"
    return Result(question, points, max_points, first.verdict, message, cases)
