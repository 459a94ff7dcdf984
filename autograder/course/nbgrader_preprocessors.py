"""nbgrader preprocessors that keep ``nbgrader autograde`` consistent with the fast grader.

:class:`SkipDemoCells` runs before nbgrader's ``Execute``: a code cell tagged ``demo`` (training loops, galleries)
keeps only what the fast grader would keep from it — imports, function and class definitions, literal constants —
so grading does not spend minutes redrawing figures, and both graders see exactly the same definitions. In grade
cells it calls the self-check with ``strict=False``: in a student's notebook (and in nbgrader's Validate) a failing
``check(...)`` raises so the cell fails, but while autograding the hidden tests' ``score(...)`` after it must run
and decide the (partial) credit.
"""
from __future__ import annotations

import ast
import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from autograder.core.extract import kept_module, strip_magics

SKIPPED_NOTE = "# demo cell: skipped while grading (only its imports and definitions are kept)\n"
_CHECK_CALL = re.compile(r"^(\s*)check\((\s*[\"'][A-Za-z_][A-Za-z0-9_]*[\"']\s*)\)", re.M)


def lenient_checks(source: str) -> str:
    """``check("fn")`` -> ``check("fn", strict=False)`` (prints its table, never raises)."""
    return _CHECK_CALL.sub(r"\1check(\2, strict=False)", source)


def definitions_only(source: str) -> str:
    """The part of a cell's source the fast grader runs; a cell that does not parse is kept as it is."""
    cleaned = strip_magics(source)
    if cleaned is None:
        return SKIPPED_NOTE
    try:
        kept = kept_module(cleaned, "<cell>")
    except SyntaxError:
        return source
    return SKIPPED_NOTE + (ast.unparse(kept) + "\n" if kept.body else "")


class SkipDemoCells(NbGraderPreprocessor):
    """Replace the source of code cells tagged :attr:`tag` by their definitions only (see module doc)."""

    tag = Unicode("demo", help="cells with this tag are not run while autograding").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and self.tag in cell.metadata.get("tags", []) \
                and not (meta.get("solution") or meta.get("grade") or meta.get("locked")):
            cell.source = definitions_only(cell.source)
        elif cell.cell_type == "code" and meta.get("grade"):
            cell.source = lenient_checks(cell.source)
        return cell, resources
