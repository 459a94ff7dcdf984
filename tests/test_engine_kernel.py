"""``check`` and ``score`` inside a real Jupyter kernel, read the way nbgrader reads grade cells
(``nbgrader.utils.determine_grade``): points as the cell's result, nothing on stderr."""
from __future__ import annotations

import copy
import os

import nbformat
import pytest

from tests.fixtures.fixture_assignment import students

pytest.importorskip("nbclient")
pytestmark = pytest.mark.slow

POINTS = {"add_one": 1, "softmax_rows": 2, "saliency_like": 3, "scale_inplace_": 1, "orthogonal_rows": 2}


def with_hidden_tests(nb):
    """Put the solution's test cells (hidden tests included) back, as ``nbgrader autograde`` does."""
    sol = nbformat.read(students.SOLUTION, as_version=4)
    tests = {c.metadata["nbgrader"]["grade_id"]: c.source for c in sol.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in tests:
            cell.source = tests[gid]
    return nb


def execute(nb, tmp_path):
    from nbclient import NotebookClient

    env = {**os.environ, "AUTOGRADER_QUESTIONS": str(students.QUESTIONS),
           "PYTHONPATH": os.pathsep.join([str(students.REPO), os.environ.get("PYTHONPATH", "")])}
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def grades(nb):
    from nbgrader.utils import determine_grade

    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            out[meta["grade_id"][len("test_"):]] = determine_grade(cell)[0]
    return out


def test_solution_scores_full_marks_in_a_kernel(tmp_path):
    nb = execute(nbformat.read(students.SOLUTION, as_version=4), tmp_path)
    assert grades(nb) == POINTS
    for cell in nb.cells:
        assert not any(o.get("name") == "stderr" or o.output_type == "error" for o in cell.get("outputs", [])), cell
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "add_one: 1/1 public case passed" in text


def test_blank_and_wrong_submissions_in_a_kernel(tmp_path):
    blank = execute(with_hidden_tests(students.notebook(students.VARIANTS["blank"])), tmp_path)
    assert grades(blank) == dict.fromkeys(POINTS, 0.0)
    text = "".join(o.get("text", "") for c in blank.cells for o in c.get("outputs", []))
    assert "not attempted" in text
    naive = execute(with_hidden_tests(students.notebook(students.VARIANTS["naive_softmax"])), tmp_path)
    assert grades(naive) == {**POINTS, "softmax_rows": 1.0}
