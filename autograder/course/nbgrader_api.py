"""A thin layer over nbgrader's Python API: generate a release, autograde, read scores back.

Every function takes the course root explicitly so tests and benchmarks can work in a temporary copy of the course
(``nbgrader_config.py`` + ``solutions/``) without touching the instructor's gradebook.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from autograder.course.layout import COURSE, REPO_ROOT


def _autograde_preprocessors() -> list:
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)

    from autograder.course.nbgrader_preprocessors import SkipDemoCells

    return [SkipDemoCells, Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
            AssignLatePenalties, CheckCellMetadata]


def __getattr__(name: str):
    if name == "AUTOGRADE_PREPROCESSORS":  # nbgrader's default list with SkipDemoCells in front
        return _autograde_preprocessors()
    raise AttributeError(name)


class NbgraderError(RuntimeError):
    """An nbgrader step failed; the message carries nbgrader's own log."""


@contextlib.contextmanager
def _chdir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _venv_on_path() -> None:
    """nbgrader runs ``alembic`` (and Jupyter runs kernels) by name: make this interpreter's scripts findable even
    when the virtual environment is not activated."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def course_config(course_root: Path | None = None, cell_timeout: int | None = None):
    """The instructors' ``nbgrader_config.py`` (the one file that configures nbgrader for this course), loaded as
    nbgrader loads it, re-rooted at ``course_root`` with its own gradebook there, and optionally another per-cell
    time limit. Tests and benchmarks therefore run nbgrader exactly as instructors do."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(COURSE.config.name, path=str(COURSE.root)).load_config()
    if course_root is not None:
        config.CourseDirectory.root = str(course_root)
        config.CourseDirectory.db_url = f"sqlite:///{Path(course_root) / 'gradebook.db'}"
    if cell_timeout is not None:
        config.Execute.timeout = cell_timeout
    return config


def make_api(course_root: Path, cell_timeout: int = 300):
    """An ``NbGraderAPI`` configured by ``nbgrader_config.py`` but rooted at ``course_root``."""
    _venv_on_path()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = course_config(course_root, cell_timeout)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def _check(result: dict, what: str) -> None:
    if not result.get("success", False):
        raise NbgraderError(f"nbgrader {what} failed:\n{result.get('error') or ''}\n{result.get('log') or ''}")


def generate_release(course_root: Path, assignment_id: str) -> Path:
    """Run ``nbgrader generate_assignment`` in ``course_root``; return the generated notebook's path."""
    with _chdir(course_root):
        _check(make_api(course_root).generate_assignment(assignment_id, force=True, create=True),
               f"generate_assignment {assignment_id}")
    path = Path(course_root) / "assignments" / assignment_id / f"{assignment_id}.ipynb"
    if not path.exists():
        raise NbgraderError(f"nbgrader generate_assignment did not write {path}")
    return path


def autograde(course_root: Path, assignment_id: str, student: str, cell_timeout: int = 300) -> None:
    """Run ``nbgrader autograde`` for one submission under ``course_root/submitted/<student>/<assignment_id>``."""
    api = make_api(course_root, cell_timeout)
    with _chdir(course_root):
        with api.gradebook as gb:
            gb.update_or_create_student(student)
        _check(api.autograde(assignment_id, student, force=True, create=True), f"autograde {assignment_id} {student}")


def read_scores(course_root: Path, assignment_id: str, student: str) -> dict[str, float]:
    """Autograded scores by grade cell, keyed by question id (``test_<function>`` -> ``<function>``)."""
    from nbgrader.api import Gradebook

    scores: dict[str, float] = {}
    with Gradebook(f"sqlite:///{Path(course_root) / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment_id, assignment_id, student)
        for grade in nb.grades:
            name = grade.cell.name
            if name.startswith("test_"):
                scores[name[len("test_"):]] = float(grade.score)
    return scores
