"""The command line: grade, pytest, references, isolation; clear errors on bad input."""
from __future__ import annotations

import csv
import time

import pytest

from tests.fixtures.fixture_assignment import students

A = students.ASSIGNMENT
cli = students.cli


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("submitted")
    students.write_class(root, {"correct": students.VARIANTS["correct"], "blank": students.VARIANTS["blank"],
                                "looper": students.HOSTILE["infinite_loop"], "broken": students.HOSTILE["malformed"]})
    return root


@pytest.mark.slow
def test_grade_command(small_class, tmp_path):
    out = tmp_path / "out"
    t0 = time.monotonic()
    r = cli("grade", str(small_class), "--out", str(out), "--timeout", "2", "--workers", "2", "--no-progress")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "isolation: " in r.stdout and "points lost mostly to" in r.stdout and "graded 4, reused 0" in r.stdout
    with open(out / "grades.csv", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["student", "assignment", "question", "points", "max_points", "verdict", "message"]
        rows = list(reader)
    assert len(rows) == 4 * 5 and [r[0] for r in rows] == sorted(r[0] for r in rows)
    looper = {r[2]: r for r in rows if r[0] == "looper"}
    assert looper["add_one"][5] == "timeout" and "within 2 s" in looper["add_one"][6]  # --timeout honoured
    assert elapsed < 90
    assert (out / "feedback" / "broken" / f"{A}.html").is_file()
    again = cli("grade", str(small_class), "--out", str(out), "--timeout", "2", "--no-progress")
    assert again.returncode == 0 and "graded 0, reused 4" in again.stdout


def main(capsys, *args):
    """The CLI in this process (same code as ``python -m autograder``, without an interpreter start)."""
    from autograder.cli import main as cli_main

    code = cli_main(["--questions", str(students.QUESTIONS), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bad_input_gives_a_clear_message_and_nonzero_exit(tmp_path, capsys):
    code, _, err = main(capsys, "grade", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert code == 1 and "submissions folder not found" in err
    code, _, err = main(capsys, "grade", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 1 and "no submissions" in err
    code, _, err = main(capsys, "grade", str(tmp_path), "--out", str(tmp_path / "out"), "--assignment", "99_nope")
    assert code == 1 and "unknown assignment '99_nope'" in err
    from autograder.cli import main as cli_main

    assert cli_main(["--questions", str(tmp_path / "missing.py"), "list"]) == 2
    assert "cannot load question file" in capsys.readouterr().err


def test_isolation_and_list_commands(capsys):
    code, out, _ = main(capsys, "isolation")
    assert code == 0 and out.split(":")[0] in ("namespace", "process")
    code, out, _ = main(capsys, "list")
    assert code == 0 and "fixture_assignment (9 points" in out and "saliency_like: 3 points" in out


def test_cases_command_writes_every_case_and_the_old_name_still_works(tmp_path, capsys):
    code, _, err = main(capsys, "cases", "--assignment", A, "--out", str(tmp_path))
    assert code == 0, err
    assert len(list(tmp_path.rglob("*.safetensors"))) == 11
    assert len(list((tmp_path / "hidden").rglob("*.safetensors"))) == 6
    code, _, err = main(capsys, "references", "--assignment", "99_nope")
    assert code == 2 and "unknown assignment" in err


@pytest.mark.slow
def test_pytest_command_one_item_per_case(tmp_path):
    good = students.write_submission(tmp_path, "good", students.VARIANTS["correct"])
    r = cli("pytest", str(good), "--assignment", A, "--", "-q")
    assert r.returncode == 0 and "11 passed" in r.stdout, r.stdout + r.stderr
    bad = students.write_submission(tmp_path, "bad", students.VARIANTS["naive_softmax"])
    r = cli("pytest", str(bad), "--assignment", A, "--", "-q")
    assert r.returncode == 1 and "1 failed, 10 passed" in r.stdout
    assert "test_case[softmax_rows-large_logits]" in r.stdout and "non-finite" in r.stdout
