"""Fast grader vs ``nbgrader autograde`` on the same synthetic class, side by side in one run.

Usage: python benchmarks/grading_vs_nbgrader.py [--assignment ID ...] [--workers N] [--timeout S] [--cell-timeout S]

For each assignment the demo class (8 students: full marks, one wrong, blank, syntax error, exception, wrong shape,
infinite loop, os._exit at load) is graded by nbgrader autograde (the project's nbgrader configuration: one kernel
per submission, cells tagged "demo" skipped) and by the fast grader (``--workers`` sandboxed submissions at once).
Prints per-question score agreement and wall-time ratios: per assignment (one ``grade`` run each), for the class
without the infinite-loop student (whose cost is simply the time limit each grader is given: ``--timeout`` per
question for the fast grader, ``--cell-timeout`` per cell for nbgrader, whose setup cell alone needs several
seconds), and for the whole class graded by ONE ``grade`` run over every assignment (as the demo does), against
``nbgrader autograde`` run for every student and assignment.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from autograder.core import registry
from autograder.course.crosscheck import compare, fast_grade
from autograder.course.layout import assignment_ids
from autograder.course.synthetic import STUDENTS

LOOPING_STUDENT = "gus"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assignment", action="append", help="default: every assignment with a question file")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0, help="fast grader: seconds per question")
    p.add_argument("--cell-timeout", type=int, default=30, help="nbgrader: seconds per cell")
    args = p.parse_args()
    ids = args.assignment or assignment_ids()
    tot = {"nb": 0.0, "fast": 0.0, "nb_noloop": 0.0, "fast_noloop": 0.0}
    agree = cells = 0
    print(f"fast grader: {args.workers} workers, {args.timeout:g} s per question; "
          f"nbgrader: sequential, {args.cell_timeout} s per cell")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        everything = Path(tmp) / "all_submitted"
        for aid in ids:
            course = Path(tmp) / aid
            r = compare(course, aid, workers=args.workers, timeout=args.timeout, cell_timeout=args.cell_timeout,
                        log=lambda *_: None)
            shutil.copytree(course / "submitted", everything, dirs_exist_ok=True)
            noloop = course / "submitted_without_loop"
            shutil.copytree(course / "submitted", noloop)
            shutil.rmtree(noloop / LOOPING_STUDENT)
            fast_noloop = fast_grade(noloop, course / "fast_noloop", aid, workers=args.workers, timeout=args.timeout)
            nb_noloop = r.nbgrader_seconds - r.nbgrader_student_seconds.get(LOOPING_STUDENT, 0.0)
            n = sum(len(v) for v in r.fast.values())
            bad = r.disagreements()
            agree += n - len(bad)
            cells += n
            for k, v in (("nb", r.nbgrader_seconds), ("fast", r.fast_seconds), ("nb_noloop", nb_noloop),
                         ("fast_noloop", fast_noloop)):
                tot[k] += v
            print(f"{aid:34s} scores agreeing {n - len(bad):3d}/{n:<3d} | whole class: nbgrader "
                  f"{r.nbgrader_seconds:6.1f} s, fast {r.fast_seconds:5.1f} s, {r.nbgrader_seconds / r.fast_seconds:5.1f}x"
                  f" | without {LOOPING_STUDENT}: nbgrader {nb_noloop:6.1f} s, fast {fast_noloop:5.1f} s, "
                  f"{nb_noloop / fast_noloop:5.1f}x")
            for line in bad:
                print("   DISAGREE", line)
            for student, why in r.nbgrader_failed.items():
                print(f"   nbgrader could not autograde {student} (counted as 0 everywhere): {why}")
        one_batch = fast_grade(everything, Path(tmp) / "all_graded", None, workers=args.workers,
                               timeout=args.timeout)
    print(f"{'ALL, one grade run per assignment':34s} scores agreeing {agree}/{cells} | whole class: "
          f"{tot['nb']:.1f} s vs {tot['fast']:.1f} s, {tot['nb'] / tot['fast']:.1f}x | without {LOOPING_STUDENT}: "
          f"{tot['nb_noloop']:.1f} s vs {tot['fast_noloop']:.1f} s, {tot['nb_noloop'] / tot['fast_noloop']:.1f}x")
    print(f"{'ALL, one grade run for the class':34s} {len(ids) * len(STUDENTS)} submissions | nbgrader "
          f"{tot['nb']:.1f} s vs fast {one_batch:.1f} s, {tot['nb'] / one_batch:.1f}x")


if __name__ == "__main__":
    main()
