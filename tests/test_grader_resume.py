"""Resumability: SIGKILL the grader mid-batch, rerun the same command: finished work is kept (not regraded), no
duplicate rows, and grades.csv is the same as an uninterrupted run's. A changed notebook is regraded."""
from __future__ import annotations

import sqlite3
import time

import pytest

from autograder.core import registry
from autograder.grade.batch import grade_folder
from tests.fixtures.fixture_assignment import students

A = students.ASSIGNMENT
N = 8


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    registry.register(students.QUESTIONS)
    submitted = tmp_path / "submitted"
    # every notebook takes >= 0.4 s to load, so the kill surely lands mid-batch
    slow_load = ["class _Slow:\n    import time\n    time.sleep(0.4)\n"]
    names = list(students.VARIANTS)[:N]
    students.write_class(submitted, {n: {**students.VARIANTS[n], "cells": slow_load} for n in names})

    reference = tmp_path / "uninterrupted"
    grade_folder(submitted, reference, workers=2, timeout=10, progress=False, log=lambda s: None)

    out = tmp_path / "out"
    proc = students.start_grader(submitted, out)
    deadline = time.monotonic() + 240
    while len(students.graded_at(out / "grades.sqlite")) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the grader made no progress"
        time.sleep(0.05)
    proc.kill()  # SIGKILL, mid-batch
    proc.communicate()
    before = students.graded_at(out / "grades.sqlite")
    assert 2 <= len(before) < N, "kill the grader before it finishes"

    proc = students.start_grader(submitted, out)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"resuming: {len(before)} submission(s) already graded" in stdout
    assert f"graded {N - len(before)}, reused {len(before)}" in stdout
    after = students.graded_at(out / "grades.sqlite")
    assert len(after) == N
    assert all(after[s] == t for s, t in before.items()), "finished work was regraded"
    db = sqlite3.connect(out / "grades.sqlite")
    assert db.execute("SELECT count(*) FROM questions").fetchone()[0] == N * 5
    db.close()
    assert (out / "grades.csv").read_text() == (reference / "grades.csv").read_text()

    students.write_submission(submitted, "correct", students.VARIANTS["wrong_values"])  # a changed notebook
    proc = students.start_grader(submitted, out)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and f"graded 1, reused {N - 1}" in stdout
    assert "correct,fixture_assignment,add_one,0,1,wrong values" in (out / "grades.csv").read_text()
