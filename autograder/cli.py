"""Command line: ``python -m autograder <command>``.

Commands: ``references`` (generate case files), ``grade`` (batch-grade a submissions folder, or one shard of it),
``merge`` (join the shards' outputs), ``pytest`` (one notebook, one pytest item per case), ``isolation`` (what
isolation student code gets here), ``list`` (assignments and questions), ``release`` (student notebooks + student
bundle), ``demo`` (the main job on the embedded default).
``--questions FILE`` (any command) adds a question file that is not in ``autograder/questions``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from autograder.core import registry

#: name -> (help, configure): ``configure(parser)`` adds the arguments and returns ``run(args) -> exit code``.
COMMANDS: dict[str, tuple[str, Callable]] = {}
#: Former command names still accepted: old name -> command.
ALIASES = {"references": "cases"}
#: Commands after which the process may skip the interpreter's teardown (see :data:`fast_exit`).
FAST_EXIT_COMMANDS = {"grade", "merge"}


def command(name: str, help: str):
    """Register a subcommand (later commands such as ``release`` or ``demo`` plug in the same way)::

        @command("demo", "build a synthetic class and grade it")
        def _demo(parser):
            parser.add_argument(...)
            def run(args) -> int: ...
            return run
    """
    def wrap(configure):
        COMMANDS[name] = (help, configure)
        return configure
    return wrap


def _positive(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` above zero (``--timeout -1`` would grade everyone "timeout")."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _limits(p: argparse.ArgumentParser) -> None:
    from autograder.grade.policy import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

    p.add_argument("--timeout", type=_positive(float), default=DEFAULT_TIMEOUT,
                   help=f"seconds per question, all its cases together (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--memory-mb", type=_positive(int), default=DEFAULT_MEMORY_MB,
                   help=f"extra memory a question may allocate, in MB (default {DEFAULT_MEMORY_MB})")
    p.add_argument("--load-timeout", type=_positive(float), default=None,
                   help="seconds to load a notebook's code (default: max(30, 2 x timeout))")


@command("cases", "generate the case files from the reference (inputs, tiny-model weights, expected outputs)")
def _cases(p: argparse.ArgumentParser):
    p.add_argument("--assignment", action="append", help="assignment id (repeatable; default: all)")
    p.add_argument("--out", type=Path, help="write under this folder instead of autograder/cases")

    def run(args) -> int:
        from autograder.core import casegen

        entries = registry.entries()
        ids = args.assignment or sorted(entries)
        unknown = [a for a in ids if a not in entries]
        if unknown:
            print(f"error: unknown assignment(s): {', '.join(unknown)}; known: {', '.join(sorted(entries))}",
                  file=sys.stderr)
            return 2
        for path, err in registry.errors().items():
            print(f"warning: question file {path} failed to load: {err}", file=sys.stderr)
        for a in ids:
            print(f"{a}:")
            written = casegen.generate(entries[a], args.out, verbose=True)
            print(f"  {len(written)} case files")
        return 0
    return run


@command("grade", "grade SUBMITTED/<student>/<assignment>/<assignment>.ipynb into OUT (resumable)")
def _grade(p: argparse.ArgumentParser):
    p.add_argument("submitted", type=Path, help="folder with <student>/<assignment>/<assignment>.ipynb")
    p.add_argument("--out", type=Path, required=True, help="output folder (grades.sqlite, grades.csv, feedback/...)")
    p.add_argument("--assignment", help="grade only this assignment (default: every known one found)")
    p.add_argument("--workers", type=_positive(int), default=os.cpu_count() or 1, help="submissions graded at once")
    p.add_argument("--hide", action="append", default=[],
                   help="ignored at the namespace level, where workers see an allow-list only (kept for old scripts)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--shard", metavar="K/N",
                   help="grade only shard K of N (0-based: 0/4 ... 3/4; a student's shard is the SHA-256 of the name "
                        "mod N, stable when students are added); join the N --out folders with `merge`")
    _limits(p)

    def run(args) -> int:
        from autograder.grade.batch import BatchError, grade_folder, parse_shard

        try:
            shard = parse_shard(args.shard) if args.shard is not None else None
            s = grade_folder(args.submitted, args.out, assignment=args.assignment, workers=args.workers,
                             timeout=args.timeout, memory_mb=args.memory_mb, load_timeout=args.load_timeout,
                             progress=not args.no_progress, shard=shard)
        except BatchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print()
        print(s.table)
        print(f"\ngraded {s.graded}, reused {s.reused} (already graded), grader failures {len(s.failed)}; "
              f"isolation: {s.isolation}")
        print(f"wrote {args.out / 'grades.csv'}, {args.out / 'report.html'}, {args.out / 'feedback'}/")
        return 0 if s.ok else 1
    return run


@command("merge", "merge the --out folders of `grade --shard K/N` runs into one (grades.csv, feedback, report)")
def _merge(p: argparse.ArgumentParser):
    p.add_argument("inputs", type=Path, nargs="+", metavar="OUT_K", help="the --out folder of each shard (all N)")
    p.add_argument("--out", type=Path, required=True, help="output folder (a new one, not one of the inputs)")

    def run(args) -> int:
        from autograder.grade.batch import BatchError
        from autograder.grade.merge import merge

        try:
            s = merge(args.inputs, args.out)
        except BatchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for w in s.warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(s.table)
        print(f"\nmerged {s.shards} shard(s): {s.submissions} submission(s) of {s.students} student(s)")
        print(f"wrote {args.out / 'grades.csv'}, {args.out / 'report.html'}, {args.out / 'feedback'}/")
        return 0
    return run


@command("pytest", "check one notebook with pytest (one test item per case)")
def _pytest(p: argparse.ArgumentParser):
    p.add_argument("notebook", type=Path)
    p.add_argument("--assignment", required=True)
    _limits(p)
    p.epilog = "Arguments after -- go to pytest, e.g. -- -q -x"

    def run(args) -> int:
        from autograder.course.pytest_support import run as run_pytest

        return run_pytest(args.notebook, args.assignment, timeout=args.timeout, memory_mb=args.memory_mb,
                          load_timeout=args.load_timeout, questions=args.questions, pytest_args=args.passthrough)
    return run


@command("isolation", "print the isolation student code gets on this machine")
def _isolation(p: argparse.ArgumentParser):
    def run(args) -> int:
        from autograder.grade.isolation import describe, isolation_level

        level = isolation_level()
        print(f"{level}: {describe(level)}")
        return 0
    return run


@command("list", "list assignments and their questions")
def _list(p: argparse.ArgumentParser):
    def run(args) -> int:
        for a, entry in sorted(registry.entries().items()):
            print(f"{a} ({entry.assignment.max_points:g} points; {entry.source})")
            for q in entry.assignment.questions:
                pub = sum(c.public for c in q.cases)
                unit = "point" if q.points == 1 else "points"
                calls = f"; calls {', '.join(q.calls)}" if q.calls else ""
                print(f"  {q.id}: {q.points:g} {unit}, {pub} public + {len(q.cases) - pub} hidden cases{calls}")
                if q.description:
                    print(f"      {q.description}")
        for path, err in registry.errors().items():
            print(f"failed to load {path}: {err}")
        return 0
    return run


@command("release", "regenerate assignments/ from solutions/ with nbgrader and build dist/student (leak-checked)")
def _release(p: argparse.ArgumentParser):
    p.add_argument("--assignment", action="append", help="assignment id (repeatable; default: all)")
    p.add_argument("--bundle", type=Path, help="student bundle folder (default: dist/student)")

    def run(args) -> int:
        from autograder.course.nbgrader_api import NbgraderError
        from autograder.course.layout import COURSE
        from autograder.course.release import LeakError, build_student_bundle, generate_assignments

        known = COURSE.notebook_ids()
        unknown = [a for a in args.assignment or [] if a not in known]
        if unknown:
            print(f"error: no solutions/<id>/<id>.ipynb for {', '.join(unknown)}; known: {', '.join(known)}",
                  file=sys.stderr)
            return 2
        try:
            for path in generate_assignments(ids=args.assignment):
                print(f"released {path}")
            bundle = build_student_bundle(dest=args.bundle)
        except (NbgraderError, LeakError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"student bundle: {bundle} (leak check passed)")
        return 0
    return run


@command("demo", "the main job: release, a synthetic class for every assignment, grading, class report")
def _demo(p: argparse.ArgumentParser):
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    p.add_argument("--workers", type=_positive(int), default=os.cpu_count() or 1, help="submissions graded at once")
    p.add_argument("--timeout", type=_positive(float), default=10.0, help="seconds per question (default 10)")

    def run(args) -> int:
        from autograder.course.demo import run_demo

        return 0 if run_demo(args.out, workers=args.workers, timeout=args.timeout) else 1
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="The course's grading engine and tools. Each command has its own --help.",
        epilog="Examples: python -m autograder demo --out demo_out | python -m autograder grade submitted/ --out "
               "graded/ | python -m autograder list")
    parser.add_argument("--questions", action="append", default=[], metavar="FILE",
                        help="an extra question file (defines ASSIGNMENT); repeatable")
    sub = parser.add_subparsers(dest="command", required=True)
    aliases = {new: [old for old, n in ALIASES.items() if n == new] for new in COMMANDS}
    for name, (help_text, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, aliases=aliases[name])
        p.set_defaults(run=configure(p))
    return parser


#: Set by :func:`main` when the command that ran asks the process to end without the interpreter's teardown
#: (``python -m autograder`` then calls ``os._exit``): batch commands that close everything they open.
fast_exit = False


def main(argv: list[str] | None = None) -> int:
    global fast_exit
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = build_parser().parse_args(argv)
    args.passthrough = passthrough
    for path in args.questions:
        try:
            registry.register(path)
        except Exception as exc:  # noqa: BLE001
            print(f"error: cannot load question file {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    code = int(args.run(args) or 0)
    fast_exit = args.command in FAST_EXIT_COMMANDS
    return code
