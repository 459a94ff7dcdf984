"""A synthetic class made from the solutions: the demo's and the tests' stand-in for real students.

Each student starts from the release notebook (what students really receive) with the solution code pasted into its
solution cells, then breaks it in one typical way. Every variant but ``blank`` and ``exit_at_import`` breaks exactly
one question, so a trustworthy grader takes points from that question only.
"""
from __future__ import annotations

import re
from pathlib import Path
import nbformat

from autograder.core.spec import Assignment, Question, TensorMatch

STUDENTS = {
    "ada": "full_marks",
    "ben": "one_wrong",
    "cy": "blank",
    "dee": "syntax_error",
    "eve": "exception",
    "fay": "wrong_shape",
    "gus": "infinite_loop",
    "hal": "exit_at_import",
}
"""Student name -> what their submission does."""

_PERTURB = '''
def _perturbed(out, change):
    if isinstance(out, tuple):
        return tuple(_perturbed(o, change) for o in out)
    return change(out)
'''


def solution_sources(solution_nb: nbformat.NotebookNode) -> dict[str, str]:
    """Solution cells' code with the nbgrader markers removed, keyed by grade_id."""
    sources = {}
    for cell in solution_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            sources[meta["grade_id"]] = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", "", cell.source, flags=re.M)
    return sources


def _filled(release_nb: nbformat.NotebookNode, sources: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(release_nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id") in sources:
            cell.source = sources[meta["grade_id"]]
    return nb


def _cell_defining(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(rf"^def {re.escape(name)}\(", cell.source, re.M):
            return cell
    raise ValueError(f"no cell defines {name}()")


def _replace_function(nb: nbformat.NotebookNode, name: str, body: str) -> None:
    """Rename the student's ``name`` to ``_original_<name>`` and define ``name`` with ``body`` around it."""
    cell = _cell_defining(nb, name)
    cell.source = re.sub(rf"^def {re.escape(name)}\(", f"def _original_{name}(", cell.source, flags=re.M)
    cell.source += f"\n\n\ndef {name}(*args, **kwargs):\n" + "".join(f"    {line}\n" for line in body.splitlines())


def _pick(assignment: Assignment, k: int = 0, plain: bool = True) -> Question:
    """The k-th question whose output is a returned tensor compared exactly (so a change is visible)."""
    pool = [q for q in assignment.questions if not plain or (q.compare.exact and not q.inplace)]
    pool = pool or list(assignment.questions)
    return pool[k % len(pool)]


def _variant(kind: str, nb: nbformat.NotebookNode, release_nb: nbformat.NotebookNode,
             assignment: Assignment) -> nbformat.NotebookNode:
    if kind == "full_marks":
        return nb
    if kind == "blank":
        return nbformat.from_dict(release_nb)
    if kind == "one_wrong":
        q = _pick(assignment, 0)
        _replace_function(nb, q.id, "out = _original_{0}(*args, **kwargs)\nreturn _perturbed(out, lambda t: t * 2 + 1)".format(q.id))
        _cell_defining(nb, q.id).source += _PERTURB
    elif kind == "wrong_shape":
        q = _pick(assignment, 1)
        _replace_function(nb, q.id, "out = _original_{0}(*args, **kwargs)\nreturn _perturbed(out, lambda t: t.unsqueeze(0))".format(q.id))
        _cell_defining(nb, q.id).source += _PERTURB
    elif kind == "exception":
        q = _pick(assignment, 2, plain=False)
        _replace_function(nb, q.id, "raise ValueError('index out of range in my loop')")
    elif kind == "infinite_loop":
        q = _pick(assignment, 3, plain=False)
        _replace_function(nb, q.id, "while True:\n    pass")
    elif kind == "syntax_error":
        q = _pick(assignment, 4, plain=False)
        cell = _cell_defining(nb, q.id)
        cell.source = cell.source.replace(f"def {q.id}(", f"def {q.id}((", 1)
    elif kind == "exit_at_import":
        # A decorator runs when the notebook's definitions are loaded, in nbgrader's kernel and in the fast grader.
        q = assignment.questions[0]
        cell = _cell_defining(nb, q.id)
        cell.source = ("import os\n\n\ndef _setup(fn):\n    os._exit(1)\n\n\n"
                       + re.sub(rf"^def {re.escape(q.id)}\(", f"@_setup\ndef {q.id}(", cell.source, count=1, flags=re.M))
    else:
        raise ValueError(f"unknown variant {kind!r}; valid: {', '.join(STUDENTS.values())}")
    return nb


def make_class(assignment: Assignment, solution_path: Path, release_path: Path, submitted_dir: Path,
               students: dict[str, str] | None = None) -> list[Path]:
    """Write ``submitted_dir/<student>/<assignment>/<assignment>.ipynb`` for each synthetic student."""
    solution_nb = nbformat.read(solution_path, as_version=4)
    release_nb = nbformat.read(release_path, as_version=4)
    sources = solution_sources(solution_nb)
    written = []
    for student, kind in (students or STUDENTS).items():
        nb = _variant(kind, _filled(release_nb, sources), release_nb, assignment)
        path = Path(submitted_dir) / student / assignment.id / assignment.notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        written.append(path)
    return written


def expected_losses(assignment: Assignment) -> dict[str, set[str]]:
    """For each student kind, the question ids it is built to break (``None`` = every question)."""
    ids = {q.id for q in assignment.questions}
    return {
        "full_marks": set(),
        "blank": ids,
        "exit_at_import": ids,
        "one_wrong": {_pick(assignment, 0).id},
        "wrong_shape": {_pick(assignment, 1).id},
        "exception": {_pick(assignment, 2, plain=False).id},
        "infinite_loop": {_pick(assignment, 3, plain=False).id},
        "syntax_error": {_pick(assignment, 4, plain=False).id},
    }
