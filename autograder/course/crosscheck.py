"""Grade the same submissions with ``nbgrader autograde`` and with the fast grader, and compare.

Used by ``tests/test_nbgrader_agreement.py`` (scores must agree question by question) and by
``benchmarks/grading_vs_nbgrader.py`` (time ratio). Works in a scratch course folder: the instructor's gradebook is
never touched. A submission that nbgrader cannot autograde at all (its kernel died while loading, e.g. ``os._exit``)
counts as 0 on every question, which is what the fast grader gives it too.
"""
from __future__ import annotations

import csv
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.core import registry
from autograder.grade.batch import grade_folder
from autograder.course.layout import REPO_ROOT, Course
from autograder.course.nbgrader_api import NbgraderError, autograde, generate_release, read_scores
from autograder.course.synthetic import STUDENTS, make_class


@dataclass
class Comparison:
    assignment: str
    nbgrader: dict[str, dict[str, float]] = field(default_factory=dict)   # student -> question -> points
    fast: dict[str, dict[str, float]] = field(default_factory=dict)
    fast_rows: list[dict[str, str]] = field(default_factory=list)            # the fast grader's grades.csv
    nbgrader_failed: dict[str, str] = field(default_factory=dict)         # student -> why nbgrader gave up
    nbgrader_seconds: float = 0.0
    fast_seconds: float = 0.0
    nbgrader_student_seconds: dict[str, float] = field(default_factory=dict)

    def disagreements(self) -> list[str]:
        out = []
        for student, scores in sorted(self.fast.items()):
            for qid, points in sorted(scores.items()):
                other = self.nbgrader.get(student, {}).get(qid)
                if other is None or abs(other - points) > 1e-9:
                    out.append(f"{self.assignment} {student} {qid}: fast {points:g} vs nbgrader {other}")
        return out


def make_course(course: Path, assignment_id: str, students: dict[str, str] | None = None,
                root: Path = REPO_ROOT) -> Path:
    """A scratch nbgrader course with the solution, its release and a synthetic class; returns ``submitted/``."""
    if course.exists():
        shutil.rmtree(course)
    shutil.copytree(root / "solutions" / assignment_id, course / "solutions" / assignment_id,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    release = generate_release(course, assignment_id)
    make_class(registry.get(assignment_id).assignment, Course(root).source_notebook(assignment_id),
               release, course / "submitted", students)
    return course / "submitted"


def fast_grade(submitted: Path, out: Path, assignment_id: str | None, *, workers: int = 2,
               timeout: float = 10.0) -> float:
    """Grade ``submitted`` (one assignment, or every one when ``assignment_id`` is None) with the fast grader into
    a fresh ``out``; returns the wall time in seconds."""
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    grade_folder(submitted, out, assignment=assignment_id, workers=workers, timeout=timeout, progress=False,
                 log=lambda *_: None)
    return time.perf_counter() - t0


def compare(course: Path, assignment_id: str, *, students: dict[str, str] | None = None, workers: int = 2,
            timeout: float = 10.0, cell_timeout: int = 30, log=print) -> Comparison:
    """Grade the synthetic class of ``assignment_id`` both ways (see module doc)."""
    students = students or STUDENTS
    submitted = make_course(course, assignment_id, students)
    result = Comparison(assignment_id)
    questions = [q.id for q in registry.get(assignment_id).assignment.questions]

    t0 = time.perf_counter()
    for student in students:
        t_student = time.perf_counter()
        try:
            autograde(course, assignment_id, student, cell_timeout=cell_timeout)
            result.nbgrader[student] = read_scores(course, assignment_id, student)
        except NbgraderError as exc:
            result.nbgrader_failed[student] = str(exc).splitlines()[0]
            result.nbgrader[student] = {q: 0.0 for q in questions}
        result.nbgrader_student_seconds[student] = time.perf_counter() - t_student
        log(f"  nbgrader autograde {assignment_id} {student}: {sum(result.nbgrader[student].values()):g} points")
    result.nbgrader_seconds = time.perf_counter() - t0

    out = course / "fast_graded"
    result.fast_seconds = fast_grade(submitted, out, assignment_id, workers=workers, timeout=timeout)
    with open(out / "grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            result.fast_rows.append(row)
            result.fast.setdefault(row["student"], {})[row["question"]] = float(row["points"])
    return result
