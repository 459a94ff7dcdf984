"""Fast grader vs ``nbgrader autograde`` on the same synthetic class, side by side in one run.

Usage: python benchmarks/grading_vs_nbgrader.py [--assignment ID ...] [--workers N]

For each assignment: the demo class (8 students) is graded by nbgrader autograde (the project's nbgrader
configuration: one kernel per submission, demo cells skipped) and by the fast grader (`--workers` sandboxed
submissions at once). Prints per-question agreement and the wall-time ratio.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from autograder import registry
from autograder.crosscheck import compare
from autograder.release import assignment_ids


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assignment", action="append", help="default: every assignment with a question file")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    ids = args.assignment or [a for a in assignment_ids() if a in registry.entries()]
    total_nb = total_fast = 0.0
    agree = cells = 0
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        for aid in ids:
            r = compare(Path(tmp) / aid, aid, workers=args.workers, log=lambda *_: None)
            n = sum(len(v) for v in r.fast.values())
            bad = r.disagreements()
            agree += n - len(bad)
            cells += n
            total_nb += r.nbgrader_seconds
            total_fast += r.fast_seconds
            print(f"{aid:34s} students {len(r.fast)}  question scores agreeing {n - len(bad)}/{n}  "
                  f"nbgrader {r.nbgrader_seconds:6.1f} s  fast {r.fast_seconds:5.1f} s  "
                  f"ratio {r.nbgrader_seconds / r.fast_seconds:5.1f}x")
            for line in bad:
                print("   DISAGREE", line)
            for student, why in r.nbgrader_failed.items():
                print(f"   nbgrader could not autograde {student} (counted as 0): {why}")
    print(f"{'ALL':34s} question scores agreeing {agree}/{cells}  nbgrader {total_nb:.1f} s  fast {total_fast:.1f} s"
          f"  ratio {total_nb / total_fast:.1f}x  (workers={args.workers})")


if __name__ == "__main__":
    main()
