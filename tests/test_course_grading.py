"""Every real assignment: the solution earns full marks, the blank release zero with every verdict 'not attempted'.

Both go through the sandboxed fast grader, exactly as students' submissions do.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.core import registry
from autograder.course.layout import assignment_ids
from autograder.grade.session import Session

ROOT = Path(__file__).resolve().parent.parent
IDS = assignment_ids(ROOT)


@pytest.fixture(scope="module")
def session():
    with Session(timeout=60) as s:
        yield s


@pytest.mark.parametrize("assignment_id", IDS)
def test_solution_gets_full_marks(session, assignment_id):
    results = session.grade(ROOT / "solutions" / assignment_id / f"{assignment_id}.ipynb", assignment_id).results
    lost = [(r.question, r.verdict, r.message) for r in results if r.points < r.max_points]
    assert lost == []
    assert sum(r.points for r in results) == registry.get(assignment_id).assignment.max_points


@pytest.mark.parametrize("assignment_id", IDS)
def test_blank_release_gets_zero_not_attempted(session, assignment_id):
    results = session.grade(ROOT / "assignments" / assignment_id / f"{assignment_id}.ipynb", assignment_id).results
    assert sum(r.points for r in results) == 0
    assert {r.verdict for r in results} == {"not attempted"}
