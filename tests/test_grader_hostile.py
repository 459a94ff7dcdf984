"""A hostile corpus: each submission may cost only the question it attacks (or, when it attacks the grader itself,
only its own grade), gets a sensible verdict, and the batch always finishes. Plus direct probes of the worker's
isolation, and the command line's answers to careless use.

Attacks on the grader itself (issue 17), graded in the same batch as the attacks on a question:

- code that runs while the notebook loads forges frames on the worker's channel (a list where a name belongs,
  JSON nested 100 000 deep, forged load errors, outputs too large for one frame or for the submission's budget,
  a ``=HYPERLINK`` message, text UTF-8 cannot encode, a "heartbeat" that never finishes);
- careless inputs: nbgrader metadata that is a string, a folder name that is not UTF-8, a notebook that is a FIFO,
  a link (to /dev/zero, to the solution, to another student's notebook, to a root-only file), a linked student
  folder, a notebook over the size cap;
- limits: raising the soft memory limit while loading; a process of a foreign uid >= 200000 must survive;
- working code that used to get zeros: a graded function bound by assignment, a non-literal module constant;
- the command line: non-positive limits, an ``--out`` that is a file / read-only / full, two graders on one
  ``--out``;
- isolation (namespace level): what a worker can see (an allow-list), ``/run/lock`` collusion, a second course copy.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from autograder.core import registry
from autograder.grade import isolation
from autograder.grade.session import Session
from autograder.grade.batch import BatchError, grade_folder, lock_out
from tests.fixtures.fixture_assignment import students

A = students.ASSIGNMENT
NAMESPACE = isolation.isolation_level() == isolation.NAMESPACE
ROOT = os.geteuid() == 0
QS = ["add_one", "softmax_rows", "saliency_like", "scale_inplace_", "orthogonal_rows"]
TIMEOUT, LOAD_TIMEOUT = 5, 4

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
    # the worker is pid 1 of its own PID namespace: the kernel drops signals sent to it from inside, so a question
    # that tries to kill it achieves nothing and its answer counts
    ADD_ONE["kills_parent"] = ("passed", "all 2 cases passed")
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


#: Code run at load time (a class body) that finds the worker's channel and writes frames on it.
FORGE = """
class Forge:
    import json, os, struct, sys
    f = sys._getframe()
    fd = None
    while f is not None:
        fd = f.f_locals.get("out_fd", fd)
        f = f.f_back
    plan = json.load(open("plan.json"))
    names = {q["id"]: [c["name"] for c in q["cases"]] for q in plan["questions"]}

    def send(header, payload=b"", fd=fd, json=json, os=os, struct=struct):
        data = header if isinstance(header, bytes) else json.dumps(header).encode()
        view = memoryview(struct.pack(">II", len(data), len(payload)) + data + payload)
        while view:
            view = view[os.write(fd, view):]
"""


def _forge(body: str, base: dict | None = None) -> dict:
    """A correct notebook (or ``base``) plus a load-time cell that forges frames (``body`` runs in the class)."""
    code = FORGE + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())
    base = dict(students.CORRECT if base is None else base)
    return {**base, "cells": [*base.get("cells", []), code]}


HYPERLINK = '=HYPERLINK("http://evil.example/", "click me")'

#: student -> notebook; each forgery ends in its own verdict (see the tests below).
FORGED = {
    # a "loaded" frame with a list where a question name belongs, then a "missing" frame naming a list
    "forged_list_question": _forge('send({"type": "loaded", "question": [1, 2], "errors": {}})\n'
                                   'send({"type": "missing", "question": [1, 2]})'),
    # a header nested 100 000 deep
    "forged_deep_json": _forge('send(b"[" * 100000 + b"]" * 100000)'),
    # load errors keyed by something that is not a cell number (and a missing function that would look them up)
    "forged_errors": _forge('send({"type": "loaded", "errors": {"x": "y", "1": 2}})',
                            {**students.CORRECT, "add_one": "# I gave up\n"}),
    # one output larger than any honest output can be (the worker refuses more than 64 MB)
    "forged_huge_frame": _forge('send({"type": "loaded", "errors": {}})\n'
                                'send({"type": "case", "question": "add_one", "case": names["add_one"][0], '
                                '"status": "ok"}, bytes(70 << 20))'),
    # outputs under the frame cap but over the submission's budget (128 MB): the third is refused
    "forged_budget": _forge('send({"type": "loaded", "errors": {}})\n'
                            'for q, c in [("add_one", 0), ("add_one", 1), ("softmax_rows", 0)]:\n'
                            '    send({"type": "case", "question": q, "case": names[q][c], "status": "ok"}, '
                            'bytes(60 << 20))'),
    # a forged message that is a spreadsheet formula
    "forged_formula": _forge('send({"type": "loaded", "errors": {}})\n'
                             'for c in names["add_one"]:\n'
                             f'    send({{"type": "case", "question": "add_one", "case": c, "status": "odd", '
                             f'"message": {HYPERLINK!r}}})'),
    # messages with a lone surrogate (valid JSON, not encodable as UTF-8: SQLite, the CSV and HTML would fail)
    "forged_surrogate": _forge('send(b\'{"type": "loaded", "errors": {}}\')\n'
                               'for c in names["add_one"]:\n'
                               '    send(b\'{"type": "case", "question": "add_one", "case": "\' + c.encode() + '
                               'b\'", "status": "odd", "message": "bad \\\\udce9 text"}\')'),
    # claims "loaded", then sends a frame every 0.2 s forever (and never loads)
    "heartbeat": _forge('import time\nsend({"type": "loaded", "errors": {}})\nwhile True:\n'
                        '    send({"type": "hello", "isolation": {}})\n    time.sleep(0.2)'),
}

#: Working code the grader used to give zeros.
WORKING = {
    "aliased": {**students.CORRECT,
                "add_one": "def _impl(x):\n    return x + 1\n\nadd_one = _impl\n",
                "softmax_rows": "softmax_rows = lambda x: (x - x.max(1, keepdim=True).values).softmax(1)\n"},
    "non_literal_constant": {**students.CORRECT, "add_one": (
        "import torch\nONE = torch.tensor(1.0)\nSHIFT = ONE * 0\n\n"
        "def add_one(x):\n    return x + ONE + SHIFT\n\nprint('a demo line that must not run at grading')\n"
        "DEMO = add_one(torch.zeros(2)) / 0 if False else None\n")},
    # a demo assignment nothing needs still never runs (it would take the load time limit)
    "slow_demo_assignment": {**students.CORRECT, "cells": ["import time\nwaited = time.sleep(60)\n"]},
    # an extra assignment that fails costs nothing else in its cell
    "failing_constant": {**students.CORRECT, "add_one": (
        "import torch\nBROKEN = torch.tensor(undefined_name)\n\ndef add_one(x):\n    return x + 1\n\n"
        "def uses_broken():\n    return BROKEN\n")},
    # raising the soft address-space limit while loading: the hard limit (2 x --memory-mb) still holds
    "raises_memory_limit": {**students.CORRECT, "add_one": "def add_one(x):\n    return x + 1 + Grab.got\n",
                            "cells": ["class Grab:\n    import mmap, resource\n"
                                      "    soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
                                      "    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))\n"
                                      "    try:\n        m = mmap.mmap(-1, 3 * 2048 << 20, flags=mmap.MAP_PRIVATE)\n"
                                      "        got = 1\n    except (OSError, MemoryError, ValueError):\n"
                                      "        got = 0\n"]},
    "meta_tensor": {**students.CORRECT, "add_one": "def add_one(x):\n    return (x + 1).to('meta')\n"},
}


def _notebook_with_string_metadata() -> str:
    nb = json.loads(nbformat.writes(students.notebook(students.CORRECT)))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and (cell["metadata"].get("nbgrader") or {}).get("grade_id") == "add_one":
            cell["metadata"]["nbgrader"] = "add_one"
    nb["cells"].append({"cell_type": "code", "id": "odd-cell", "metadata": {"nbgrader": ["odd"]}, "source": ["x = 1\n"],
                        "outputs": [], "execution_count": None})
    return json.dumps(nb)


NON_UTF8 = os.fsdecode(b"caf\xe9_windows_zip")
FORMULA_STUDENT = "=1+1"
FOREIGN_UID = isolation.UID_BASE + 1  # pid 1 never runs under it: the old orphan sweep killed whatever did


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One batch for the whole corpus: the attacks on a question and the attacks on the grader."""
    registry.register(students.QUESTIONS)
    root = tmp_path_factory.mktemp("hostile")
    variants = {name: students.HOSTILE[name] for name in [*ADD_ONE, *WHOLE]}
    variants["correct"] = students.VARIANTS["correct"]
    if NAMESPACE:
        variants["kills_everything"] = KILLS_EVERYTHING
        variants["fork_bomb"] = FORK_BOMB
    variants.update({**FORGED, **WORKING, "string_metadata": _notebook_with_string_metadata(),
                     NON_UTF8: students.VARIANTS["correct"], FORMULA_STUDENT: students.VARIANTS["correct"]})
    students.write_class(root, variants)
    nb_path = lambda s: root / s / A / f"{A}.ipynb"  # noqa: E731
    shadow = root.parent / "root_only.txt"
    shadow.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    os.chmod(shadow, 0o600)
    links = {"link_dev_zero": "/dev/zero", "link_solution": str(students.SOLUTION),
             "link_other_student": str(nb_path("correct")), "link_root_only": str(shadow)}
    for student, target in links.items():
        nb_path(student).parent.mkdir(parents=True)
        os.symlink(target, nb_path(student))
    nb_path("fifo").parent.mkdir(parents=True)
    os.mkfifo(nb_path("fifo"))
    nb_path("too_large").parent.mkdir(parents=True)
    with open(nb_path("too_large"), "wb") as f:
        f.truncate(65 << 20)  # sparse: costs no disk
    os.symlink(root / "correct", root / "linked_student_folder")
    everyone = set(variants) | set(links) | {"fifo", "too_large", "linked_student_folder"}
    foreign = None
    if ROOT:  # a process of someone else's (say, an SSSD user's) uid >= 200000, started before the grader
        foreign = subprocess.Popen(["sleep", "300"], user=FOREIGN_UID, group=FOREIGN_UID, start_new_session=True)
    out = tmp_path_factory.mktemp("out")
    t0 = time.monotonic()
    try:
        summary = grade_folder(root, out, assignment=A, workers=3, timeout=TIMEOUT, load_timeout=LOAD_TIMEOUT,
                               progress=False, log=lambda s: None)
        elapsed = time.monotonic() - t0
        foreign_alive = foreign is None or foreign.poll() is None
    finally:
        if foreign is not None:
            foreign.kill()
            foreign.wait()
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {(r["student"], r["question"]): r for r in csv.DictReader(f)}
    return {"summary": summary, "rows": rows, "elapsed": elapsed, "everyone": everyone,
            "foreign_alive": foreign_alive, "out": out}


@pytest.fixture(scope="module")
def batch(graded):
    return graded["summary"], graded["rows"], graded["elapsed"], graded["everyone"]


@pytest.fixture(scope="module")
def more(graded):
    g = graded
    return g["summary"], g["rows"], g["elapsed"], g["everyone"], g["foreign_alive"], g["out"]


pytestmark = pytest.mark.slow


def test_batch_finishes_and_grades_everyone(batch):
    summary, rows, elapsed, everyone = batch
    printable = {s if s != NON_UTF8 else "caf\\xe9_windows_zip" for s in everyone}
    printable = {("'" + s if s[:1] in "=+-@" else s) for s in printable}
    assert summary.graded == len(everyone) and not summary.failed, summary.failed
    assert {s for s, _ in rows} == printable
    assert all(rows[("correct", q)]["verdict"] == "passed" for q in QS)
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


@pytest.mark.parametrize("student,defines", [("exit_at_import", "Boom"), ("segfault_at_import", "Boom"),
                                             ("loops_at_import", "Forever")])
def test_an_unloadable_notebook_names_the_cell_it_died_or_hung_in(batch, student, defines):
    """The worker writes the cell it is loading into a file the grader reads when loading fails (crash or hang)."""
    cell = len(students.notebook(students.HOSTILE[student]).cells)  # the appended cell is the last one
    for q in QS:
        assert f"while loading cell {cell}, the cell that defines `{defines}`" in batch[1][(student, q)]["message"]


@pytest.mark.skipif(not NAMESPACE, reason="needs the namespace isolation level (root on Linux)")
def test_killing_every_process_hurts_nobody_else(batch):
    rows = batch[1]
    # it sees only its own PID namespace, whose pid 1 (its worker) ignores signals from inside: the grader, other
    # workers and pytest survive, and so does its own worker
    assert rows[("kills_everything", "add_one")]["verdict"] == "passed"
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
    host = False
    for pid in os.listdir("/proc"):
        try:
            host = host or b"pytest" in open("/proc/%s/cmdline" % pid, "rb").read()
        except OSError:
            pass
    flags.append(host)
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


@pytest.fixture(scope="module")
def probe_session():
    """One grader session (one fork server) for the direct probes of the namespace level."""
    with Session(timeout=10) as session:
        yield session


@pytest.mark.skipif(not NAMESPACE, reason="needs the namespace isolation level (root on Linux)")
def test_worker_sees_no_instructor_file_and_cannot_undo_its_isolation(tmp_path, probe_session):
    entry = registry.register(students.QUESTIONS)
    q = entry.assignment.question("add_one")
    hidden = entry.case_path(q, q.cases[1])
    other = students.write_submission(tmp_path / "submitted", "someone_else", students.VARIANTS["correct"])
    paths = [str(students.REPO / "utils" / "reference" / "__init__.py"), str(hidden), str(students.SOLUTION),
             str(students.REPO / ".git"), str(other)]
    assert all(__import__("os").path.exists(p) for p in paths)
    nb = students.write_submission(tmp_path / "submitted", "prober",
                                   {**students.CORRECT, "add_one": PROBE.format(paths=paths, repo=str(students.REPO))})
    graded = probe_session.grade(nb, entry)
    assert graded.isolation == "namespace"
    flags = graded.results[0].cases[0].output["out"]
    names = ["reference pkg", "hidden file", "solution", ".git", "other submission", "root uid", "umount",
             "parent fds", "sees host processes", "network", "import utils.reference"]
    assert dict(zip(names, flags.tolist())) == dict.fromkeys(names, 0.0)


def test_without_the_namespace_the_attacks_are_real(tmp_path):
    """The same hostile code, run at the weaker process level, does reach the answers: so the namespace tests
    above test something."""
    entry = registry.register(students.QUESTIONS)
    nb = students.write_submission(tmp_path, "reads_hidden", students.HOSTILE["reads_hidden"])
    with Session(timeout=10, isolate=False) as session:
        graded = session.grade(nb, entry)
    results = graded.results
    assert graded.isolation == "process"
    assert results[0].verdict == "passed"
    assert torch.is_tensor(results[0].cases[0].output["out"])


# -- attacks on the grader itself (issue 17) -------------------------------------------------------------------------



def _all(rows, student, verdict, text):
    for q in QS:
        r = rows[(student, q)]
        assert r["verdict"] == verdict and float(r["points"]) == 0 and text in r["message"], r


@pytest.mark.parametrize("student", ["forged_list_question", "forged_deep_json", "forged_errors",
                                     "forged_huge_frame"])
def test_forged_frames_at_load_cost_only_that_student(more, student):
    _all(more[1], student, "crashed", "its results could not be read")


def test_outputs_over_the_submission_budget_are_refused(more):
    rows = more[1]
    assert "larger than 128 MB in total" in rows[("forged_budget", "softmax_rows")]["message"]
    for q in QS[2:]:
        assert rows[("forged_budget", q)]["verdict"] == "passed"


def test_messages_that_utf8_cannot_encode_are_stored(more):
    rows = more[1]
    r = rows[("forged_surrogate", "add_one")]
    assert r["verdict"] == "error" and r["message"].startswith("bad ") and r["message"].endswith(" text"), r
    assert all(rows[("forged_surrogate", q)]["verdict"] == "passed" for q in QS[1:])


def test_heartbeat_cannot_hold_its_slot(more):
    rows, elapsed = more[1], more[2]
    _all(rows, "heartbeat", "timeout", "")
    # one question's wait (timeout + 10 s slack) after the forged "loaded": ~15 s. Before, each frame restarted the
    # wait and each question got a fresh worker: 108 s for this student alone (5 x 20 s + loads); the whole batch
    # takes about 50 s.
    assert elapsed < 100


def test_csv_cells_cannot_start_a_formula(more):
    rows, out = more[1], more[5]
    assert rows[("forged_formula", "add_one")]["message"] == "'" + HYPERLINK
    assert all(rows[("forged_formula", q)]["verdict"] == "passed" for q in QS[1:])
    assert all(rows[("'" + FORMULA_STUDENT, q)]["verdict"] == "passed" for q in QS)
    text = (out / "grades.csv").read_text(encoding="utf-8")
    assert not any(cell[:1] in "=+-@" for line in text.splitlines()[1:] for cell in next(csv.reader([line])))


@pytest.mark.parametrize("student", ["string_metadata", "caf\\xe9_windows_zip", "aliased", "non_literal_constant",
                                     "slow_demo_assignment", "failing_constant", "raises_memory_limit"])
def test_careless_or_unusual_but_working_notebooks_get_full_marks(more, student):
    rows = more[1]
    assert all(rows[(student, q)]["verdict"] == "passed" for q in QS), [rows[(student, q)] for q in QS]


def test_only_what_graded_functions_need_runs_at_load():
    """Non-literal assignments run when a graded function needs them (bound to its name, read by it or by what it
    calls, or read by a definition when it runs); a demo global that only an ungraded helper reads never runs."""
    from autograder.core import extract

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in [
        "import torch\nnet = load_big_model()\nSCALE = torch.tensor(2.0)\ndef helper(x):\n    return net(x)\n",
        "def f(x, s=DEFAULT):\n    return x * SCALE\nDEFAULT = make_default()\ng = f\nplot(net)\nk = 3\n"]])
    cells = extract.extract_cells(nb)
    extract.select(cells, {"g"})
    assert (cells[0].keep, cells[0].soft) == ([0, 2, 3], [2])        # not `net = load_big_model()`
    assert (cells[1].keep, cells[1].soft) == ([0, 1, 2, 4], [1, 2])  # not `plot(net)`


def test_meta_tensor_is_a_wrong_type(more):
    r = more[1][("meta_tensor", "add_one")]
    assert r["verdict"] == "wrong type" and "meta" in r["message"], r


@pytest.mark.parametrize("student, text", [
    ("link_dev_zero", "symbolic link"), ("link_solution", "symbolic link"), ("link_other_student", "symbolic link"),
    ("link_root_only", "symbolic link"), ("linked_student_folder", "is a symbolic link"),
    ("fifo", "a FIFO, not a regular file"), ("too_large", "larger than 64 MB")])
def test_links_fifos_and_huge_files_are_refused(more, student, text):
    rows = more[1]
    _all(rows, student, "error", text)
    assert not any("secret-hash" in rows[(student, q)]["message"] for q in QS)


@pytest.mark.skipif(not ROOT, reason="needs root to run a process under a foreign uid")
def test_foreign_processes_are_never_signalled(more):
    assert more[4], "the grader killed a process it did not start"


# -- the command line and the output folder (no grading needed) -----------------------------------------------------

def _one_student(tmp_path) -> Path:
    registry.register(students.QUESTIONS)
    return students.write_class(tmp_path / "sub", {"someone": students.VARIANTS["correct"]})


@pytest.mark.parametrize("flag", ["--timeout", "--load-timeout", "--memory-mb", "--workers"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_non_positive_limits_are_rejected(tmp_path, capsys, flag, value):
    from autograder.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["grade", str(tmp_path), "--out", str(tmp_path / "o"), flag, value])
    assert exc.value.code == 2 and "must be a positive number" in capsys.readouterr().err
    with pytest.raises(BatchError, match="must be a positive number"):
        grade_folder(_one_student(tmp_path), tmp_path / "o", timeout=-1)


def test_out_that_is_a_file_gives_a_clear_error(tmp_path, capsys):
    from autograder.cli import main

    sub = _one_student(tmp_path)
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "below"):
        assert main(["grade", str(sub), "--out", str(out), "--assignment", A, "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: cannot write to the output folder") and "Traceback" not in err, err


def test_two_graders_on_one_out_are_refused(tmp_path):
    sub = _one_student(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    held = lock_out(out)  # another grader, running
    try:
        with pytest.raises(BatchError, match="another grader is writing to"):
            grade_folder(sub, out, assignment=A, progress=False, log=lambda s: None)
    finally:
        held.close()
    assert not (out / "grades.sqlite").exists()


@pytest.mark.skipif(not ROOT, reason="needs root to mount a small file system")
@pytest.mark.parametrize("options", ["size=64k", "ro"])
def test_full_or_read_only_disk_gives_a_clear_error(tmp_path, capsys, options):
    from autograder.cli import main

    sub = _one_student(tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], check=True)
    try:
        if options != "ro":
            with open(disk / "filler", "wb") as f:
                try:
                    f.write(bytes(1 << 20))
                except OSError:
                    pass
        assert main(["grade", str(sub), "--out", str(disk / "out"), "--assignment", A, "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: cannot write to the output folder") and "Traceback" not in err, err
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_disk_full_while_grading_gives_a_clear_error(tmp_path, monkeypatch):
    import errno

    from autograder.grade import feedback

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(feedback, "write", full)
    with pytest.raises(BatchError, match="cannot write to the output folder .*: No space left on device"):
        grade_folder(_one_student(tmp_path), tmp_path / "out", assignment=A, timeout=5, progress=False,
                     log=lambda s: None)


# -- isolation: what a worker can see --------------------------------------------------------------------------------

PUBLISH = '''def add_one(x):
    import os
    for folder in ["/run/lock", "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), "."]:
        try:
            with open(os.path.join(folder, "{token}"), "w") as f:
                f.write("x + 1")
        except OSError:
            pass
    return x + 1
'''
COPY = '''def add_one(x):
    import glob
    found = [p for folder in ["/run/lock", "/tmp", "/var/tmp", "/dev/shm", "/root", "/home/*", "."]
             for p in glob.glob(folder + "/**/{token}", recursive=True)]
    return x + 1 if not found else x + 2
'''
SEES = '''def add_one(x):
    import os, torch
    flags = []
    for path in {paths!r}:
        flags.append(os.path.exists(path))
    procs = [p for p in os.listdir("/proc") if p.isdigit()]
    flags.append(len(procs) > 10)
    flags.append(os.path.exists("/proc/1/cmdline") and b"python" not in open("/proc/1/cmdline", "rb").read())
    return torch.tensor(flags, dtype=torch.float32)
'''


@pytest.mark.skipif(not NAMESPACE, reason="needs the namespace isolation level (root on Linux)")
def test_worker_sees_an_allow_list_and_students_cannot_collude(tmp_path, probe_session):
    entry = registry.register(students.QUESTIONS)
    q = entry.assignment.question("add_one")
    backup = Path("/opt") / f"course_backup_test_{os.getpid()}"  # an instructor's copy outside every hidden path
    try:
        shutil.copytree(students.REPO / "utils" / "reference", backup / "utils" / "reference")
        hidden = backup / "hidden" / entry.case_path(q, q.cases[1]).name
        hidden.parent.mkdir(parents=True)
        shutil.copy(entry.case_path(q, q.cases[1]), hidden)
        paths = [str(backup / "utils" / "reference" / "__init__.py"), str(hidden), "/run/lock", "/etc/passwd",
                 "/home", str(students.REPO / "utils"), "/opt", "/srv", "/mnt", "/root/.bashrc"]
        names = ["backup reference", "backup hidden case", "/run/lock", "/etc/passwd", "/home", "repository",
                 "/opt", "/srv", "/mnt", "home folder", "host processes", "host init"]
        sub = tmp_path / "sub"
        token = f"answers_from_alice_{os.getpid()}"
        alice = students.write_submission(sub, "alice", {**students.CORRECT, "add_one": PUBLISH.format(token=token)})
        bob = students.write_submission(sub, "bob", {**students.CORRECT, "add_one": COPY.format(token=token)})
        prober = students.write_submission(sub, "prober", {**students.CORRECT, "add_one": SEES.format(paths=paths)})
        assert probe_session.grade(alice, entry).results[0].verdict == "passed"
        bob_result = probe_session.grade(bob, entry).results[0]
        graded = probe_session.grade(prober, entry)
        flags = graded.results[0].cases[0].output["out"]
        assert graded.isolation == "namespace"
        assert bob_result.verdict == "passed", bob_result  # x + 2 had it found alice's file
        assert dict(zip(names, flags.tolist())) == dict.fromkeys(names, 0.0)
        assert not any(Path(p, token).exists() for p in ["/run/lock", "/tmp", "/var/tmp", "/dev/shm"])
    finally:
        shutil.rmtree(backup, ignore_errors=True)


#: Halves of a value put in the grader's environment: a worker must not find them side by side in its memory.
SECRET_HEAD, SECRET_TAIL = "kit-test-secret-", "7f3e9c1d5a"
#: ``add_one`` adds the number of times the secret appears in the worker's writable memory (its own copy of the
#: fork server's, the stack with the environment block included): 0 is a correct answer. The secret is never
#: spelled out whole in the notebook.
READS_ENVIRONMENT = students._add_one(f"""
import ctypes
head, tail, found = {SECRET_HEAD.encode()!r}, {SECRET_TAIL.encode()!r}, 0
with open("/proc/self/maps") as f:
    maps = [line.split() for line in f]
for m in maps:
    if not m[1].startswith("rw"):
        continue
    lo, hi = (int(v, 16) for v in m[0].split("-"))
    data = ctypes.string_at(lo, hi - lo)
    i = data.find(head)
    while i != -1:
        found += data[i + len(head):i + len(head) + len(tail)] == tail
        i = data.find(head, i + 1)
x = x + found""")


def _grade_one(how: str, notebook: dict, tmp_path: Path, monkeypatch, env: dict[str, str]) -> dict:
    """Grade a class of one with ``notebook`` through ``python -m autograder grade`` (``how == "command line"``:
    the fork server is forked from the grader) or ``grade_folder`` (it is exec'd), with ``env`` added to the
    grader's environment; returns the ``add_one`` row of ``grades.csv``."""
    root = tmp_path / "submitted"
    students.write_class(root, {"student": notebook})
    out = tmp_path / "out"
    if how == "command line":
        done = students.cli("grade", str(root), "--out", str(out), "--workers", "1", "--timeout", "20",
                            "--no-progress", env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads((out / "stats.json").read_text())["fork_servers"] == ["forked"]
    else:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        registry.register(students.QUESTIONS)
        grade_folder(root, out, assignment=A, workers=1, timeout=20, progress=False, log=lambda s: None)
        assert json.loads((out / "stats.json").read_text())["fork_servers"] == ["exec"]
    with open(out / "grades.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["question"] == "add_one")


@pytest.mark.parametrize("how", ["command line", "grade_folder"])
def test_no_worker_finds_the_graders_environment_in_its_memory(how, tmp_path, monkeypatch):
    """An instructor's environment may hold secrets. The command-line grader re-execs itself with the startup
    variables only and forks its fork server before it reads the rest back (autograder.grade.prefork);
    ``grade_folder`` execs the server with the policy's environment. Either way a worker that scans its memory
    finds nothing."""
    add_one = _grade_one(how, READS_ENVIRONMENT, tmp_path, monkeypatch,
                         {"AUTOGRADER_TEST_SECRET": SECRET_HEAD + SECRET_TAIL})
    assert (add_one["verdict"], add_one["message"]) == ("passed", "all 2 cases passed"), add_one


def _hash_with_seed_0(text: str) -> int:
    return int(subprocess.run([sys.executable, "-c", f"print(hash({text!r}))"], env={"PYTHONHASHSEED": "0"},
                              capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("how", ["command line", "grade_folder"])
def test_workers_hash_strings_with_the_policys_seed(how, tmp_path, monkeypatch):
    """The policy runs student code with ``PYTHONHASHSEED=0`` (the same set orders in every regrade). A hash seed is
    fixed when an interpreter starts, so a worker forked from a grader started with another seed would hash with
    that one: ``add_one`` is off by 100 unless the worker's ``hash`` is the seed-0 one."""
    seeded = _hash_with_seed_0("kit")
    body = students._add_one(f"x = x + (0 if hash('kit') == {seeded} else 100)")
    add_one = _grade_one(how, body, tmp_path, monkeypatch, {"PYTHONHASHSEED": "random"})
    assert (add_one["verdict"], add_one["message"]) == ("passed", "all 2 cases passed"), add_one


@pytest.mark.parametrize("how", ["command line", "grade_folder"])
def test_student_code_sees_exactly_the_policys_environment(how, tmp_path, monkeypatch):
    """Whichever way its server started (forked from the command-line grader or exec'd), and whatever the
    instructor's environment holds, a worker's environment is the policy's and nothing else: ``add_one`` is off by
    100 otherwise."""
    from autograder.grade.policy import WORKER_ENV

    # (seeding a case sets PYTHONHASHSEED to its seed, for the processes student code starts: see utils.device)
    policy = {k: v for k, v in WORKER_ENV.items() if k != "PYTHONHASHSEED"}
    body = students._add_one("import os\nseen = {k: v for k, v in os.environ.items() if k != 'PYTHONHASHSEED'}\n"
                             f"x = x + (0 if seen == {policy!r} else 100)")
    add_one = _grade_one(how, body, tmp_path, monkeypatch,
                         {"KIT_EXTRA": "1", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"})
    assert (add_one["verdict"], add_one["message"]) == ("passed", "all 2 cases passed"), add_one


#: ``add_one`` is off by one for each way into the instructor's files it finds on its import path.
FINDS_REFERENCES = students._add_one("""
import importlib.util, sys
for hidden in ("utils.reference", "autograder.cases", "autograder.questions._inputs"):
    try:
        x = x + (importlib.util.find_spec(hidden) is not None)
    except ImportError:
        pass
x = x + any(m.startswith("__editable__") for m in sys.modules)""")


@pytest.mark.parametrize("how", ["command line", "grade_folder"])
def test_the_references_cannot_be_imported_at_the_process_level(how, tmp_path, monkeypatch):
    """At the process level instructor files stay readable by absolute path, but nothing of theirs is on the import
    path: neither through the public copy nor through an editable install's finder, which the command-line grader
    (from which the fork server is forked) has loaded."""
    add_one = _grade_one(how, FINDS_REFERENCES, tmp_path, monkeypatch, {"AUTOGRADER_ISOLATION": "process"})
    assert (add_one["verdict"], add_one["message"]) == ("passed", "all 2 cases passed"), add_one


#: ``add_one`` is off by one for each builtin that ``site`` adds (an exec'd ``python -S`` server has none).
SITE_BUILTINS = students._add_one("""
import builtins
x = x + sum(hasattr(builtins, n) for n in ("help", "exit", "quit", "copyright", "credits", "license"))""")


@pytest.mark.parametrize("how", ["command line", "grade_folder"])
def test_student_code_sees_the_same_builtins_however_the_server_started(how, tmp_path, monkeypatch):
    """The fork server forked from the command-line grader ran ``site`` (the exec'd one runs with ``-S``): a graded
    function must not pass or fail by how its server started."""
    add_one = _grade_one(how, SITE_BUILTINS, tmp_path, monkeypatch, {})
    assert (add_one["verdict"], add_one["message"]) == ("passed", "all 2 cases passed"), add_one
