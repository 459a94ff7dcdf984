"""The fast grader on the fixture class: full marks for the solution, zero ("not attempted") for the blank
release, and every ordinary mistake loses exactly the points of the question it breaks."""
from __future__ import annotations

import csv
import gc
import json
import shutil
import sqlite3

import pytest
import torch

from autograder.core import registry
from autograder.grade.batch import CSV_COLUMNS, grade_folder
from tests.fixtures.fixture_assignment import students

A = students.ASSIGNMENT
FULL = {"add_one": 1.0, "softmax_rows": 2.0, "saliency_like": 3.0, "scale_inplace_": 1.0, "orthogonal_rows": 2.0}

#: student -> {question: (points, verdict, text in the message)} for the questions it breaks.
EXPECTED = {
    "correct": {},
    "wrong_values": {"add_one": (0.0, "wrong values", "max abs error 1 at index")},
    "wrong_shape": {"saliency_like": (0.0, "wrong shape", "expected shape (2, 16, 16), got (2, 3, 16, 16)")},
    # the line text comes from the worker's line cache (the grader writes no file per cell)
    "exception": {"softmax_rows": (0.0, "error", "line 2: `return x.softmax(dim=7)`")},
    "naive_softmax": {"softmax_rows": (1.0, "non-finite", "values are NaN")},
    "wrong_dtype": {"add_one": (0.0, "wrong dtype", "expected a float tensor")},
    "not_inplace": {"scale_inplace_": (0.0, "wrong values", "values differ")},
    "not_orthogonal": {"orthogonal_rows": (0.0, "property failed", "property 'orthogonal' failed")},
    "syntax_error": {"softmax_rows": (0.0, "error", "SyntaxError in cell 8 (softmax_rows) line 1: expected ':'")},
    "missing": {"add_one": (0.0, "missing", "no top-level function named `add_one`")},
    "hardcoded_batch": {"add_one": (0.5, "wrong shape", "expected shape (5, 2, 3), got (3, 2, 3)")},
}
#: torch's thread count and the garbage collector's frozen objects before grading (grading must restore them)
STATE_BEFORE: dict = {}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    registry.register(students.QUESTIONS)
    root = tmp_path_factory.mktemp("submitted")
    students.write_class(root, {name: students.VARIANTS[name] for name in [*EXPECTED, "blank"]})
    solution_dir = root / "solution" / A
    solution_dir.mkdir(parents=True)
    shutil.copy(students.SOLUTION, solution_dir / f"{A}.ipynb")
    out = tmp_path_factory.mktemp("out")
    STATE_BEFORE.update(threads=torch.get_num_threads(), frozen=gc.get_freeze_count())
    summary = grade_folder(root, out, assignment=A, workers=2, timeout=20, progress=False, log=lambda s: None)
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return summary, out, rows


def by_student(rows):
    out: dict = {}
    for r in rows:
        out.setdefault(r["student"], {})[r["question"]] = r
    return out


def test_csv_has_exact_columns_and_one_sorted_row_per_student_question(graded):
    summary, out, rows = graded
    with open(out / "grades.csv") as f:
        assert f.readline().strip() == ",".join(CSV_COLUMNS)
    assert len(rows) == (len(EXPECTED) + 2) * len(FULL)
    keys = [(r["student"], list(FULL).index(r["question"])) for r in rows]
    assert keys == sorted(keys)
    assert summary.graded == len(EXPECTED) + 2 and not summary.failed


def test_solution_notebook_gets_full_marks(graded):
    table = by_student(graded[2])
    for name in ("solution", "correct"):
        assert {q: float(r["points"]) for q, r in table[name].items()} == FULL
        assert {r["verdict"] for r in table[name].values()} == {"passed"}


def test_blank_release_gets_zero_all_not_attempted(graded):
    blank = by_student(graded[2])["blank"]
    assert sum(float(r["points"]) for r in blank.values()) == 0.0
    assert {r["verdict"] for r in blank.values()} == {"not attempted"}
    assert all(float(r["max_points"]) == FULL[q] for q, r in blank.items())


@pytest.mark.parametrize("student", [s for s in EXPECTED if s != "correct"])
def test_each_mistake_costs_only_its_question(graded, student):
    rows = by_student(graded[2])[student]
    for q, full in FULL.items():
        if q in EXPECTED[student]:
            points, verdict, text = EXPECTED[student][q]
            assert (float(rows[q]["points"]), rows[q]["verdict"]) == (points, verdict), rows[q]
            assert text in rows[q]["message"]
        else:
            assert (float(rows[q]["points"]), rows[q]["verdict"]) == (full, "passed"), rows[q]


def test_feedback_shows_public_cases_and_only_verdicts_of_hidden_ones(graded):
    out = graded[1]
    page = (out / "feedback" / "naive_softmax" / f"{A}.html").read_text()
    assert "Total: <b>8 / 9</b>" in page
    assert "a hidden case failed (non-finite)" in page
    assert "large_logits" not in page and "values are NaN" not in page
    page = (out / "feedback" / "wrong_values" / f"{A}.html").read_text()
    assert "max abs error 1 at index" in page  # public case in full
    # one self-contained file per student and assignment; images only for failing cases
    assert sorted(p.name for p in (out / "feedback" / "correct").iterdir()) == [f"{A}.html"]
    assert "data:image/png" not in (out / "feedback" / "correct" / f"{A}.html").read_text()


def test_class_report_and_store(graded):
    out = graded[1]
    assert not (out / "histogram.png").exists() and not (out / "questions.png").exists()  # embedded
    html = (out / "report.html").read_text()
    assert f"<h2 id='{A}'>" in html and html.count("<svg ") == 2
    assert "not attempted: <b>1</b>" in html  # counts students (the blank one), not points
    assert f"href='feedback/wrong_values/{A}.html'" in html
    assert "max abs error 1 at index" in html  # the most common message of add_one
    db = sqlite3.connect(out / "grades.sqlite")
    n, distinct = db.execute("SELECT count(*), count(DISTINCT student || '/' || question) FROM questions").fetchone()
    assert n == distinct == (len(EXPECTED) + 2) * len(FULL)
    assert {r[0] for r in db.execute("SELECT isolation FROM submissions")} <= {"namespace", "process"}


def test_stats_json_splits_the_cpu_time_and_the_process_state_is_restored(graded):
    """``stats.json``: the CPU of the grader, of the fork server and of the student workers (as the fork server
    reaped them); grading leaves torch's thread count and the garbage collector as it found them."""
    summary, out, rows = graded
    stats = json.loads((out / "stats.json").read_text())
    assert stats["graded"] == summary.graded > 0 and stats["workers"] == 2 and stats["cpu_complete"] is True
    assert set(stats["cpu_s"]) == {"grader", "fork_server", "workers"}
    assert all(v > 0 for v in stats["cpu_s"].values()), stats
    assert stats["wall_s"] > 0
    assert torch.get_num_threads() == STATE_BEFORE["threads"]
    assert gc.get_freeze_count() == STATE_BEFORE["frozen"]
