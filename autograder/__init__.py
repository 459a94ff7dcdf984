"""The grading engine and course tooling (``python -m autograder --help``).

Four rooms, by lifecycle: :mod:`autograder.core` (what a question is and how an answer is judged),
:mod:`autograder.grade` (the sandboxed batch grader), :mod:`autograder.kernel` (inside a notebook kernel) and
:mod:`autograder.course` (releases, nbgrader, the demo). Assignments are data in :mod:`autograder.questions`, their
case files in ``autograder/cases/``.

In a notebook: ``from autograder import check`` (a student's self-check of the public cases) and
``from autograder import score`` (nbgrader's hidden tests). From Python: :func:`grade_notebook`, :func:`grade_folder`,
:func:`isolation_level`. Imports here are lazy, so ``from autograder import check`` is cheap.
"""
from __future__ import annotations

__all__ = ["check", "score", "grade_notebook", "grade_folder", "isolation_level"]

_WHERE = {"check": "autograder.kernel.selfcheck", "score": "autograder.kernel.nbgrader_hook",
          "grade_notebook": "autograder.grade.session", "grade_folder": "autograder.grade.batch",
          "isolation_level": "autograder.grade.isolation"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
