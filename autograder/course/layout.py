"""The course's folders and its one list of assignments (nbgrader's ``CourseDirectory`` habit).

Every tool asks here where things are, instead of joining paths itself::

    <root>/nbgrader_config.py                 how nbgrader runs this course
    <root>/solutions/<id>/<id>.ipynb          source notebooks (solutions, hidden tests)
    <root>/assignments/<id>/<id>.ipynb        the released student notebooks (generated)
    autograder/questions/<id>.py              what is graded (see autograder.core.registry)
    autograder/cases/{public,hidden}/<id>/    case files; only public/ ships to students

An assignment exists when it has a source notebook and a question file: :meth:`Course.assignment_ids`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.core import registry

#: The checkout the course runs from.
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Course:
    """A course folder (the repository, or a scratch copy of it for tests and benchmarks)."""

    root: Path = REPO_ROOT

    @property
    def config(self) -> Path:
        return self.root / "nbgrader_config.py"

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def assignments(self) -> Path:
        return self.root / "assignments"

    def source_notebook(self, assignment_id: str) -> Path:
        return self.solutions / assignment_id / f"{assignment_id}.ipynb"

    def release_notebook(self, assignment_id: str) -> Path:
        return self.assignments / assignment_id / f"{assignment_id}.ipynb"

    def notebook_ids(self) -> list[str]:
        """Ids of the assignments that have a source notebook, in course order."""
        if not self.solutions.is_dir():
            return []
        return sorted(p.name for p in self.solutions.iterdir() if self.source_notebook(p.name).exists())

    def assignment_ids(self) -> list[str]:
        """The course's assignments, in course order: a source notebook and a question file each."""
        graded = registry.entries()
        return [a for a in self.notebook_ids() if a in graded]


COURSE = Course()


def assignment_ids(root: Path = REPO_ROOT) -> list[str]:
    """:meth:`Course.assignment_ids` of the course at ``root``."""
    return Course(Path(root)).assignment_ids()
