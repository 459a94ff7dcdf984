"""Batch grading of a submissions folder laid out the nbgrader way: ``<root>/<student>/<assignment>/<nb>.ipynb``.

Submissions are graded in parallel (one sandboxed worker each), stored in SQLite as each finishes (so a killed
batch resumes where it stopped, and a changed notebook is regraded), then exported: ``grades.csv``,
``feedback/<student>/<assignment>.html`` and the class report.
"""
from __future__ import annotations

import csv
import hashlib
import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import feedback, registry, report, sandbox
from .runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, GraderError, Session
from .store import Store
from .verdicts import Result

CSV_COLUMNS = ["student", "assignment", "question", "points", "max_points", "verdict", "message"]


class BatchError(Exception):
    """Nothing could be graded (missing folder, unknown assignment...)."""


@dataclass
class Submission:
    student: str
    assignment: str
    path: Path          # the notebook (may not exist: then every question says why)

    def sha256(self) -> str:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return "unreadable"


@dataclass
class BatchSummary:
    out_dir: Path
    graded: int = 0
    reused: int = 0
    failed: list[str] = field(default_factory=list)     # grader failures (nothing stored; rerun to retry)
    warnings: list[str] = field(default_factory=list)
    isolation: str = ""
    table: str = ""

    @property
    def ok(self) -> bool:
        return (self.graded + self.reused) > 0


def discover(root: Path, assignment: str | None = None) -> tuple[list[Submission], list[str]]:
    """Submissions under ``root`` (for one assignment, or every known one) and warnings about the layout."""
    known = registry.entries()
    warnings: list[str] = []
    found: list[Submission] = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for a_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if assignment is not None and a_dir.name != assignment:
                continue
            if a_dir.name not in known:
                warnings.append(f"{student_dir.name}/{a_dir.name}: unknown assignment, skipped")
                continue
            nb = a_dir / f"{a_dir.name}.ipynb"
            if not nb.exists():
                others = sorted(a_dir.glob("*.ipynb"))
                if len(others) == 1:
                    warnings.append(f"{student_dir.name}/{a_dir.name}: graded {others[0].name} "
                                    f"(expected {nb.name})")
                    nb = others[0]
            found.append(Submission(student_dir.name, a_dir.name, nb))
    return found, warnings


def write_csv(path: Path, rows: Iterable[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "points": f"{r['points']:g}", "max_points": f"{r['max_points']:g}"})
    tmp.replace(path)


def _grade_one(session: Session, sub: Submission) -> tuple[list[Result], str]:
    info: dict = {}
    results = session.grade(sub.path, sub.assignment, info)
    return results, info.get("isolation") or "none (notebook not run)"


def grade_folder(submitted: str | Path, out: str | Path, *, assignment: str | None = None,
                 workers: int | None = None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
                 load_timeout: float | None = None, progress: bool = True, hide: Iterable[str | Path] = (),
                 log: Callable[[str], None] = print) -> BatchSummary:
    """Grade every submission under ``submitted`` into ``out``; resumable; returns a :class:`BatchSummary`.

    Raises :class:`BatchError` when nothing can be graded (missing folder, unknown assignment, no submission)."""
    submitted, out = Path(submitted), Path(out)
    if not submitted.is_dir():
        raise BatchError(f"submissions folder not found: {submitted}")
    if assignment is not None:
        try:
            registry.get(assignment)
        except KeyError as exc:
            raise BatchError(str(exc.args[0])) from None
    subs, warnings = discover(submitted, assignment)
    if not subs:
        what = f"for assignment {assignment!r} " if assignment else ""
        raise BatchError(f"no submissions {what}under {submitted} (expected <student>/<assignment>/<assignment>"
                         ".ipynb)" + "".join(f"\n  {w}" for w in warnings))
    out.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(out, warnings=warnings)
    store = Store(out / "grades.sqlite")
    workers = max(1, workers or os.cpu_count() or 1)
    level = sandbox.isolation_level()
    summary.isolation = level
    log(f"isolation: {level} ({sandbox.describe(level)})")
    for w in warnings:
        log(f"warning: {w}")
    hide = [*hide, str(submitted.resolve()), str(out.resolve())]
    with Session(timeout=timeout, memory_mb=memory_mb, load_timeout=load_timeout, hide=hide) as session:
        todo: list[tuple[Submission, str, str]] = []
        for sub in subs:
            prepared = session.prepare(sub.assignment)
            sha = sub.sha256()
            if store.is_current(sub.student, sub.assignment, sha, prepared.fingerprint):
                summary.reused += 1
            else:
                todo.append((sub, sha, prepared.fingerprint))
        if summary.reused:
            log(f"resuming: {summary.reused} submission(s) already graded, {len(todo)} to grade")
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(todo), unit="nb", desc="grading")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(_grade_one, session, sub): (sub, sha, fp) for sub, sha, fp in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    sub, sha, fp = pending.pop(fut)
                    name = f"{sub.student}/{sub.assignment}"
                    try:
                        results, isolation = fut.result()
                    except GraderError as exc:
                        summary.failed.append(f"{name}: {exc}")
                        log(f"GRADER FAILURE (not stored; rerun to retry) {name}: {str(exc)[:500]}")
                    else:
                        prepared = session.prepare(sub.assignment)
                        expected = {k: cf.expected for k, cf in prepared.expected.items()}
                        feedback.write(out, sub.student, sub.assignment, results, expected)
                        store.save(sub.student, sub.assignment, sha, fp, results, isolation)
                        summary.graded += 1
                    if bar is not None:
                        bar.update(1)
        if bar is not None:
            bar.close()
        if session.isolation_seen:
            summary.isolation = ",".join(sorted(session.isolation_seen))
    keys = {(s.student, s.assignment) for s in subs}
    rows = store.question_rows(keys)
    case_rows = store.case_rows(keys)
    store.close()
    write_csv(out / "grades.csv", rows)
    report.write(out, rows, case_rows)
    summary.table = report.summary(rows, case_rows)
    return summary
