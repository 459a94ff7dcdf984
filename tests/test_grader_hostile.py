"""A hostile corpus: each submission may cost only the question it attacks, gets a sensible verdict, and the batch
always finishes. Plus direct probes of the worker's isolation."""
from __future__ import annotations

import csv
import time

import pytest
import torch

from autograder import registry, runner, sandbox
from autograder.batch import grade_folder
from tests.fixtures.fixture_assignment import students

A = students.ASSIGNMENT
NAMESPACE = sandbox.isolation_level() == sandbox.NAMESPACE
QS = ["add_one", "softmax_rows", "saliency_like", "scale_inplace_", "orthogonal_rows"]

#: student -> (verdict of add_one, text in its message). Every other question must pass.
ADD_ONE = {
    "infinite_loop": ("timeout", "did not finish within 5 s"),
    "sleeps": ("timeout", "did not finish within 5 s"),
    "sys_exit": ("crashed", "your code called sys.exit(0)"),
    "os_exit": ("crashed", "exited with code 3"),
    "segfault": ("crashed", "SIGSEGV (segmentation fault)"),
    "huge_alloc": ("crashed", "ran out of memory (the limit is 2048 MB per question)"),
    "print_flood": ("passed", "all 2 cases passed"),
    "reads_stdin": ("error", "EOFError"),
    "monkeypatch": ("wrong values", "max abs error 1"),
    "plain_import_reference": ("error", "ModuleNotFoundError: No module named 'utils.reference'"),
    "garbage_on_pipe": ("crashed", "garbage on its result channel"),
    "kills_parent": ("crashed", "SIGKILL"),
    "closes_result_pipe": ("timeout", "did not finish within 5 s"),
    "leaves_a_daemon": ("passed", "all 2 cases passed"),
    "thread_at_import": ("passed", "all 2 cases passed"),
    "sys_exit_at_import": ("passed", "all 2 cases passed"),
}
if NAMESPACE:  # with the process level, the instructor's files stay readable by absolute path
    ADD_ONE["reads_hidden"] = ("wrong values", "max abs error 1")
    ADD_ONE["imports_reference"] = ("wrong values", "max abs error 1")
#: Submissions that cannot load at all: every question lost, with this verdict and message.
WHOLE = {
    "exit_at_import": ("crashed", "could not be loaded: the process exited with code 3"),
    "segfault_at_import": ("crashed", "could not be loaded: the process was killed by SIGSEGV"),
    "loops_at_import": ("timeout", "could not be loaded: loading the notebook took more than 4 s"),
    "malformed": ("error", "notebook could not be read: not a Jupyter notebook"),
    "not_a_notebook": ("error", "notebook could not be read: not a Jupyter notebook"),
}
#: Only under the namespace level (elsewhere they would hit the test runner itself).
KILLS_EVERYTHING = students._add_one(
    "import os, signal\nfor pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) != os.getpid():\n"
    "        try:\n            os.kill(int(pid), signal.SIGKILL)\n        except OSError:\n            pass")
FORK_BOMB = students._add_one("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                              "        pass")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    registry.register(students.QUESTIONS)
    root = tmp_path_factory.mktemp("hostile")
    variants = {name: students.HOSTILE[name] for name in [*ADD_ONE, *WHOLE]}
    variants["correct"] = students.VARIANTS["correct"]
    if NAMESPACE:
        variants["kills_everything"] = KILLS_EVERYTHING
        variants["fork_bomb"] = FORK_BOMB
    students.write_class(root, variants)
    out = tmp_path_factory.mktemp("out")
    t0 = time.monotonic()
    summary = grade_folder(root, out, assignment=A, workers=2, timeout=5, load_timeout=4, progress=False,
                           log=lambda s: None)
    elapsed = time.monotonic() - t0
    with open(out / "grades.csv", newline="") as f:
        rows = {(r["student"], r["question"]): r for r in csv.DictReader(f)}
    return summary, rows, elapsed, variants


pytestmark = pytest.mark.slow


def test_batch_finishes_and_grades_everyone(batch):
    summary, rows, elapsed, variants = batch
    assert summary.graded == len(variants) and not summary.failed
    assert {s for s, _ in rows} == set(variants)
    assert elapsed < 150


@pytest.mark.parametrize("student", list(ADD_ONE))
def test_attack_costs_only_add_one(batch, student):
    rows = batch[1]
    verdict, text = ADD_ONE[student]
    r = rows[(student, "add_one")]
    assert r["verdict"] == verdict and text in r["message"], r
    for q in QS[1:]:
        assert rows[(student, q)]["verdict"] == "passed", rows[(student, q)]


@pytest.mark.parametrize("student", list(WHOLE))
def test_unloadable_submission_loses_everything_and_nothing_else(batch, student):
    rows = batch[1]
    verdict, text = WHOLE[student]
    for q in QS:
        r = rows[(student, q)]
        assert (r["verdict"], float(r["points"])) == (verdict, 0.0) and text in r["message"], r
    assert all(rows[("correct", q)]["verdict"] == "passed" for q in QS)


@pytest.mark.skipif(not NAMESPACE, reason="needs the namespace isolation level (root on Linux)")
def test_killing_every_process_hurts_nobody_else(batch):
    rows = batch[1]
    # it can only kill its own worker (same private uid): the grader, other workers and pytest survive
    assert rows[("kills_everything", "add_one")]["verdict"] == "crashed"
    assert all(rows[("kills_everything", q)]["verdict"] == "passed" for q in QS[1:])
    assert all(rows[("correct", q)]["verdict"] == "passed" for q in QS)


@pytest.mark.skipif(not NAMESPACE, reason="needs the namespace isolation level (root on Linux)")
def test_fork_bomb_costs_only_its_question(batch):
    rows = batch[1]
    assert rows[("fork_bomb", "add_one")]["verdict"] == "timeout"
    assert all(rows[("fork_bomb", q)]["verdict"] == "passed" for q in QS[1:])


PROBE = '''def add_one(x):
    import ctypes, os, socket, torch
    flags = []
    for path in {paths!r}:
        flags.append(os.path.exists(path))
    flags.append(os.getuid() == 0 or os.geteuid() == 0)
    libc = ctypes.CDLL(None, use_errno=True)
    flags.append(libc.umount2({repo!r}.encode(), 2) == 0)
    try:
        open("/proc/%d/fd/0" % os.getppid()).close()
        flags.append(True)
    except OSError:
        flags.append(False)
    try:
        os.kill(1, 0)
        flags.append(True)
    except OSError:
        flags.append(False)
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=1).close()
        flags.append(True)
    except OSError:
        flags.append(False)
    try:
        import utils.reference
        flags.append(True)
    except ImportError:
        flags.append(False)
    return torch.tensor(flags, dtype=torch.float32)
'''


@pytest.mark.skipif(not NAMESPACE, reason="needs the namespace isolation level (root on Linux)")
def test_worker_sees_no_instructor_file_and_cannot_undo_its_isolation(tmp_path):
    entry = registry.register(students.QUESTIONS)
    q = entry.assignment.question("add_one")
    hidden = entry.case_path(q, q.cases[1])
    other = students.write_submission(tmp_path / "submitted", "someone_else", students.VARIANTS["correct"])
    paths = [str(students.REPO / "utils" / "reference" / "__init__.py"), str(hidden), str(students.SOLUTION),
             str(students.REPO / ".git"), str(other)]
    assert all(__import__("os").path.exists(p) for p in paths)
    nb = students.write_submission(tmp_path / "submitted", "prober",
                                   {**students.CORRECT, "add_one": PROBE.format(paths=paths, repo=str(students.REPO))})
    with runner.Session(timeout=10, hide=[str(tmp_path / "submitted")]) as session:
        info: dict = {}
        results = session.grade(nb, entry, info)
    assert info["isolation"] == "namespace"
    flags = results[0].cases[0].output["out"]
    names = ["reference pkg", "hidden file", "solution", ".git", "other submission", "root uid", "umount",
             "parent fds", "signal pid 1", "network", "import utils.reference"]
    assert dict(zip(names, flags.tolist())) == dict.fromkeys(names, 0.0)


def test_without_the_namespace_the_attacks_are_real(tmp_path):
    """The same hostile code, run at the weaker process level, does reach the answers: so the namespace tests
    above test something."""
    entry = registry.register(students.QUESTIONS)
    nb = students.write_submission(tmp_path, "reads_hidden", students.HOSTILE["reads_hidden"])
    with runner.Session(timeout=10, isolate=False) as session:
        info: dict = {}
        results = session.grade(nb, entry, info)
    assert info["isolation"] == "process"
    assert results[0].verdict == "passed"
    assert torch.is_tensor(results[0].cases[0].output["out"])
