"""The in-process paths: the student's ``check`` and nbgrader's ``score``."""
from __future__ import annotations

import sys
import warnings

import pytest
import torch

from autograder.core import casefile, registry
from autograder import check
from autograder.kernel.nbgrader_hook import score
from autograder.kernel.selfcheck import SelfCheckFailed
from tests.fixtures.fixture_assignment import students

registry.register(students.QUESTIONS)

ns: dict = {"torch": torch}
for _src in students.CORRECT.values():
    exec(_src, ns)  # noqa: S102 - the fixture's solution functions


def test_check_prints_public_cases_and_returns_none(capsys):
    assert check("softmax_rows", ns["softmax_rows"]) is None
    out = capsys.readouterr().out
    assert "softmax_rows: 1/1 public case passed" in out
    assert "rows4" in out and "passed" in out
    assert "wide" not in out and "large_logits" not in out  # hidden cases are not run


def test_check_finds_the_function_in_the_callers_globals(capsys):
    global add_one

    def add_one(x):  # noqa: F811 - a wrong answer, defined where a notebook would define it
        return x + 2

    with pytest.raises(SelfCheckFailed, match="passes 0 of 1 public cases"):
        check("add_one")
    out = capsys.readouterr().out
    assert "0/1 public case passed" in out and "wrong values" in out and "max abs error 1" in out
    check("add_one", strict=False)                  # as autograde runs it: the table, no error
    del add_one


def test_check_never_reads_hidden_files(monkeypatch, capsys):
    seen = []
    real = casefile.read
    monkeypatch.setattr(casefile, "read", lambda p: seen.append(str(p)) or real(p))
    for q in students.CORRECT:
        check(q, ns[q])
    assert seen and all("/public/" in p for p in seen)


def test_check_explains_then_fails_the_cell(capsys):
    """The explanation is printed; the cell then fails (so nbgrader's Validate lists it), unless strict=False."""
    check("no_such_question")
    with pytest.raises(SelfCheckFailed, match="not defined yet"):
        check("orthogonal_rows")  # not defined in this module's globals
    with pytest.raises(SelfCheckFailed, match="not a function"):
        check("add_one", 42)
    check("add_one", 42, strict=False)
    out = capsys.readouterr().out
    assert "no graded function named 'no_such_question'" in out
    assert "`orthogonal_rows` is not defined yet" in out
    assert "is a int, not a function" in out


def test_score_full_partial_zero():
    assert [score(q, ns[q]) for q in students.CORRECT] == [1.0, 2.0, 3.0, 1.0, 2.0]

    def naive(x):
        e = x.exp()
        return e / e.sum(dim=1, keepdim=True)

    assert score("softmax_rows", naive) == 1.0  # 2 of 3 cases, weights 1, 1, 2 (large logits lost)
    assert score("softmax_rows", lambda x: x[:4]) == 0.0
    assert score("add_one") == 0.0  # not defined anywhere
    assert score("no_such_question") == 0.0


def test_score_is_silent_on_stderr_and_never_raises(capfd):
    def noisy(x):
        warnings.warn("deprecated!")
        print("debug", file=sys.stderr)
        print("chatter")
        return x + 1

    def exiting(x):
        sys.exit(3)

    assert score("add_one", noisy) == 1.0
    assert score("add_one", exiting) == 0.0
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_in_process_time_limit():
    from autograder.kernel import inprocess

    def slow(x):
        while True:
            pass

    entry, question = registry.find_question("add_one")
    results = inprocess.run_cases(slow, entry, question, public_only=False, timeout=0.5)
    assert [r.verdict for r in results] == ["timeout", "timeout"]


@pytest.mark.parametrize("q", list(students.CORRECT))
def test_score_agrees_with_question_points(q):
    from autograder.kernel.nbgrader_hook import results
    from autograder.core.scoring import question_points

    _, question, found = results(q, ns[q])
    assert score(q, ns[q]) == question_points(question, [r.case for r in found if r.passed]) == question.points
