"""nbgrader autograde and the fast grader give the same score to every question of the demo class, and the fast
grader gives the demo class exactly the grades it gave before the engine's redesign (tests/fixtures/demo_grades.csv:
the ``grades.csv`` of ``python -m autograder demo`` at commit 56040b3, before the move into sub-packages)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from autograder.course.crosscheck import compare
from autograder.course.layout import assignment_ids

IDS = assignment_ids()
GOLDEN = Path(__file__).parent / "fixtures" / "demo_grades.csv"


def golden_rows(assignment_id: str) -> list[dict[str, str]]:
    with open(GOLDEN, newline="") as f:
        return [row for row in csv.DictReader(f) if row["assignment"] == assignment_id]


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", IDS)
def test_nbgrader_and_fast_grader_agree(assignment_id, tmp_path):
    result = compare(tmp_path / "course", assignment_id, workers=2, timeout=10, cell_timeout=30)
    assert result.fast and set(result.fast) == set(result.nbgrader)
    assert result.disagreements() == []
    # Only the submission that kills its kernel while loading is beyond nbgrader.
    assert set(result.nbgrader_failed) <= {"hal"}
    # Same grades, verdicts and messages as before the redesign, row for row.
    assert result.fast_rows == golden_rows(assignment_id)
