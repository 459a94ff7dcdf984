"""Extracting a submission's code: imports, function and class definitions, literal constants, and the assignments
graded functions need (see :func:`select`); nothing else.

IPython magics and shell lines are blanked (line numbers are kept for messages), every code cell is parsed with
:mod:`ast`, and only top-level definitions survive, so demo code never runs during grading. A cell with a
SyntaxError is recorded; the questions whose functions are then missing report it.
"""
from __future__ import annotations

import ast
import errno
import json
import os
import re
import stat
import symtable
import sys
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


#: Largest notebook the grader reads (a notebook with many image outputs is a few MB).
MAX_NOTEBOOK_BYTES = 64 << 20


def read_submission(path: str | Path, root: str | Path | None = None, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a submitted notebook, read without following links.

    The grader runs as root: a notebook that is a symbolic link (to the solution, to another student's notebook,
    to ``/etc/shadow``, to ``/dev/zero``), a FIFO, a device or anything larger than ``limit`` bytes is refused with
    a :class:`NotebookError` saying so, and so is a path whose folders below ``root`` are symbolic links."""
    path = Path(path)
    if root is not None:
        try:
            parts = path.relative_to(root).parts[:-1]
        except ValueError:
            parts = ()
        folder = Path(root)
        for part in parts:
            folder = folder / part
            try:
                if stat.S_ISLNK(os.lstat(folder).st_mode):
                    raise NotebookError(f"the folder {part!r} is a symbolic link; submit real folders and files")
            except OSError as exc:
                raise NotebookError(exc.strerror or str(exc)) from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotebookError("the notebook is a symbolic link; submit the notebook file itself") from None
        raise NotebookError(exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket" \
                if stat.S_ISSOCK(st.st_mode) else "not a file"
            raise NotebookError(f"the notebook is {kind}, not a regular file")
        if st.st_size > limit:
            raise NotebookError(f"the notebook is larger than {limit >> 20} MB")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise NotebookError(f"the notebook is larger than {limit >> 20} MB")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise NotebookError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


@dataclass
class Cell:
    index: int            # 1-based position among all cells of the notebook
    source: str           # the cell's source with magics blanked (same line numbers)
    grade_id: str | None = None
    syntax_error: str | None = None   # "SyntaxError in cell k line l: ..." or None
    defines: list[str] = field(default_factory=list)
    #: Indices of the top-level statements run at load (None: :func:`keep_node` decides); see :func:`select`.
    keep: list[int] | None = None
    #: Among ``keep``, assignments whose value is not a literal: if one fails, the rest of the cell still runs.
    soft: list[int] = field(default_factory=list)
    #: The parsed top-level statements of ``source`` (set by :func:`extract_cells`, reused by :func:`select`).
    body: list[ast.stmt] | None = field(default=None, repr=False, compare=False)
    #: Their own source texts (see :func:`_statement_sources`) and :func:`keep_node` of each (set with ``body``).
    texts: list[str | None] | None = field(default=None, repr=False, compare=False)
    kept: list[bool] | None = field(default=None, repr=False, compare=False)

    def label(self) -> str:
        return f"cell {self.index}" + (f" ({self.grade_id})" if self.grade_id else "")


def strip_magics(source: str) -> str | None:
    """Blank IPython-only lines (``%``, ``!``, ``?``, ``x = !cmd``); ``None`` for a non-Python cell magic."""
    lines = re.split(r"\r\n|\r|\n", source)  # the line breaks of Python's tokenizer (not str.splitlines')
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


def import_nbformat():
    """``import nbformat``, without the second of CPU its import can cost: nbformat imports jsonschema, which
    imports the optional ``rfc3987_syntax`` (compiling a grammar) to check the ``iri`` formats; nbformat's schemas
    use no formats, so when jsonschema is not imported yet it is imported without that package."""
    if "nbformat" not in sys.modules and "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment] # import fails: jsonschema skips it
        try:
            import nbformat  # noqa: F401
        except Exception:  # noqa: BLE001 - the plain import below reports it
            pass
        finally:
            if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
                del sys.modules["rfc3987_syntax"]
    import nbformat
    return nbformat


def read_notebook(path: str | Path, root: str | Path | None = None):
    """Read a notebook (see :func:`read_submission` for what is refused); raise :class:`NotebookError` with a short
    reason on failure.

    A version-4 notebook is the parsed JSON as it is: :func:`extract_cells` reads any shape of cell defensively, and
    nbformat's schema validation (which only logs) and its conversion to attribute dicts were the largest part of
    the grader's CPU per submission. Older versions are converted with nbformat."""
    try:
        text = read_submission(path, root).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(str(exc)) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not a Jupyter notebook: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise NotebookError("not a Jupyter notebook (nested too deeply)") from None
    if isinstance(raw, dict) and raw.get("nbformat") == 4:
        if not isinstance(raw.get("cells"), list):
            raise NotebookError("not a Jupyter notebook (no cell list)")
        return raw
    nbformat = import_nbformat()
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise NotebookError(f"not a Jupyter notebook ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (no cell list)")
    return nb


#: What :func:`extract_cells` and :func:`select` derive from a cell's source alone, by source. In a class, most cells
#: of most notebooks are the release notebook's unchanged (imports, demo code, plots), and a batch grader reads
#: hundreds of them: each distinct cell is analysed once. Entries are only read (the AST nodes included).
_CELL_CACHE: dict[str, tuple] = {}
_READS_CACHE: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
_CACHE_LIMIT = 4096   # entries per cache; both are emptied when full (a class has far fewer distinct cells)
_CACHE_LOCK = threading.Lock()


def _cache_put(cache: dict, key: str, value) -> None:
    with _CACHE_LOCK:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value


def _analyse(src: str) -> tuple:
    """``(cleaned source or None for a non-Python cell magic, parsed top-level statements or None, the names its
    kept statements define, the parse failure or None, the statements' own source texts, :func:`keep_node` of
    each statement)``; the failure is
    ``("syntax", msg, lineno, text)`` or ``("parse", exception type name)``."""
    found = _CELL_CACHE.get(src)
    if found is not None:
        return found
    cleaned = strip_magics(src)
    body, defines, error, texts, kept, transient = None, [], None, None, None, False
    if cleaned is not None:
        try:
            body = parse(cleaned, "<cell>").body
            kept = [keep_node(n) for n in body]
            defines = _defined_names(ast.Module(body=[n for n, k in zip(body, kept) if k], type_ignores=[]))
            texts = _statement_sources(cleaned, body)
        except SyntaxError as exc:
            error = ("syntax", exc.msg, exc.lineno, exc.text)
        except (ValueError, RecursionError, MemoryError) as exc:
            error = ("parse", type(exc).__name__)
            transient = not isinstance(exc, ValueError)
    result = (cleaned, body, defines, error, texts, kept)
    if not transient:
        _cache_put(_CELL_CACHE, src, result)
    return result


def extract_cells(nb) -> list[Cell]:
    """The code cells of a notebook, magics blanked, each checked for syntax errors."""
    cells = []
    for i, cell in enumerate(nb.get("cells", []), start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(str(s) for s in src) if isinstance(src, list) else str(src)
        cleaned, body, defines, error, texts, kept = _analyse(src)
        if cleaned is None:
            continue
        # metadata written by hand or by another tool may have any shape: only a string grade id is used
        meta = cell.get("metadata")
        nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = nbg.get("grade_id") if isinstance(nbg, dict) else None
        c = Cell(index=i, source=cleaned, grade_id=grade_id if isinstance(grade_id, str) else None)
        if error is None:
            c.body, c.defines, c.texts, c.kept = body, list(defines), texts, kept
        elif error[0] == "syntax":
            _, msg, lineno, text = error
            c.syntax_error = f"SyntaxError in {c.label()} line {lineno}: {msg or 'invalid syntax'}"
            if text and text.strip():
                c.syntax_error += f" (`{text.strip()[:80]}`)"
        else:
            c.syntax_error = f"{c.label()} could not be parsed: {error[1]}"
        cells.append(c)
    return cells


def _target_names(targets: list[ast.expr]) -> list[str] | None:
    """The plain names bound by assignment targets, unpacking tuples and lists (None: another kind of target)."""
    out: list[str] = []
    for t in targets:
        if isinstance(t, ast.Name):
            out.append(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            inner = _target_names(t.elts)
            if inner is None:
                return None
            out += inner
        else:
            return None
    return out


def _assigned_names(node: ast.stmt) -> list[str] | None:
    """The names a top-level ``x = ...`` / ``a, b = ...`` / ``x: T = ...`` binds (None: not such a statement)."""
    if isinstance(node, ast.Assign):
        return _target_names(node.targets)
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return _target_names([node.target])
    return None


def _statement_sources(source: str, body: list[ast.stmt]) -> list[str | None]:
    """The source text of each top-level statement of ``body`` (parsed from ``source``), cut from the cell's lines
    (decorators included); None for a statement that shares a line with another (``a = 1; b = 2``), which
    :func:`_reads` then rebuilds with ``ast.unparse`` (slower: it dominated the grader's CPU per submission)."""
    lines = re.split(r"\r\n|\r|\n", source)  # the line breaks of Python's tokenizer (not str.splitlines')
    spans = [(min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", ())]), n.end_lineno or n.lineno)
             for n in body]
    out: list[str | None] = []
    for j, (node, (start, end)) in enumerate(zip(body, spans)):
        alone = (node.col_offset == 0 and (j == 0 or spans[j - 1][1] < start)
                 and (j + 1 == len(spans) or spans[j + 1][0] > end))
        out.append("\n".join(lines[start - 1:end]) + "\n" if alone else None)
    return out


def _reads(node: ast.stmt, source: str | None = None) -> tuple[frozenset[str], frozenset[str]]:
    """``(when run, when called)``: the global names a top-level statement reads when it runs (an assignment's
    value; a def's decorators and defaults; a class body) and, for the functions it defines, when they are called
    (symtable scopes: a function's own locals and parameters are not globals). ``source``: the statement's own
    text, if known (see :func:`_statement_sources`); otherwise it is rebuilt from ``node``. Read once per text."""
    if source is not None:
        found = _READS_CACHE.get(source)
        if found is not None:
            return found
    table = None
    try:
        if source is not None:
            try:
                with _PARSE_LOCK:
                    table = symtable.symtable(source, "<kept>", "exec")
            except SyntaxError:  # a cut that is not a statement on its own (a backslash continuation...)
                table = None
        cache = table is not None  # the result depends on the text alone (not so when rebuilt from ``node``)
        if table is None:
            text = ast.unparse(ast.Module(body=[node], type_ignores=[]))
            with _PARSE_LOCK:
                table = symtable.symtable(text, "<kept>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(), frozenset()
    now: set[str] = set()
    later: set[str] = set()

    def walk(t, called: bool) -> None:
        top = t.get_type() == "module"
        for sym in t.get_symbols():
            if sym.is_referenced() and (top or sym.is_global()):
                (later if called else now).add(sym.get_name())
        for child in t.get_children():
            walk(child, called or child.get_type() == "function")

    walk(table, False)
    found = frozenset(now), frozenset(later)
    if cache:
        _cache_put(_READS_CACHE, source, found)
    return found


def _binds(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    return _assigned_names(node) or []


def select(cells: list[Cell], wanted: set[str] | frozenset[str] = frozenset()) -> None:
    """Decide which top-level statements of each cell run when the submission is loaded (``cell.keep``).

    Always: imports, function and class definitions and literal constants (:func:`keep_node`). Also an assignment
    whose value is not a literal when the graded functions (``wanted``) need it: a graded name bound as
    ``f = _impl`` or ``f = lambda ...``, a global a graded function reads (``SCALE = torch.tensor(1.0)``), or one
    that what they call reads, transitively, and one a kept definition reads when it runs (a default value).
    Other statements (demo code, plots, prints, and demo globals only helpers read) never run. The extra
    assignments are ``soft``: one that raises is reported for its cell, and the cell's later definitions load."""
    trees: dict[int, list[ast.stmt]] = {}
    texts: dict[int, list[str | None]] = {}
    kept_at: dict[int, list[bool]] = {}   # keep_node of each statement
    for c in cells:
        if c.syntax_error is not None:
            continue
        try:
            trees[c.index] = c.body if c.body is not None else parse(c.source, f"cell_{c.index:03d}.py").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        analysed = c.body is not None and c.texts is not None and c.kept is not None
        texts[c.index] = c.texts if analysed else _statement_sources(c.source, trees[c.index])
        kept_at[c.index] = c.kept if analysed else [keep_node(n) for n in trees[c.index]]
    definitions: dict[str, list[tuple[int, int, ast.stmt]]] = {}
    needed = set(wanted)
    for idx, body in trees.items():
        for j, node in enumerate(body):
            kept = kept_at[idx][j]
            if kept or _assigned_names(node):
                for name in _binds(node):
                    definitions.setdefault(name, []).append((idx, j, node))
            if kept and not isinstance(node, (ast.Import, ast.ImportFrom)):
                needed |= _reads(node, texts[idx][j])[0]  # what a kept definition reads when it runs (defaults...)
    extra: set[tuple[int, int]] = set()
    queue, seen = list(needed), set()
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        for idx, j, node in definitions.get(name, []):
            if not kept_at[idx][j]:
                extra.add((idx, j))
            now, later = _reads(node, texts[idx][j])
            queue.extend((now | later) - seen)
    for c in cells:
        body = trees.get(c.index)
        if body is None:
            continue
        c.keep = [j for j in range(len(body)) if kept_at[c.index][j] or (c.index, j) in extra]
        c.soft = [j for j in c.keep if (c.index, j) in extra]


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
