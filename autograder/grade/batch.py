"""Batch grading of a submissions folder laid out the nbgrader way: ``<root>/<student>/<assignment>/<nb>.ipynb``.

Submissions are graded in parallel (one sandboxed worker each), stored in SQLite as each finishes (so a killed
batch resumes where it stopped, and a changed notebook is regraded), then exported: ``grades.csv``,
``feedback/<student>/<assignment>.html`` and the class report.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import gc
import hashlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from autograder.core import extract, registry
from autograder.grade import feedback, isolation, report
from autograder.grade.policy import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, PolicyError, SandboxPolicy
from autograder.grade.session import GraderError, Session
from autograder.grade.store import Store

CSV_COLUMNS = ["student", "assignment", "question", "points", "max_points", "verdict", "message"]


class BatchError(Exception):
    """Nothing could be graded (missing folder, unknown assignment...)."""


@dataclass
class Submission:
    student: str        # the student folder's name, made printable (see :func:`student_name`)
    assignment: str
    path: Path          # the notebook (may not exist: then every question says why)
    root: Path | None = None   # the submissions folder: links below it are refused (extract.read_submission)

    def sha256(self) -> str:
        """The notebook's hash, read the way the grader reads it (no links followed, regular files only)."""
        try:
            return hashlib.sha256(extract.read_submission(self.path, self.root)).hexdigest()
        except extract.NotebookError as exc:
            return "unreadable: " + hashlib.sha256(str(exc).encode()).hexdigest()[:16]


def student_name(raw: str) -> str:
    """A folder name as text that can be stored and printed: bytes that are not UTF-8 (a zip made on Windows)
    become ``\\xNN`` escapes, control characters too."""
    data = os.fsencode(raw)
    text = data.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
                   for ch in text)
    if len(text.encode()) > 200:  # still a valid file name for the feedback folder
        text = text[:150] + "~" + hashlib.sha256(data).hexdigest()[:12]
    return text


def shard_of(student: str, n: int) -> int:
    """The shard (0-based, of ``n``) a student belongs to: the SHA-256 of the recorded name (UTF-8) mod ``n``.

    Stable across runs, machines and Python versions (never Python's salted ``hash``), and it depends on the
    student alone, so adding students never moves existing ones; all of a student's assignments share a shard."""
    digest = hashlib.sha256(student.encode("utf-8", "backslashreplace")).digest()
    return int.from_bytes(digest[:8], "big") % n


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``: shard K of N, 0-based (``0/4`` ... ``3/4``, as Slurm's ``--array=0-3`` and
    Kubernetes' ``JOB_COMPLETION_INDEX`` count); :class:`BatchError` with the reason otherwise."""
    k, sep, n = str(text).strip().partition("/")
    try:
        if not sep:
            raise ValueError
        k_i, n_i = int(k), int(n)
    except ValueError:
        raise BatchError(f"--shard must be K/N (shard K of N, 0-based: 0/4 ... 3/4), got {text!r}") from None
    if n_i < 1:
        raise BatchError(f"--shard {text}: N (the number of shards) must be at least 1")
    if not 0 <= k_i < n_i:
        raise BatchError(f"--shard {text}: K must be 0 ... {n_i - 1} (shards are numbered from 0)")
    return k_i, n_i


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


@dataclass
class BatchSummary:
    out_dir: Path
    graded: int = 0
    reused: int = 0
    failed: list[str] = field(default_factory=list)     # grader failures (nothing stored; rerun to retry)
    warnings: list[str] = field(default_factory=list)
    isolation: str = ""
    table: str = ""
    shard: tuple[int, int] = (0, 1)
    total: int = 0      # submissions this run covered (its shard's share)

    @property
    def ok(self) -> bool:
        """Something was graded or reused; a shard that no student hashes to is fine too (nothing to do)."""
        return (self.graded + self.reused) > 0 or (self.shard[1] > 1 and self.total == 0)


def discover(root: Path, assignment: str | None = None) -> tuple[list[Submission], list[str]]:
    """Submissions under ``root`` (for one assignment, or every known one) and warnings about the layout."""
    known = registry.entries()
    warnings: list[str] = []
    found: list[Submission] = []
    names: dict[str, str] = {}
    for student_dir in sorted(p for p in root.iterdir() if _is_dir(p) and not p.name.startswith(".")):
        student = student_name(student_dir.name)
        if student != student_dir.name:
            warnings.append(f"{student}: the folder name is not printable UTF-8; recorded as {student!r}")
        while student in names and names[student] != student_dir.name:  # two raw names, one printable name
            student += "_"
        names[student] = student_dir.name
        linked = student_dir.is_symlink()  # listed, never graded: its notebooks get their own verdict
        try:
            a_dirs = sorted(p for p in student_dir.iterdir() if _is_dir(p) and not p.name.startswith("."))
        except OSError as exc:
            warnings.append(f"{student}: cannot list the folder ({exc.strerror}), skipped")
            continue
        for a_dir in a_dirs:
            if assignment is not None and a_dir.name != assignment:
                continue
            if a_dir.name not in known:
                if not linked:
                    warnings.append(f"{student}/{student_name(a_dir.name)}: unknown assignment, skipped")
                continue
            nb = a_dir / f"{a_dir.name}.ipynb"
            if not os.path.lexists(nb) and not linked and not a_dir.is_symlink():
                others = sorted(a_dir.glob("*.ipynb"))
                if len(others) == 1:
                    warnings.append(f"{student}/{a_dir.name}: graded {student_name(others[0].name)} "
                                    f"(expected {nb.name})")
                    nb = others[0]
            found.append(Submission(student, a_dir.name, nb, root))
    return found, warnings


def csv_text(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: one starting with ``= + - @`` (or a tab / carriage return)
    would be run as a formula (``=HYPERLINK(...)`` in a student's message), so it gets a leading apostrophe."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(path: Path, rows: Iterable[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**{k: csv_text(v) for k, v in r.items() if k not in ("points", "max_points")},
                        "points": f"{r['points']:g}", "max_points": f"{r['max_points']:g}"})
    tmp.replace(path)


LOCK_NAME = ".grader.lock"


def lock_out(out: Path):
    """Lock ``out`` for this grader (an open file holding an exclusive flock, released when closed or when the
    process dies); :class:`BatchError` when another grader holds it."""
    path = out / LOCK_NAME
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        f.seek(0)
        holder = f.read().strip()[:20]
        f.close()
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
            raise BatchError(f"another grader is writing to {out} (pid {holder or '?'}); wait for it to finish, "
                             "or use another --out") from None
        raise
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _out_error(out: Path, exc: BaseException, done: int = 0) -> BatchError:
    why = getattr(exc, "strerror", None) or str(exc)
    kept = f"; {done} submission(s) were stored, rerun the same command to resume" if done else ""
    return BatchError(f"cannot write to the output folder {out}: {why}{kept}")


def _policy(timeout: float, memory_mb: int, load_timeout: float | None, workers: int | None) -> SandboxPolicy:
    """The batch's sandbox policy from ``grade``'s limits (a clear error naming the flags if one cannot work)."""
    problems = [] if workers is None or workers > 0 else [f"--workers must be a positive number (got {workers!r})"]
    try:
        policy = SandboxPolicy(timeout=timeout, memory_mb=memory_mb, load_timeout=load_timeout)
    except PolicyError as exc:
        problems = [f"--{p.strip().replace('_', '-')}" for p in str(exc).split(";")] + problems
        policy = None
    if problems:
        raise BatchError("; ".join(problems))
    return policy


def grade_folder(submitted: str | Path, out: str | Path, *, assignment: str | None = None,
                 workers: int | None = None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
                 load_timeout: float | None = None, progress: bool = True,
                 shard: str | tuple[int, int] | None = None,
                 log: Callable[[str], None] = print) -> BatchSummary:
    """Grade every submission under ``submitted`` into ``out``; resumable; returns a :class:`BatchSummary`.

    ``shard`` (``"K/N"`` or ``(K, N)``, 0-based) grades only the students :func:`shard_of` puts in shard K of N;
    ``python -m autograder merge`` joins the N outputs. Raises :class:`BatchError` when nothing can be graded
    (missing folder, unknown assignment, no submission, a bad shard)."""
    submitted, out = Path(submitted), Path(out)
    policy = _policy(timeout, memory_mb, load_timeout, workers)
    if shard is None:
        shard = (0, 1)
    elif isinstance(shard, str):
        shard = parse_shard(shard)
    else:
        shard = parse_shard(f"{shard[0]}/{shard[1]}")
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
    if shard[1] > 1:
        subs = [s for s in subs if shard_of(s.student, shard[1]) == shard[0]]
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = lock_out(out)
    except OSError as exc:
        raise _out_error(out, exc) from None
    try:
        return _grade_locked(out, subs, warnings, policy, workers=workers, progress=progress, shard=shard, log=log)
    finally:
        lock.close()


def _grade_locked(out: Path, subs: list[Submission], warnings: list[str], policy: SandboxPolicy, *, workers,
                  progress, shard=(0, 1), log) -> BatchSummary:
    summary = BatchSummary(out, warnings=warnings, shard=shard, total=len(subs))
    keys = {(s.student, s.assignment) for s in subs}
    try:
        store = Store(out / "grades.sqlite")
        store.begin_batch(keys, shard)
    except (OSError, sqlite3.Error) as exc:
        raise _out_error(out, exc) from None
    workers = max(1, workers or os.cpu_count() or 1)
    level = isolation.isolation_level()
    summary.isolation = level
    log(f"isolation: {level} ({isolation.describe(level)})")
    if shard[1] > 1:
        log(f"shard {shard[0]}/{shard[1]}: {len({s.student for s in subs})} student(s), {len(subs)} submission(s)")
    for w in warnings:
        log(f"warning: {w}")
    # The grader compares small tensors from several threads at once: torch's intra-op thread pools (one OpenMP
    # team per grading thread, spinning after each op) cost more CPU than they save. One thread each while grading.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # Python's cyclic garbage collector rescans every tracked object (torch's, matplotlib's... several hundred
    # thousand after the imports) at each full collection, which parsing and judging trigger all the time: the
    # objects alive now are moved out of its view for the batch (gc.freeze; see also _grade_all).
    gc.freeze()
    try:
        t0 = time.monotonic()
        # The grading threads outlive the session: a fork server restarted from one of them is killed when that
        # thread ends (PR_SET_PDEATHSIG follows the thread), and must still be there to report its CPU at close.
        with ThreadPoolExecutor(max_workers=workers) as pool, Session(policy) as session:
            _grade_all(session, store, subs, summary, out, pool, progress, log)
        rows, case_rows = write_outputs(store, out, keys)
        store.finish_batch()
        write_stats(out, summary, workers, time.monotonic() - t0, session)
    except (OSError, sqlite3.Error) as exc:
        raise _out_error(out, exc, summary.graded) from None
    finally:
        torch.set_num_threads(threads)
        gc.unfreeze()
        store.close()
    summary.table = report.summary(rows, case_rows)
    return summary


STATS_NAME = "stats.json"


def write_stats(out: Path, summary: BatchSummary, workers: int, wall_s: float, session: Session) -> dict:
    """``OUT/stats.json``: what this run cost, machine-readable (for ``benchmarks/grading_scale.py``).

    ``cpu_s`` is user + system CPU seconds from ``getrusage`` / ``os.wait4``: ``grader`` this process (its whole
    life so far, every thread), ``fork_server`` the fork servers' own processes, ``workers`` the student worker
    processes (supervisors, workers and the children they reaped), as the fork servers reaped them.
    ``cpu_complete`` is False when a fork server died without reporting (its workers are missing);
    ``fork_servers`` says how each fork server started (``"forked"`` from the command-line grader, or ``"exec"``)."""
    import json
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    stats = {"graded": summary.graded, "reused": summary.reused, "failed": len(summary.failed),
             "workers": workers, "wall_s": round(wall_s, 3),
             "cpu_s": {"grader": round(own.ru_utime + own.ru_stime, 3),
                       **{k: round(v, 3) for k, v in session.cpu_s.items()}},
             "cpu_complete": session.cpu_complete, "fork_servers": session.server_starts}
    tmp = out / (STATS_NAME + ".tmp")
    tmp.write_text(json.dumps(stats, indent=1) + "\n")
    tmp.replace(out / STATS_NAME)
    return stats


def write_outputs(store: Store, out: Path, keys: set[tuple[str, str]]) -> tuple[list[dict], list[dict]]:
    """``grades.csv`` and the class report for ``keys`` from ``store`` (``grade`` and ``merge`` both end here)."""
    rows = store.question_rows(keys)
    case_rows = store.case_rows(keys)
    write_csv(out / "grades.csv", rows)
    report.write(out, rows, case_rows)
    return rows, case_rows


def _grade_all(session: Session, store: Store, subs: list[Submission], summary: BatchSummary, out: Path,
               pool: ThreadPoolExecutor, progress: bool, log: Callable[[str], None]) -> None:
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
    gc.freeze()  # again: the modules the session imported meanwhile (see _grade_locked)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo), unit="nb", desc="grading")
    pending: dict = {}
    try:
        for sub, sha, fp in todo:
            pending[pool.submit(session.grade, sub.path, sub.assignment, sub.root)] = (sub, sha, fp)
        # as_completed waits on every future once (wait() per result would be quadratic in the class size)
        for fut in as_completed(list(pending)):
            sub, sha, fp = pending.pop(fut)
            name = f"{sub.student}/{sub.assignment}"
            try:
                graded = fut.result()
            except Exception as exc:  # noqa: BLE001 - GraderError, or a bug: never lose the rest of the batch
                why = str(exc) if isinstance(exc, GraderError) else f"{type(exc).__name__}: {exc}"
                summary.failed.append(f"{name}: {why}")
                log(f"GRADER FAILURE (not stored; rerun to retry) {name}: {why[:500]}")
            else:
                feedback.write(out, sub.student, sub.assignment, graded.results, graded.prepared.expected_outputs())
                store.save(sub.student, sub.assignment, sha, fp, graded.results,
                           graded.isolation or "none (notebook not run)")
                summary.graded += 1
            if bar is not None:
                bar.update(1)
    finally:
        for fut in pending:  # only after an error: what has not started never starts, what runs finishes here
            fut.cancel()
        wait(pending)
        if bar is not None:
            bar.close()
    if session.isolation_seen:
        summary.isolation = ",".join(sorted(session.isolation_seen))
