"""The main job on the embedded default: release, a synthetic class, the fast grader, the class report.

``python -m autograder demo --out demo_out`` regenerates every release notebook with nbgrader (into
``demo_out/release``, leaving the committed ``assignments/`` alone), builds and leak-checks the student bundle
(``demo_out/student``), writes a synthetic class made from the solutions (``demo_out/submitted``: full marks, one
question wrong, blank, syntax error, exception, wrong shape, infinite loop, ``os._exit`` at load) for every
assignment, grades it (``demo_out/graded``: grades.csv, feedback, report.html) and prints a summary table, with a
last column saying whether each student lost points exactly where their submission was built to.
"""
from __future__ import annotations

import shutil
import time
from collections import defaultdict
from pathlib import Path

from autograder.core import registry
from autograder.grade.batch import grade_folder
from autograder.course.layout import REPO_ROOT, Course
from autograder.course.release import build_student_bundle, generate_assignments
from autograder.course.synthetic import STUDENTS, expected_losses, make_class


def run_demo(out: Path, *, workers: int | None = None, timeout: float = 10.0, root: Path = REPO_ROOT,
             log=print) -> bool:
    """Run the demo into ``out``; True when every synthetic student was graded as designed."""
    t0 = time.perf_counter()
    out = Path(out)
    for sub in ("release", "student", "submitted", "graded"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    course = Course(root)
    entries = registry.entries()
    ids = course.assignment_ids()
    log(f"[1/4] release: generating {len(ids)} student notebook(s) with nbgrader")
    generate_assignments(root, ids, dest=out / "release" / "assignments")
    bundle = build_student_bundle(root, out / "student", assignments_dir=out / "release" / "assignments")
    log(f"      student bundle: {bundle} (leak check passed)")

    log(f"[2/4] synthetic class: {len(STUDENTS)} students x {len(ids)} assignments")
    for aid in ids:
        make_class(entries[aid].assignment, course.source_notebook(aid),
                   out / "release" / "assignments" / aid / f"{aid}.ipynb", out / "submitted")

    log(f"[3/4] grading (per-question timeout {timeout:g} s)")
    summary = grade_folder(out / "submitted", out / "graded", workers=workers, timeout=timeout, log=log)
    log(summary.table)

    log("[4/4] does every student lose points exactly where their submission is broken?")
    lost: dict[tuple[str, str], set[str]] = defaultdict(set)
    import csv
    with open(out / "graded" / "grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            if float(row["points"]) < float(row["max_points"]):
                lost[(row["student"], row["assignment"])].add(row["question"])
    ok = True
    for aid in ids:
        expected = expected_losses(entries[aid].assignment)
        for student, kind in STUDENTS.items():
            got = lost.get((student, aid), set())
            good = got == expected[kind]
            ok &= good
            log(f"  {aid:34s} {student:4s} {kind:15s} lost on {len(got)} question(s) "
                f"{'as designed' if good else 'UNEXPECTED: ' + ', '.join(sorted(got ^ expected[kind]))}")
    log(f"report: {out / 'graded' / 'report.html'}   grades: {out / 'graded' / 'grades.csv'}")
    log(f"demo finished in {time.perf_counter() - t0:.0f} s; {'all as designed' if ok else 'SOME UNEXPECTED'}")
    return ok
