"""The student release: in sync with the solutions, and free of instructor material."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.core import registry
from autograder.course.layout import Course
from autograder.course.release import (build_student_bundle, generate_assignments, leak_check,
                                reference_bodies, solution_blocks)

ROOT = Path(__file__).resolve().parent.parent
IDS = Course(ROOT).notebook_ids()


def _cells(path: Path) -> list[tuple[str, str, dict]]:
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source, dict(c.metadata.get("nbgrader", {}))) for c in nb.cells]


def test_every_assignment_has_questions_and_a_committed_release():
    assert IDS, "no solutions/<id>/<id>.ipynb found"
    for aid in IDS:
        assert aid in registry.entries(), f"{aid} has a notebook but no autograder/questions/{aid}.py"
        assert (ROOT / "assignments" / aid / f"{aid}.ipynb").exists(), f"run python -m autograder release ({aid})"


@pytest.mark.slow
def test_committed_assignments_match_a_fresh_nbgrader_generation(tmp_path):
    generate_assignments(ROOT, IDS, dest=tmp_path)
    for aid in IDS:
        fresh = _cells(tmp_path / aid / f"{aid}.ipynb")
        committed = _cells(ROOT / "assignments" / aid / f"{aid}.ipynb")
        assert fresh == committed, f"assignments/{aid} is stale: run `python -m autograder release`"


def test_notebook_points_match_question_specs():
    for aid in IDS:
        spec = {q.id: q.points for q in registry.get(aid).assignment.questions}
        nb = nbformat.read(ROOT / "solutions" / aid / f"{aid}.ipynb", as_version=4)
        cells = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and meta.get("grade_id", "").startswith("test_"):
                cells[meta["grade_id"][len("test_"):]] = float(meta["points"])
        assert cells == spec, f"{aid}: test-cell points differ from autograder/questions/{aid}.py"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_student_bundle(ROOT, tmp_path_factory.mktemp("bundle") / "student")


def test_student_bundle_is_clean(bundle):
    assert leak_check(bundle, ROOT) == []
    assert not (bundle / "utils" / "reference").exists()
    assert not (bundle / "autograder" / "cases" / "hidden").exists()
    assert not (bundle / "solutions").exists()
    assert (bundle / "utils" / "weights" / "shapes.safetensors").exists()
    assert any((bundle / "autograder" / "cases" / "public").rglob("*.safetensors"))
    for aid in IDS:
        text = (bundle / "assignments" / aid / f"{aid}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text
        assert "NotImplementedError" in text


def test_leak_check_has_teeth(bundle, tmp_path):
    """Plant each kind of leak in a copy of the bundle: each one is reported."""
    assert reference_bodies(ROOT) and solution_blocks(ROOT)
    leaky = tmp_path / "leaky"
    shutil.copytree(bundle, leaky)
    (leaky / "utils" / "reference").mkdir()
    body = next(iter(reference_bodies(ROOT).values()))
    (leaky / "utils" / "copied.py").write_text("def f():\n    " + body + "\n")
    nb = nbformat.read(leaky / "assignments" / IDS[0] / f"{IDS[0]}.ipynb", as_version=4)
    nb.cells[-1].source += "\n### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS\n"
    nbformat.write(nb, leaky / "assignments" / IDS[0] / f"{IDS[0]}.ipynb")
    problems = "\n".join(leak_check(leaky, ROOT))
    assert "utils/reference is in the bundle" in problems
    assert "copied.py: contains reference body" in problems
    assert "BEGIN HIDDEN TESTS" in problems
