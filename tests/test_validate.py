"""nbgrader's Validate tells the truth: on a blank release it names every unimplemented graded function (its
self-check cell fails), on a solution notebook it passes. Partial credit under ``nbgrader autograde`` is unchanged
(the grade cells' self-checks run with ``strict=False`` there; tests/test_nbgrader_agreement.py grades the demo
class both ways)."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.core import registry
from autograder.course.nbgrader_api import _venv_on_path, course_config
from autograder.course.nbgrader_preprocessors import lenient_checks

ROOT = Path(__file__).resolve().parent.parent
AID = "05_fooling_images"


def _validate(path: Path) -> dict:
    _venv_on_path()
    from nbgrader.validator import Validator

    return Validator(config=course_config()).validate(str(path))


@pytest.mark.slow
def test_validate_names_every_unimplemented_function_of_a_blank_release():
    failed = _validate(ROOT / "assignments" / AID / f"{AID}.ipynb").get("failed", [])
    sources = "\n".join(f["source"] for f in failed)
    for q in registry.get(AID).assignment.questions:
        assert f'check("{q.id}")' in sources, q.id
    assert sum("You did not provide a response" in f["raw_error"] for f in failed) == 2   # the written answers


@pytest.mark.slow
def test_validate_passes_a_solution_notebook():
    assert _validate(ROOT / "solutions" / AID / f"{AID}.ipynb") == {}


def test_autograde_runs_self_checks_leniently():
    src = 'check("fooling_step")\n### BEGIN HIDDEN TESTS\nscore("fooling_step")\n### END HIDDEN TESTS'
    assert lenient_checks(src).splitlines()[0] == 'check("fooling_step", strict=False)'
    assert lenient_checks('  check( "a_b" )') == '  check( "a_b" , strict=False)'
    assert lenient_checks('print("check(x)")') == 'print("check(x)")'
