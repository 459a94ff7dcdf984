"""Build what students get: the release notebooks (``assignments/``) and the student bundle (``dist/student/``).

``python -m autograder release`` regenerates every ``assignments/<id>/<id>.ipynb`` from ``solutions/`` with nbgrader
(in a scratch course folder, so the instructor's gradebook is untouched), then copies the public parts of the kit
into ``dist/student/`` and runs :func:`leak_check` on it. The bundle holds no ``utils/reference``, no hidden
reference, no solution marker, no hidden test block and no reference function body.
"""
from __future__ import annotations

import ast
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from autograder.course.layout import REPO_ROOT, Course, assignment_ids
from autograder.course.nbgrader_api import generate_release

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS",
                    "BEGIN MARK SCHEME")
BUNDLE_FILES = ("constraints.txt", "LICENSE")
#: The student README (``{first}``: an assignment id, ``{assignments}``: one line per assignment).
STUDENT_README = Path(__file__).resolve().parent / "STUDENT_README.md"
#: Libraries the instructors' tools use that implement what students are asked to write: never in the bundle's
#: install files (pytorch-metric-learning has ready-made versions of assignment 06's losses).
INSTRUCTOR_ONLY_PACKAGES = ("pytorch-metric-learning",)
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".toml", ".yml", ".yaml", ".json", ".cfg", ".html", ""}


class LeakError(RuntimeError):
    """The student bundle contains instructor-only material."""


def generate_assignments(root: Path = REPO_ROOT, ids: list[str] | None = None,
                         dest: Path | None = None) -> list[Path]:
    """Regenerate the student notebooks with nbgrader into ``dest`` (default ``root/assignments``)."""
    ids = ids or assignment_ids(root)
    dest = dest or Course(root).assignments
    written = []
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        course = Path(tmp)
        for aid in ids:
            shutil.copytree(root / "solutions" / aid, course / "solutions" / aid,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            generated = generate_release(course, aid)
            target = dest / aid / f"{aid}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(generated, target)
            written.append(target)
    return written


def _public_ignore(src_root: Path):
    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).resolve().relative_to(src_root)
        skip = {n for n in names if n in ("__pycache__", ".ipynb_checkpoints") or n.endswith(".pyc")}
        if rel == Path("utils"):
            skip.add("reference")
        if rel == Path("autograder/cases"):
            skip.add("hidden")
        return skip
    return ignore


def build_student_bundle(root: Path = REPO_ROOT, dest: Path | None = None,
                         assignments_dir: Path | None = None) -> Path:
    """Copy the public kit into ``dest`` (default ``root/dist/student``) and leak-check it.

    ``assignments_dir`` (default ``root/assignments``) is where the release notebooks are taken from."""
    dest = dest or root / "dist" / "student"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(assignments_dir or Course(root).assignments, dest / "assignments",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for name in ("utils", "autograder"):
        shutil.copytree(root / name, dest / name, ignore=_public_ignore(root.resolve()))
    for name in BUNDLE_FILES:
        if (root / name).exists():
            shutil.copyfile(root / name, dest / name)
    for name in ("pyproject.toml", "environment.yml"):
        if (root / name).exists():
            (dest / name).write_text(without_instructor_packages((root / name).read_text()))
    (dest / "README.md").write_text(student_readme(dest / "assignments"))
    problems = leak_check(dest, root)
    if problems:
        raise LeakError("student bundle leaks instructor material:\n  " + "\n  ".join(problems))
    return dest


def without_instructor_packages(text: str) -> str:
    """An install file (pyproject.toml, environment.yml) without the lines naming :data:`INSTRUCTOR_ONLY_PACKAGES`."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not any(pkg in line for pkg in INSTRUCTOR_ONLY_PACKAGES))


def student_readme(assignments_dir: Path) -> str:
    """The bundle's README: the student commands, and one line per assignment (its notebook's title)."""
    lines = []
    for nb_path in sorted(assignments_dir.glob("*/*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        title = next((c.source.splitlines()[0].lstrip("# ").strip() for c in nb.cells
                      if c.cell_type == "markdown" and c.source.strip()), nb_path.stem)
        lines.append(f"- `{nb_path.relative_to(assignments_dir.parent)}`: {title}")
    first = sorted(p.name for p in assignments_dir.iterdir() if p.is_dir())[0] if lines else "<assignment>"
    return STUDENT_README.read_text().replace("{first}", first).replace("{assignments}", "\n".join(lines))


def _normalize(code: str) -> str:
    return re.sub(r"\s+", " ", code).strip()


def reference_bodies(root: Path = REPO_ROOT, min_lines: int = 3) -> dict[str, str]:
    """Normalized bodies (docstrings dropped) of every function in ``utils/reference`` with at least
    ``min_lines`` statements' worth of lines, keyed by ``module:function``."""
    bodies: dict[str, str] = {}
    for path in sorted((root / "utils" / "reference").glob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:]
            if not body:
                continue
            text = ast.get_source_segment(source, body[0]) if len(body) == 1 else "\n".join(
                ast.get_source_segment(source, stmt) or "" for stmt in body)
            if text and text.count("\n") + 1 >= min_lines:
                bodies[f"{path.stem}:{node.name}"] = _normalize(text)
    return bodies


def solution_blocks(root: Path = REPO_ROOT, min_chars: int = 40) -> dict[str, str]:
    """Normalized solution code between BEGIN/END SOLUTION markers of every solution notebook."""
    blocks: dict[str, str] = {}
    for nb_path in sorted((root / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for k, cell in enumerate(nb.cells):
            for m in re.finditer(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
                text = _normalize(m.group(1))
                if len(text) >= min_chars:
                    blocks[f"{nb_path.name}:cell{k}"] = text
    return blocks


def leak_check(bundle: Path, root: Path = REPO_ROOT) -> list[str]:
    """Every instructor-only thing found in ``bundle``; an empty list means the bundle is clean."""
    problems: list[str] = []
    if (bundle / "utils" / "reference").exists():
        problems.append("utils/reference is in the bundle")
    if (bundle / "autograder" / "cases" / "hidden").exists():
        problems.append("hidden references are in the bundle")
    if (bundle / "solutions").exists():
        problems.append("solutions/ is in the bundle")
    secrets = {**{f"reference body {k}": v for k, v in reference_bodies(root).items()},
               **{f"solution code {k}": v for k, v in solution_blocks(root).items()}}
    for path in sorted(bundle.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        rel = path.relative_to(bundle)
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if path.suffix == ".ipynb":
            try:
                text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
            except Exception:  # a broken notebook is not a leak; the release tests catch it
                pass
        if path.name == "release.py" and rel.parts[0] == "autograder":
            text = text.replace(repr(SOLUTION_MARKERS), "")  # the checker names the markers it looks for
        if rel.name in ("pyproject.toml", "environment.yml") and len(rel.parts) == 1:
            problems += [f"{rel}: installs {pkg}, which solves the assignments"
                         for pkg in INSTRUCTOR_ONLY_PACKAGES if pkg in text]
        for marker in SOLUTION_MARKERS:
            if marker in text and not (rel.parts[0] == "autograder" and rel.suffix == ".py"):
                problems.append(f"{rel}: contains {marker!r}")
        if "hidden" in rel.parts and "cases" in rel.parts:
            problems.append(f"{rel}: hidden reference file")
        flat = _normalize(text)
        for name, body in secrets.items():
            if body in flat:
                problems.append(f"{rel}: contains {name}")
    return problems
