"""Points arithmetic: the ONE place where case and question points are computed.

Every grading path (the fast batch grader, ``check``, nbgrader's hidden tests through
:func:`autograder.kernel.nbgrader_hook.score`) calls :func:`question_points`, so they give identical floats.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

from autograder.core.spec import Question

#: Points are rounded to this many decimals, so sums like 1/3 + 1/3 + 1/3 print cleanly and compare exactly.
DECIMALS = 6


def case_points(question: Question, case_name: str) -> float:
    """Points a case is worth: ``question.points * case.weight / sum(weights of the question's cases)``."""
    total = math.fsum(c.weight for c in question.cases)
    for c in question.cases:
        if c.name == case_name:
            return round(question.points * c.weight / total, DECIMALS) if total > 0 else 0.0
    raise KeyError(f"question {question.id!r} has no case {case_name!r}")


def question_points(question: Question, passed_cases: Iterable[str] | Mapping[str, float]) -> float:
    """Points earned on a question (partial credit per case).

    ``passed_cases``: the names of the passed cases, or ``{case name: share of its points earned}`` (1 for a passed
    case, between 0 and 1 for a case with partial credit). Every case fully earned gives exactly
    ``question.points``; the sum runs in the question's case order."""
    credit = dict(passed_cases) if isinstance(passed_cases, Mapping) else {name: 1.0 for name in passed_cases}
    names = [c.name for c in question.cases]
    unknown = set(credit).difference(names)
    if unknown:
        raise KeyError(f"question {question.id!r} has no case(s) {sorted(unknown)}")
    credit = {k: min(max(float(v), 0.0), 1.0) for k, v in credit.items()}
    if all(credit.get(n, 0.0) == 1.0 for n in names):
        return float(question.points)
    total = math.fsum(c.weight for c in question.cases)
    if total <= 0:
        return 0.0
    earned = math.fsum(c.weight * credit.get(c.name, 0.0) for c in question.cases)
    return round(question.points * earned / total, DECIMALS)
