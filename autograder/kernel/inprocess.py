"""Running a graded function's cases in the current process: the self-check and nbgrader's hidden tests.

The student's function runs here (a notebook kernel), with warnings silenced and stderr sent to /dev/null (nbgrader
zeroes a grade cell that wrote to stderr) and, on the main thread, a time limit per question. Verdicts and points
go through the same pipeline as the fast grader's (:mod:`autograder.core.pipeline`).
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import signal
import sys
import threading
import time
import warnings
from typing import Callable, Iterator

from autograder.core import calls, casefile, pipeline, registry
from autograder.core import verdicts as V
from autograder.core.scoring import case_points
from autograder.core.spec import Question
from autograder.grade.policy import DEFAULT_TIMEOUT


@contextlib.contextmanager
def quiet(stdout: bool = True) -> Iterator[None]:
    """Silence warnings and stderr (and stdout unless ``stdout=False``), at the Python and the fd level."""
    streams = [(2, "stderr")] + ([(1, "stdout")] if stdout else [])
    saved = []
    for fd, name in streams:
        getattr(sys, name).flush() if getattr(sys, name, None) else None
        try:
            copy = os.dup(fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:
            copy = None
        saved.append((fd, name, copy, getattr(sys, name)))
        setattr(sys, name, io.StringIO())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for fd, name, copy, stream in reversed(saved):
            setattr(sys, name, stream)
            if copy is not None:
                os.dup2(copy, fd)
                os.close(copy)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`~autograder.core.calls.CaseTimeout` after ``seconds`` (main thread on Unix only; else no limit)."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise calls.CaseTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def find_function(name: str, fn: Callable | None = None, depth: int = 2) -> Callable | None:
    """``fn``, else ``name`` in the caller's globals (``depth`` frames up), else in ``__main__``."""
    if fn is not None:
        return fn
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
        if frame is not None and name in frame.f_globals:
            return frame.f_globals[name]
    finally:
        del frame
    main = sys.modules.get("__main__")
    return getattr(main, name, None)


def run_cases(fn: Callable, entry: registry.Entry, question: Question, *, public_only: bool,
              timeout: float | None = DEFAULT_TIMEOUT, silence_stdout: bool = True) -> list[V.CaseResult]:
    """Run ``fn`` on the question's cases (public only, or public + hidden) in this process."""
    results = []
    deadline = None if not timeout else time.monotonic() + timeout
    for case in question.cases:
        if public_only and not case.public:
            continue
        try:
            cf = casefile.read(entry.case_path(question, case))
        except Exception as exc:  # noqa: BLE001 - a missing/stale file must not crash a notebook cell
            results.append(V.CaseResult(question.id, case.name, case.public, V.ERROR,
                                        f"internal grading error (tell your instructor): {exc}", 0.0,
                                        case_points(question, case.name)))
            continue
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            status, outputs = {"status": calls.TIMEOUT}, None
        else:
            try:
                with quiet(stdout=silence_stdout), time_limit(left):
                    status, outputs = pipeline.call_case(fn, question, cf)
            except calls.CaseTimeout:  # the alarm fired outside the student's call
                status, outputs = {"status": calls.TIMEOUT}, None
        results.append(pipeline.judge_case(question, case, status, outputs, cf, timeout=timeout))
    return results
