"""Batch grading at scale: throughput per worker count and the CPU the grader's own processes use (issue #14).

    python benchmarks/grading_scale.py [--students 34] [--workers-list 1,2] [--assignments 01_...,06_...]
                                       [--with-timeouts] [--engine before=/path/to/checkout ...] [--pause 25]

Builds a synthetic class from the demo's builders (:mod:`autograder.course.synthetic`: full marks, one question wrong,
blank, syntax error, exception, wrong shape, ``os._exit`` at load; the infinite-loop student only with
``--with-timeouts``, since a submission that waits out its time limit measures the limit, not throughput):
``--students`` students per assignment, the kinds repeated under new names, from the committed release notebooks
(``assignments/``) with the solutions pasted in. Then it grades the whole class once per worker count (1, 2, 4, ...
up to the cores present by default), each run into a fresh output folder, with ``python -m autograder grade`` as a
subprocess, and prints per run:

* wall seconds, submissions per second and the speed-up over the run with the fewest workers;
* CPU seconds (user + system) of the whole grading tree: the ``RUSAGE_CHILDREN`` delta of this process around the
  run. It covers a process only once its parent has reaped it with ``wait``, so the run's ``stats.json`` is used to
  check the tree is complete: the grader reports its own CPU (``RUSAGE_SELF``), each fork server its own and the
  CPU of every student worker process it reaped (``os.wait4``); ``unaccounted`` is what the total holds beyond
  those parts (should be ~0; a large negative value means processes escaped the accounts);
* the CPU of the student workers, and the grader's own: everything that is not a student worker (the grader
  process and the fork server), per submission and as a share of the total.

It also checks that ``grades.csv`` is byte-identical across all runs. ``--engine LABEL=DIR`` (repeatable) grades
with the engine checked out in DIR instead of this one (e.g. ``git worktree add /tmp/before <commit>``), runs
interleaved per worker count, so figures of two engine versions can be compared side by side on a loaded machine.

``--pause SECONDS`` waits before every run. A run that starts right after another is cheaper for the fork server:
it finds huge pages the last run just freed, while on an idle machine (and in a VM that hands free memory back to
its host) each huge page it collapses its memory into is fresh, ~0.5 s more per batch. An instructor's one run is
the idle case; with ``--pause 25`` every run is.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autograder.core import registry  # noqa: E402
from autograder.course.layout import COURSE  # noqa: E402
from autograder.course.synthetic import STUDENTS, make_class  # noqa: E402

#: The demo's student kinds that finish quickly; ``infinite_loop`` waits out the time limit.
FAST_KINDS = [k for k in STUDENTS.values() if k != "infinite_loop"]


def build_class(dest: Path, assignments: list[str], students: int, with_timeouts: bool = False) -> int:
    """Write ``students`` synthetic students per assignment under ``dest``; returns the number of submissions.

    Student ``i`` is ``s{i:03d}_{kind}`` with kind ``i mod len(kinds)`` (the demo's kinds, in its order)."""
    kinds = list(STUDENTS.values()) if with_timeouts else FAST_KINDS
    entries = registry.entries()
    roster = {f"s{i:03d}_{kinds[i % len(kinds)]}": kinds[i % len(kinds)] for i in range(students)}
    for aid in assignments:
        make_class(entries[aid].assignment, COURSE.source_notebook(aid), COURSE.release_notebook(aid), dest, roster)
    return students * len(assignments)


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def grade_once(engine: Path, submitted: Path, out: Path, workers: int, timeout: float) -> dict:
    """Grade ``submitted`` into a fresh ``out`` with ``workers`` workers; wall and CPU figures of the run."""
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": str(engine)}
    cmd = [sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(out), "--workers",
           str(workers), "--timeout", f"{timeout:g}", "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=engine, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    total = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(before)
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    stats_path = out / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    cpu = stats.get("cpu_s", {})
    parts = sum(cpu.values()) if cpu else None
    return {"wall": wall, "total": total, "workers_cpu": cpu.get("workers"), "grader_cpu": cpu.get("grader"),
            "server_cpu": cpu.get("fork_server"), "unaccounted": None if parts is None else total - parts,
            "complete": stats.get("cpu_complete", False), "graded": stats.get("graded"),
            "csv": hashlib.sha256((out / "grades.csv").read_bytes()).hexdigest()}


def _workers_list(text: str | None) -> list[int]:
    if text:
        return [int(w) for w in text.split(",")]
    cores, w, out = os.cpu_count() or 1, 1, []
    while w < cores:
        out.append(w)
        w *= 2
    return out + [cores]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=34, help="students per assignment (default 34: 204 "
                        "submissions over the 6 assignments)")
    parser.add_argument("--workers-list", help="comma-separated worker counts (default 1, 2, 4, ... up to the cores)")
    parser.add_argument("--assignments", help="comma-separated assignment ids (default: all)")
    parser.add_argument("--with-timeouts", action="store_true", help="include the infinite-loop student")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per question (default 10)")
    parser.add_argument("--engine", action="append", default=[], metavar="LABEL=DIR",
                        help="grade with the engine in DIR (repeatable; default: this checkout)")
    parser.add_argument("--keep", type=Path, help="build and grade under this folder and keep it")
    parser.add_argument("--pause", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long before every run (runs on an idle machine; default 0)")
    args = parser.parse_args()

    entries = registry.entries()
    ids = args.assignments.split(",") if args.assignments else COURSE.assignment_ids()
    unknown = [a for a in ids if a not in entries]
    if unknown:
        raise SystemExit(f"unknown assignment(s): {', '.join(unknown)}")
    engines = [(label, Path(d).resolve()) for label, _, d in (e.partition("=") for e in args.engine)] or \
        [("this", ROOT)]
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="grading-scale-"))
    submitted = tmp / "submitted"
    if submitted.exists():
        shutil.rmtree(submitted)
    n = build_class(submitted, ids, args.students, args.with_timeouts)
    workers_list = _workers_list(args.workers_list)
    print(f"{n} submissions ({args.students} students x {len(ids)} assignments"
          f"{', with' if args.with_timeouts else ', no'} infinite loops), {os.cpu_count()} cores, "
          f"workers {workers_list}, engines: {', '.join(f'{l}={d}' for l, d in engines)}"
          f"{f', {args.pause:g} s pause before each run' if args.pause else ''}")
    print("CPU = user + system seconds (getrusage / os.wait4); grader own = total - student workers "
          "(the grader process + the fork server)\n")
    head = (f"{'engine':8s} {'workers':>7s} {'wall s':>7s} {'subm/s':>7s} {'speed-up':>8s} {'CPU total':>9s} "
            f"{'workers':>8s} {'grader':>7s} {'server':>7s} {'own/subm':>9s} {'own %':>6s} {'unacc.':>7s}")
    print(head)
    runs: list[dict[str, dict]] = []  # per entry of --workers-list (which may repeat a count): engine -> figures
    try:
        for w in workers_list:
            runs.append({})
            for label, engine in engines:
                time.sleep(args.pause)
                r = grade_once(engine, submitted, tmp / f"out_{label}_w{w}", w, args.timeout)
                runs[-1][label] = r
                base = runs[0][label]
                own = r["total"] - r["workers_cpu"] if r["workers_cpu"] is not None else float("nan")
                fmt = lambda v, width, d=1: f"{v:{width}.{d}f}" if v is not None else f"{'-':>{width}s}"  # noqa
                print(f"{label:8s} {w:7d} {r['wall']:7.1f} {n / r['wall']:7.2f} {base['wall'] / r['wall']:7.2f}x "
                      f"{r['total']:9.1f} {fmt(r['workers_cpu'], 8)} {fmt(r['grader_cpu'], 7)} "
                      f"{fmt(r['server_cpu'], 7)} {own / n:9.3f} {100 * own / r['total']:5.1f}% "
                      f"{fmt(r['unaccounted'], 7)}{'' if r['complete'] else '  (incomplete: no stats)'}",
                      flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    done = [r for run in runs for r in run.values()]
    digests = {r["csv"] for r in done}
    print(f"\ngrades.csv identical across all {len(done)} runs: {'yes' if len(digests) == 1 else 'NO'} "
          f"(sha256 {', '.join(sorted(d[:16] for d in digests))})")
    if len(engines) > 1:
        print("\nratios per worker count (first engine / each other engine):")
        first = engines[0][0]
        for i, w in enumerate(workers_list[:len(runs)]):
            a = runs[i][first]
            for label, _ in engines[1:]:
                b = runs[i][label]
                own_a, own_b = a["total"] - (a["workers_cpu"] or 0), b["total"] - (b["workers_cpu"] or 0)
                print(f"  workers {w}: wall {a['wall'] / b['wall']:.2f}x, grader-own CPU "
                      f"{own_a / max(own_b, 1e-9):.2f}x ({first} {own_a:.1f} s vs {label} {own_b:.1f} s)")


if __name__ == "__main__":
    main()
