"""Grading beyond one machine: ``grade --shard K/N`` grades a stable share of the students and ``merge`` joins the
N outputs into exactly what one unsharded run writes (grades.csv, report, feedback, store). A shard killed
mid-run is refused by ``merge`` until rerun, and the rerun resumes and loses nothing."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from autograder import cli
from autograder.core import registry
from autograder.grade.batch import BatchError, grade_folder, parse_shard, shard_of
from autograder.grade.merge import merge
from autograder.grade.store import Store
from autograder.core.verdicts import CaseResult, Result
from tests.fixtures.fixture_assignment import students

A = students.ASSIGNMENT
N = 3
#: every notebook takes >= 0.3 s to load, so a kill surely lands mid-shard (grades are unchanged by it)
SLOW_LOAD = ["class _Slow:\n    import time\n    time.sleep(0.3)\n"]
NAMES = list(students.VARIANTS)  # 12 students: 1, 4 and 7 of them in shards 0, 1 and 2 of 3


def _quiet(_: str) -> None:
    pass


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One class graded unsharded, and as 3 shards (in this process) merged with the CLI."""
    registry.register(students.QUESTIONS)
    tmp = tmp_path_factory.mktemp("shards")
    submitted = tmp / "submitted"
    students.write_class(submitted, {n: {**students.VARIANTS[n], "cells": SLOW_LOAD} for n in NAMES})
    whole = tmp / "whole"
    grade_folder(submitted, whole, workers=2, timeout=10, progress=False, log=_quiet)
    shards = [tmp / f"shard{k}" for k in range(N)]
    summaries = [grade_folder(submitted, shards[k], workers=2, timeout=10, progress=False, shard=f"{k}/{N}",
                              log=_quiet) for k in range(N)]
    merged = tmp / "merged"
    assert cli.main(["merge", *map(str, shards), "--out", str(merged)]) == 0
    return submitted, whole, shards, summaries, merged


def test_three_shards_merged_are_byte_identical_to_one_run(graded):
    submitted, whole, shards, summaries, merged = graded
    assert (merged / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()
    assert (merged / "report.html").read_bytes() == (whole / "report.html").read_bytes()
    whole_feedback, merged_feedback = _files(whole / "feedback"), _files(merged / "feedback")
    assert merged_feedback == whole_feedback and len(whole_feedback) >= len(NAMES)
    # the shards split the class: disjoint, every student once, each shard's grades.csv only its own students
    per_shard = [{line.split(",")[0] for line in (s / "grades.csv").read_text().splitlines()[1:]} for s in shards]
    assert all(per_shard) and sum(map(len, per_shard)) == len(NAMES) and set().union(*per_shard) == set(NAMES)
    assert [s.total for s in summaries] == [len(p) for p in per_shard]
    for k, names in enumerate(per_shard):
        assert all(shard_of(n, N) == k for n in names)
    # the merged store holds what the unsharded store holds (graded_at aside)
    def content(folder):
        db = sqlite3.connect(folder / "grades.sqlite")
        try:
            return (db.execute("SELECT student, assignment, notebook_sha256, fingerprint, points, max_points "
                               "FROM submissions ORDER BY 1, 2").fetchall(),
                    db.execute("SELECT * FROM questions ORDER BY 1, 2, 4").fetchall(),
                    db.execute("SELECT * FROM cases ORDER BY 1, 2, 3, 5").fetchall())
        finally:
            db.close()
    assert content(merged) == content(whole)


def test_shard_is_a_stable_hash_of_the_name():
    names = [*NAMES, "Zoë", "o'brien", "\\xff-escaped", "x" * 200]
    for n in (1, 2, 3, 4, 7, 64):
        for name in names:  # SHA-256 of the UTF-8 name, never Python's salted hash(): the same on every machine
            digest = hashlib.sha256(name.encode("utf-8")).digest()
            assert shard_of(name, n) == int.from_bytes(digest[:8], "big") % n
    before = {name: shard_of(name, 4) for name in names}
    added = [f"new_student_{i}" for i in range(200)]
    assert {name: shard_of(name, 4) for name in [*names, *added]} | before == \
        {name: shard_of(name, 4) for name in [*names, *added]}  # adding students never moves existing ones
    assert {shard_of(name, 4) for name in added} == {0, 1, 2, 3}  # and the shares are spread


def test_adding_a_student_keeps_every_shard_and_the_merge_exact(graded, tmp_path):
    submitted, whole, shards, _, _ = graded
    bigger = tmp_path / "submitted"
    shutil.copytree(submitted, bigger)
    students.write_submission(bigger, "late_joiner", students.VARIANTS["wrong_values"])
    k_new = shard_of("late_joiner", N)
    outs = []
    for k in range(N):
        out = tmp_path / f"shard{k}"
        shutil.copytree(shards[k], out)  # the old outputs: graded work is reused, only the newcomer is graded
        s = grade_folder(bigger, out, workers=2, timeout=10, progress=False, shard=(k, N), log=_quiet)
        assert (s.graded, s.reused) == ((1, s.total - 1) if k == k_new else (0, s.total))
        outs.append(out)
    merged = tmp_path / "merged"
    merge(outs, merged)
    once = tmp_path / "whole"
    shutil.copytree(whole, once)
    grade_folder(bigger, once, workers=2, timeout=10, progress=False, log=_quiet)
    assert (merged / "grades.csv").read_bytes() == (once / "grades.csv").read_bytes()
    assert "late_joiner,fixture_assignment,add_one,0,1,wrong values" in (merged / "grades.csv").read_text()


@pytest.mark.slow
def test_a_shard_killed_and_rerun_loses_nothing(graded, tmp_path):
    submitted, whole, shards, summaries, _ = graded
    k = max(range(N), key=lambda i: summaries[i].total)  # the biggest shard (7 students)
    total = summaries[k].total
    out = tmp_path / f"shard{k}"
    # its own process: the hash must agree across processes
    proc = students.start_grader(submitted, out, "--shard", f"{k}/{N}")
    deadline = time.monotonic() + 240
    while len(students.graded_at(out / "grades.sqlite")) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the grader made no progress"
        time.sleep(0.05)
    proc.kill()  # SIGKILL, mid-shard
    proc.communicate()
    before = students.graded_at(out / "grades.sqlite")
    assert 2 <= len(before) < total, "kill the shard before it finishes"

    inputs = [out if i == k else shards[i] for i in range(N)]
    with pytest.raises(BatchError, match=f"shard {k}/{N} did not finish .* rerun the same grade command"):
        merge(inputs, tmp_path / "early")

    proc = students.start_grader(submitted, out, "--shard", f"{k}/{N}")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"resuming: {len(before)} submission(s) already graded" in stdout
    assert f"graded {total - len(before)}, reused {len(before)}" in stdout
    after = students.graded_at(out / "grades.sqlite")
    assert len(after) == total and all(after[s] == t for s, t in before.items()), "finished work was regraded"
    assert (out / "grades.csv").read_bytes() == (shards[k] / "grades.csv").read_bytes()

    merged = tmp_path / "merged"
    merge(inputs, merged)
    assert (merged / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()
    assert _files(merged / "feedback") == _files(whole / "feedback")


@pytest.mark.parametrize("text, why", [
    ("3/3", "K must be 0 ... 2"), ("-1/3", "K must be 0 ... 2"), ("5/3", "K must be 0 ... 2"),
    ("0/0", "at least 1"), ("0/-2", "at least 1"), ("1", "must be K/N"), ("a/b", "must be K/N"),
    ("1/3/4", "must be K/N"), ("", "must be K/N"), ("1.0/3", "must be K/N")])
def test_bad_shard_is_refused_clearly(text, why):
    with pytest.raises(BatchError, match=why):
        parse_shard(text)


def test_good_shards_parse():
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4) and parse_shard(" 0/1 ") == (0, 1)


def test_bad_shard_on_the_command_line(graded, tmp_path, capsys):
    submitted = graded[0]
    assert cli.main(["grade", str(submitted), "--out", str(tmp_path / "o"), "--shard", "4/4", "--no-progress"]) == 1
    assert "error: --shard 4/4: K must be 0 ... 3 (shards are numbered from 0)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_an_empty_shard_succeeds_and_merges(tmp_path):
    registry.register(students.QUESTIONS)
    submitted = tmp_path / "submitted"
    students.write_class(submitted, {"correct": students.VARIANTS["correct"]})
    n = 5
    outs = []
    for k in range(n):
        out = tmp_path / f"s{k}"
        s = grade_folder(submitted, out, workers=1, timeout=10, progress=False, shard=(k, n), log=_quiet)
        assert s.ok and s.total == (1 if k == shard_of("correct", n) else 0)
        outs.append(out)
    merge(outs, tmp_path / "merged")
    lines = (tmp_path / "merged" / "grades.csv").read_text().splitlines()
    assert len(lines) == 1 + 5 and all(line.startswith("correct,") for line in lines[1:])


def _copy_shards(shards, tmp_path):
    copies = [tmp_path / f"c{k}" for k in range(len(shards))]
    for src, dst in zip(shards, copies):
        shutil.copytree(src, dst)
    return copies


def test_merge_refuses_bad_inputs(graded, tmp_path):
    _, whole, shards, _, merged = graded
    with pytest.raises(BatchError, match="no such folder"):
        merge([*shards[:2], tmp_path / "nowhere"], tmp_path / "m1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no grades.sqlite"):
        merge([*shards[:2], tmp_path / "empty"], tmp_path / "m2")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "grades.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(BatchError, match="corrupt or not a grades store"):
        merge([*shards[:2], corrupt], tmp_path / "m3")
    with pytest.raises(BatchError, match="is one of the inputs"):
        merge(shards, shards[1])
    with pytest.raises(BatchError, match="is given twice"):
        merge([*shards, shards[0]], tmp_path / "m4")
    copy0 = tmp_path / "copy0"
    shutil.copytree(shards[0], copy0)
    with pytest.raises(BatchError, match=f"shard 0/{N} given twice"):
        merge([*shards, copy0], tmp_path / "m5")
    with pytest.raises(BatchError, match=f"missing shard\\(s\\) 2/{N} of {N}"):
        merge(shards[:2], tmp_path / "m6")
    with pytest.raises(BatchError, match="different splits"):
        merge([*shards, whole], tmp_path / "m7")
    assert not any((tmp_path / f"m{i}").exists() for i in range(1, 8))  # nothing written on a refusal
    assert cli.main(["merge", str(shards[0]), "--out", str(tmp_path / "m8")]) == 1
    # an unsharded run is the one shard of a 1-way split
    merge([whole], tmp_path / "m9")
    assert (tmp_path / "m9" / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()


def _regrade_elsewhere(shard: Path, student: str, results: list[Result] | None, source: Path) -> None:
    """Put ``student`` into ``shard``'s last run too: with ``results``, or with the rows ``source`` holds."""
    store = Store(shard / "grades.sqlite")
    try:
        db = sqlite3.connect(source / "grades.sqlite")
        sha, fp = db.execute("SELECT notebook_sha256, fingerprint FROM submissions WHERE student=?",
                             (student,)).fetchone()
        if results is None:
            with store.db:
                store.db.execute("BEGIN IMMEDIATE")
                for table in ("submissions", "questions", "cases"):
                    store.insert_rows(table, db.execute(f"SELECT * FROM {table} WHERE student=?",
                                                        (student,)).fetchall())
        else:
            store.save(student, A, sha, fp, results, "namespace")
        db.close()
        store.db.execute("INSERT INTO batch VALUES (?,?)", (student, A))
    finally:
        store.close()


def test_merge_refuses_one_student_graded_differently_by_two_shards(graded, tmp_path):
    _, whole, shards, _, _ = graded
    copies = _copy_shards(shards, tmp_path)
    victim = next(n for n in NAMES if shard_of(n, N) == 0)
    fake = [Result("add_one", 1.0, 1.0, "passed", "ok", [CaseResult("add_one", "c", True, "passed", "ok", 1.0, 1.0)])]
    _regrade_elsewhere(copies[1], victim, fake, copies[0])
    with pytest.raises(BatchError, match=f"{victim}/{A} was graded by two shards with different results"):
        merge(copies, tmp_path / "merged")


def test_merge_accepts_one_student_graded_identically_by_two_shards(graded, tmp_path):
    _, whole, shards, _, _ = graded
    copies = _copy_shards(shards, tmp_path)
    victim = next(n for n in NAMES if shard_of(n, N) == 0)
    _regrade_elsewhere(copies[1], victim, None, copies[0])
    merge(copies, tmp_path / "merged")
    assert (tmp_path / "merged" / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()
