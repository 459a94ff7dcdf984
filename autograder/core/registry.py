"""Where assignments come from: ``autograder/questions/<id>.py`` files, plus any registered question file.

A question file defines ``ASSIGNMENT`` (an :class:`~autograder.core.spec.Assignment`) and may also define
``REFERENCE`` (a module name or a ``.py`` path holding the reference functions; default ``"utils.reference"``) and
``CASES_DIR`` (the folder with ``public/`` and ``hidden/`` case files; default ``autograder/cases``).
Extra question files (the engine's test fixture, a course's own) are added with :func:`register` or the
``AUTOGRADER_QUESTIONS`` environment variable (paths separated by ``os.pathsep``), which also reaches
``check``/``score`` inside a Jupyter kernel.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from autograder.core.spec import Assignment, Case, Question

PACKAGE_DIR = Path(__file__).resolve().parents[1]
QUESTIONS_DIR = PACKAGE_DIR / "questions"
CASES_DIR = PACKAGE_DIR / "cases"
DEFAULT_REFERENCE = "utils.reference"
ENV_VAR = "AUTOGRADER_QUESTIONS"


@dataclass(frozen=True)
class Entry:
    """An assignment with where its reference functions and case files live."""

    assignment: Assignment
    source: Path
    reference: str = DEFAULT_REFERENCE
    cases_dir: Path = CASES_DIR

    @property
    def id(self) -> str:
        return self.assignment.id

    def case_path(self, question: Question, case: Case, root: Path | None = None) -> Path:
        """``<references>/{public|hidden}/<assignment>/<question>/<case>.safetensors``."""
        kind = "public" if case.public else "hidden"
        return Path(root or self.cases_dir) / kind / self.id / question.id / f"{case.name}.safetensors"

    def reference_function(self, question: Question) -> Callable:
        module = _import_reference(self.reference)
        try:
            return getattr(module, question.reference_name)
        except AttributeError:
            raise LookupError(f"{self.reference} has no function {question.reference_name!r} "
                              f"(question {question.id!r} of {self.id})") from None


def _import_reference(ref: str) -> ModuleType:
    if ref.endswith(".py"):
        return _load_file(Path(ref), "autograder_reference_")
    return importlib.import_module(ref)


def _load_file(path: Path, prefix: str) -> ModuleType:
    path = path.resolve()
    name = prefix + "".join(ch if ch.isalnum() else "_" for ch in str(path))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _entry_from_module(module: ModuleType, source: Path) -> Entry:
    assignment = getattr(module, "ASSIGNMENT", None)
    if not isinstance(assignment, Assignment):
        raise TypeError(f"{source} does not define ASSIGNMENT = Assignment(...)")
    ref = getattr(module, "REFERENCE", DEFAULT_REFERENCE)
    refs = Path(getattr(module, "CASES_DIR", CASES_DIR))
    return Entry(assignment, source, str(ref), refs)


_registered: list[Path] = []
_errors: dict[str, str] = {}


def register(path: str | Path) -> Entry:
    """Add a question file (e.g. a test fixture) to the registry and return its entry."""
    path = Path(path).resolve()
    entry = _entry_from_module(_load_file(path, "autograder_questions_"), path)
    if path not in _registered:
        _registered.append(path)
    return entry


def _sources() -> list[tuple[str, Path]]:
    out = []
    if QUESTIONS_DIR.is_dir():
        for p in sorted(QUESTIONS_DIR.glob("*.py")):
            if not p.name.startswith("_"):
                out.append(("package", p))
    for item in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if item:
            p = Path(item)
            files = sorted(p.glob("*.py")) if p.is_dir() else [p]
            out.extend(("file", f) for f in files if not f.name.startswith("_"))
    out.extend(("file", p) for p in _registered)
    return out


def entries() -> dict[str, Entry]:
    """Every assignment that loads, by id. Files that fail to load are skipped; :func:`errors` says why."""
    found: dict[str, Entry] = {}
    _errors.clear()
    for kind, path in _sources():
        try:
            if kind == "package":
                module = importlib.import_module(f"autograder.questions.{path.stem}")
            else:
                module = _load_file(path, "autograder_questions_")
            entry = _entry_from_module(module, path.resolve())
        except Exception as exc:  # noqa: BLE001 - one broken file must not hide the others
            _errors[str(path)] = f"{type(exc).__name__}: {exc}"
            continue
        found.setdefault(entry.id, entry)
    return found


def errors() -> dict[str, str]:
    """Question files that failed to load in the last :func:`entries` call, with the reason."""
    return dict(_errors)


def get(assignment_id: str) -> Entry:
    found = entries()
    if assignment_id in found:
        return found[assignment_id]
    problems = "".join(f"\n  {p}: {e}" for p, e in _errors.items())
    valid = ", ".join(sorted(found)) or "none"
    raise KeyError(f"unknown assignment {assignment_id!r}; known: {valid}"
                   + (f"\nquestion files that failed to load:{problems}" if problems else ""))


def find_question(qid: str) -> tuple[Entry, Question]:
    """The assignment and question with id ``qid`` (question ids are unique across assignments)."""
    for entry in entries().values():
        for q in entry.assignment.questions:
            if q.id == qid:
                return entry, q
    raise KeyError(f"no graded question named {qid!r}")
