"""Extracting a submission's code: imports, function and class definitions (and literal constants) only.

IPython magics and shell lines are blanked (line numbers are kept for messages), every code cell is parsed with
:mod:`ast`, and only top-level definitions survive, so demo code never runs during grading. A cell with a
SyntaxError is recorded; the questions whose functions are then missing report it.
"""
from __future__ import annotations

import ast
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

#: Cell magics whose body is Python (the magic line itself is dropped); other ``%%`` cells are skipped.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
_HELP = re.compile(r"^\s*[?]|[?]\s*$")

#: CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state, so two threads parsing at
#: once can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). The batch
#: grader extracts submissions from a thread pool, so every parse goes through this lock.
_PARSE_LOCK = threading.Lock()


class NotebookError(Exception):
    """The file is not a readable notebook."""


@dataclass
class Cell:
    index: int            # 1-based position among all cells of the notebook
    source: str           # the cell's source with magics blanked (same line numbers)
    grade_id: str | None = None
    syntax_error: str | None = None   # "SyntaxError in cell k line l: ..." or None
    defines: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"cell {self.index}" + (f" ({self.grade_id})" if self.grade_id else "")


def strip_magics(source: str) -> str | None:
    """Blank IPython-only lines (``%``, ``!``, ``?``, ``x = !cmd``); ``None`` for a non-Python cell magic."""
    lines = source.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        name = first[2:].split()[0] if first[2:].split() else ""
        if name not in _PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    out = []
    for line in lines:
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if stripped.startswith(("%", "!")) or re.match(r"^[\w.\[\], ]+\s*=\s*[!%]", stripped) \
                or (_HELP.search(stripped) and not stripped.startswith("#")):
            out.append(indent + "pass" if indent else "")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def keep_node(node: ast.stmt) -> bool:
    """Top-level statements that run when a submission is loaded: imports, defs, classes, literal constants."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _literal(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _literal(node.value)
    return False


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """:func:`ast.parse`, one thread at a time (see ``_PARSE_LOCK``)."""
    with _PARSE_LOCK:
        return ast.parse(source, filename=filename)


def kept_module(source: str, filename: str) -> ast.Module:
    """Parse ``source`` and keep only :func:`keep_node` statements (line numbers preserved)."""
    tree = parse(source, filename)
    return ast.Module(body=[n for n in tree.body if keep_node(n)], type_ignores=[])


def _defined_names(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def read_notebook(path: str | Path):
    """Read a notebook with nbformat; raise :class:`NotebookError` with a short reason on failure."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(str(getattr(exc, "strerror", None) or exc)) from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise NotebookError(f"not a Jupyter notebook ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (no cell list)")
    return nb


def extract_cells(nb) -> list[Cell]:
    """The code cells of a notebook, magics blanked, each checked for syntax errors."""
    cells = []
    for i, cell in enumerate(nb.get("cells", []), start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        cleaned = strip_magics(src)
        if cleaned is None:
            continue
        grade_id = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        c = Cell(index=i, source=cleaned, grade_id=grade_id)
        try:
            c.defines = _defined_names(kept_module(cleaned, f"cell_{i:03d}.py"))
        except SyntaxError as exc:
            msg = exc.msg or "invalid syntax"
            c.syntax_error = f"{type(exc).__name__} in {c.label()} line {exc.lineno}: {msg}"
            if exc.text and exc.text.strip():
                c.syntax_error += f" (`{exc.text.strip()[:80]}`)"
        except (ValueError, RecursionError, MemoryError) as exc:
            c.syntax_error = f"{c.label()} could not be parsed: {type(exc).__name__}"
        cells.append(c)
    return cells


def explain_missing(name: str, cells: list[Cell], load_errors: dict[int, str] | None = None) -> str | None:
    """Why ``name`` is not defined, when a cell's syntax error or load-time exception explains it."""
    load_errors = load_errors or {}
    pattern = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*=", re.M)
    for c in cells:
        if pattern.search(c.source):
            if c.syntax_error:
                return c.syntax_error
            if c.index in load_errors:
                return load_errors[c.index]
    return None
