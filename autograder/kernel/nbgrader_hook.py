"""nbgrader's hidden tests: ``score("compute_saliency_maps")`` -> the points earned, as a float.

Inside ``nbgrader autograde`` the hidden block of every test cell calls :func:`score`, which runs the public and
hidden cases in the kernel and returns ``question_points(...)`` -- the same arithmetic as the fast grader. It
prints nothing, writes nothing to stderr (nbgrader zeroes a grade cell that did) and never raises: anything that
goes wrong costs the affected case, or the question, and nothing else.

Note: here the student's code shares the kernel with the grading code, so a hostile notebook can fake this score;
the fast grader (``python -m autograder grade``) runs student code isolated and is the one to trust.
"""
from __future__ import annotations

from typing import Callable


def results(name: str, fn: Callable | None = None, *, depth: int = 2):
    """The case results of question ``name`` (public + hidden), or None when it cannot be graded."""
    from autograder.kernel import inprocess
    from autograder.core import registry

    entry, question = registry.find_question(name)
    fn = inprocess.find_function(name, fn, depth=depth + 1)
    if fn is None or not callable(fn):
        return entry, question, None
    return entry, question, inprocess.run_cases(fn, entry, question, public_only=False)


def score(name: str, fn: Callable | None = None) -> float:
    """Points earned by the notebook's function ``name`` over all its cases (0.0 on any failure)."""
    try:
        from autograder.kernel import inprocess
        from autograder.core.judge import credits
        from autograder.core.scoring import question_points

        with inprocess.quiet():
            _, question, found = results(name, fn, depth=2)
        if not found:
            return 0.0
        return question_points(question, credits(found))
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a grade cell must not error
        return 0.0
