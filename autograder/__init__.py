"""The grading engine and course tooling (``python -m autograder --help``).

Students use :func:`check` (``from autograder import check``; ``check("compute_saliency_maps")``) to run the public
cases of a graded function. Instructors use the CLI (references, grade, pytest) or the API:
:func:`autograder.runner.grade_notebook`, :func:`autograder.batch.grade_folder`,
:func:`autograder.sandbox.isolation_level`. Imports here are lazy, so ``from autograder import check`` is cheap.
"""
from __future__ import annotations

__all__ = ["check", "grade_notebook", "grade_folder", "isolation_level"]


def __getattr__(name: str):
    if name == "check":
        from .selfcheck import check
        return check
    if name == "grade_notebook":
        from .runner import grade_notebook
        return grade_notebook
    if name == "grade_folder":
        from .batch import grade_folder
        return grade_folder
    if name == "isolation_level":
        from .sandbox import isolation_level
        return isolation_level
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
