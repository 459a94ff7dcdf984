"""Grading one submission: extract its code, run it in a sandboxed worker, judge what comes back.

A :class:`Session` prepares, once per batch, a public copy of the libraries student code may import and inputs-only
copies of every case file (the expected outputs stay in the grader's memory), then grades notebooks one worker
process each under one :class:`~autograder.grade.policy.SandboxPolicy`. :meth:`Session.grade` returns a
:class:`Graded` record. Comparisons happen here (:func:`autograder.core.pipeline.judge_case`), never in the worker.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import site
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from safetensors.torch import load as st_load

from autograder.core import calls, casefile, extract, judge, pipeline, registry
from autograder.core import verdicts as V
from autograder.core.spec import Question
from autograder.grade import isolation
from autograder.grade import protocol as P
from autograder.grade.forkserver import ForkServer, ForkServerError
from autograder.grade.policy import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, SandboxPolicy
from autograder.grade.protocol import FrameReader, ProtocolError

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT", "Graded", "GraderError", "Prepared", "SandboxPolicy", "Session",
           "grade_notebook"]


class GraderError(Exception):
    """The grading machinery failed before any student code ran: not the student's fault, nothing is stored."""


def repo_root() -> Path | None:
    """The source checkout the engine runs from (None when installed as a package)."""
    root = registry.PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def _copytree(src: Path, dst: Path, skip: Iterable[str]) -> None:
    skip = set(skip)

    def ignore(folder: str, names: list[str]) -> list[str]:
        rel = Path(folder).relative_to(src)
        return [n for n in names if n == "__pycache__" or n.endswith(".pyc") or str(rel / n) in skip]

    shutil.copytree(src, dst, ignore=ignore)


def build_public_lib(dest: Path) -> Path:
    """A folder with the PUBLIC ``utils`` (no ``reference/``) and ``autograder`` (no questions, no references)."""
    dest.mkdir(parents=True, exist_ok=True)
    utils_dir = registry.PACKAGE_DIR.parent / "utils"
    try:
        import utils as _utils  # noqa: F401 - where the installed package lives, if elsewhere
        utils_dir = Path(_utils.__file__).resolve().parent
    except ImportError:
        pass
    if utils_dir.is_dir():
        _copytree(utils_dir, dest / "utils", skip=["reference"])
    _copytree(registry.PACKAGE_DIR, dest / "autograder", skip=["questions", "cases"])
    (dest / "autograder" / "questions").mkdir()
    (dest / "autograder" / "questions" / "__init__.py").write_text("")
    return dest


def python_paths() -> tuple[list[str], list[str]]:
    """``(sys.path for the worker, folders it needs)``: the stdlib and site-packages only (no repository)."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    sites = set()
    try:
        sites.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover
        pass
    paths = []
    for p in sys.path:  # the repository, the current folder and anything else not installed are left out
        real = os.path.realpath(p) if p else ""
        installed = real in sites or any(real == pre or real.startswith(pre + os.sep) for pre in prefixes)
        if installed and os.path.exists(real) and real not in paths:
            paths.append(real)
    keep = sorted(prefixes | sites | {os.path.dirname(os.path.realpath(sys.executable))})
    return paths, keep


def _chmod_public(path: Path) -> None:
    """Readable by the worker's unprivileged uid (tempfile makes 0700 folders)."""
    for folder, dirs, files in os.walk(path):
        os.chmod(folder, 0o755)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)


@dataclass
class Prepared:
    """One assignment ready to grade: its case files (with expected outputs; grader only) and inputs-only copies
    of them (what the worker reads), by ``(question, case)``."""

    entry: registry.Entry
    case_files: dict[tuple[str, str], casefile.CaseFile]
    input_files: dict[tuple[str, str], Path]
    fingerprint: str
    #: the known mistakes' outputs per case, computed once per batch (see :func:`judge.known_mistake`)
    mistakes: dict = field(default_factory=dict)
    #: the inputs comparisons read per case, built once per batch (see :func:`pipeline.judge_case`)
    inputs: dict = field(default_factory=dict)

    def expected_outputs(self) -> dict[tuple[str, str], dict]:
        """The expected outputs by ``(question, case)`` (what feedback draws beside a student's)."""
        return {k: cf.expected for k, cf in self.case_files.items()}


@dataclass
class Graded:
    """What grading one notebook gives: a result per question (in assignment order), the isolation level its
    worker reached (``""`` when no worker ran: an unreadable notebook) and the assignment it was graded against."""

    results: list[V.Result]
    isolation: str
    prepared: Prepared


def spec_fingerprint(entry: registry.Entry, files: dict, extra: str = "") -> str:
    h = hashlib.sha256(f"format={casefile.FORMAT}|{extra}".encode())
    for q in entry.assignment.questions:
        h.update(json.dumps([q.id, q.points, q.inplace, q.positional, q.repeat, q.reference_name, q.compare.describe(),
                             [(c.name, c.weight, c.public) for c in q.cases]]).encode())
        for c in q.cases:
            h.update(files[(q.id, c.name)])
    return h.hexdigest()


def _text(value: str, limit: int = 3000) -> str:
    """A worker's string made safe to store and print: cut to ``limit`` characters, lone surrogates (which JSON
    can carry but UTF-8 cannot) replaced."""
    value = value[:limit]
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def _remove_stale_sessions(tmp: Path) -> None:
    """Delete the temporary folders of grader processes that died without cleaning up (e.g. SIGKILL)."""
    for folder in tmp.glob("autograder-*"):
        try:
            pid = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _cell_where(index: int | None, cells: list[extract.Cell]) -> str:
    """The words naming the cell a notebook died or hung in while loading (" while loading cell 12, the cell that
    defines `f`"); "" if unknown."""
    cell = next((c for c in cells if c.index == index), None)
    if cell is None:
        return ""
    names = ", ".join(f"`{n}`" for n in cell.defines[:3]) + (", ..." if len(cell.defines) > 3 else "")
    return f" while loading {cell.label()}" + (f", the cell that defines {names}" if names else "")


def _loading_cell(fd: int) -> int | None:
    """The cell index the worker last wrote into its progress file (None if none, or not a plausible index)."""
    try:
        text = os.pread(fd, 32, 0)
    except OSError:
        return None
    try:
        index = int(text.split(b"\0")[0].decode("ascii").strip() or "x")
    except (UnicodeDecodeError, ValueError):
        return None
    return index if 0 < index < 1_000_000 else None


@dataclass
class _Outcome:
    hello: dict | None = None
    loaded: dict | None = None
    cases: dict = field(default_factory=dict)      # (qid, case) -> (header, payload)
    missing: dict = field(default_factory=dict)    # qid -> message
    failure: str | None = None                     # why the worker stopped early
    load_timed_out: bool = False
    hung: bool = False                             # the grader gave up waiting (vs. the worker died)
    broken: bool = False                           # the worker's channel carried a malformed or forged frame
    over_deadline: bool = False                    # the submission's wall-clock budget ran out
    result_bytes: int = 0                          # output bytes kept for this submission
    returncode: int | None = None                  # how the worker process ended (from its supervisor)
    cell: int | None = None                        # the notebook cell being loaded (until "loaded")
    done: bool = False
    lost: dict = field(default_factory=dict)       # (qid, case) -> status, for cases a dead worker took along


class Session:
    """Grades notebooks against prepared assignments. Use as a context manager (it owns a temporary folder)."""

    def __init__(self, policy: SandboxPolicy | None = None, *, timeout: float | None = None,
                 memory_mb: int | None = None, load_timeout: float | None = None, tmp_dir: str | None = None,
                 isolate: bool | None = None):
        """``policy`` (default :class:`SandboxPolicy`'s defaults), or its three limits as keywords.
        ``isolate``: False grades at the "process" level even where namespaces work (tests); None: the best
        level available."""
        limits = {k: v for k, v in (("timeout", timeout), ("memory_mb", memory_mb), ("load_timeout", load_timeout))
                  if v is not None}
        if policy is None:
            policy = SandboxPolicy(**limits)
        elif limits:
            raise TypeError("pass either a policy or its limits, not both")
        if isolate is False or (isolate is None and isolation.isolation_level() != isolation.NAMESPACE):
            policy = replace(policy, namespace=False)
        self.policy = policy
        self._policy_dict = policy.to_dict()  # every plan carries it (frozen: computed once)
        # Stale folders only: no process is signalled here. A worker's processes live in its own PID namespace,
        # which the kernel empties when the worker ends (see isolation.enter), so there are no orphans to hunt.
        _remove_stale_sessions(Path(tmp_dir or tempfile.gettempdir()))
        self.base = Path(tempfile.mkdtemp(prefix="autograder-", dir=tmp_dir))
        os.chmod(self.base, 0o755)
        (self.base / "owner.pid").write_text(str(os.getpid()))
        (self.base / "root").mkdir(mode=0o755)  # an empty folder: each worker builds its own root file system on it
        self.lib = build_public_lib(self.base / "lib")
        _chmod_public(self.lib)
        self.sys_path, self.keep = python_paths()
        self.sys_path.insert(0, str(self.lib))
        self._prepared: dict[str, Prepared] = {}
        self._lock = threading.Lock()
        self.isolation_seen: set[str] = set()
        #: CPU seconds of the fork servers' own processes and of the student worker processes (supervisors and
        #: workers with everything they reaped), summed over the fork servers as each reports when it ends (see
        #: :meth:`ForkServer.close`): complete after :meth:`close`, unless :attr:`cpu_complete` is False (a fork
        #: server died without reporting).
        self.cpu_s = {"workers": 0.0, "fork_server": 0.0}
        self.cpu_complete = True
        #: how each fork server of this session started ("forked" or "exec", see :class:`ForkServer`)
        self.server_starts: list[str] = []
        (self.base / "logs").mkdir()
        self._server: ForkServer | None = None
        self._server_lock = threading.Lock()
        self.server()  # start it now (from this thread): it dies with the thread that started it

    def _retire(self, server: ForkServer) -> None:
        """Close ``server`` and add its CPU report to :attr:`cpu_s`."""
        server.close()
        if server.cpu_s is None:
            self.cpu_complete = False
        else:
            for k, v in server.cpu_s.items():
                self.cpu_s[k] += v

    def server(self) -> ForkServer:
        """The fork server, (re)started when needed."""
        with self._server_lock:
            if self._server is None or not self._server.alive():
                if self._server is not None:
                    self._retire(self._server)
                self._server = ForkServer(self.lib, self.sys_path, self.base / "logs" / "forkserver.log",
                                          self.policy.env, self.policy.startup_timeout)
                self.server_starts.append(self._server.started)
            return self._server

    # -- set-up -------------------------------------------------------------------------------------------------
    def prepare(self, entry: registry.Entry | str) -> Prepared:
        with self._lock:  # asked per submission: the registry (which reloads every question file) only once
            done = self._prepared.get(entry if isinstance(entry, str) else entry.id)
            if done is not None:
                return done
            entry = registry.get(entry) if isinstance(entry, str) else entry
            case_files, inputs, raw = {}, {}, {}
            for q in entry.assignment.questions:
                for c in q.cases:
                    path = entry.case_path(q, c)
                    try:
                        raw[(q.id, c.name)] = data = path.read_bytes()
                    except OSError:
                        raise GraderError(f"reference file missing: {path}; run `python -m autograder cases "
                                          f"--assignment {entry.id}`") from None
                    cf = casefile.from_bytes(data, str(path))
                    case_files[(q.id, c.name)] = cf
                    dst = self.base / "inputs" / entry.id / q.id / f"{c.name}.safetensors"
                    cf.inputs_only().write(dst)
                    inputs[(q.id, c.name)] = dst
            _chmod_public(self.base / "inputs")
            fp = spec_fingerprint(entry, raw, f"timeout={self.policy.timeout}|memory={self.policy.memory_mb}")
            prepared = Prepared(entry, case_files, inputs, fp)
            self._prepared[entry.id] = prepared
            return prepared

    # -- grading --------------------------------------------------------------------------------------------------
    def grade(self, notebook: str | Path, assignment: registry.Entry | str,
              root: str | Path | None = None) -> Graded:
        """Grade one notebook against ``assignment``. ``root``: the submissions folder; folders between it and the
        notebook must not be symbolic links."""
        prepared = self.prepare(assignment)
        questions = list(prepared.entry.assignment.questions)
        try:
            nb = extract.read_notebook(notebook, root)
            cells = extract.extract_cells(nb)
            extract.select(cells, {q.id for q in questions})
        except Exception as exc:  # noqa: BLE001 - whatever a notebook holds, it costs only its own grade
            why = str(exc) if isinstance(exc, extract.NotebookError) else f"{type(exc).__name__}: {str(exc)[:200]}"
            msg = f"notebook could not be read: {why}"
            return Graded([judge.question_result(q, judge.same_for_all_cases(q, V.ERROR, msg)) for q in questions],
                          "", prepared)
        outcome = self._run_all(prepared, cells, questions)
        level = str(((outcome.hello or {}).get("isolation") or {}).get("level", ""))
        return Graded([self._judge_question(prepared, q, cells, outcome) for q in questions], level, prepared)

    def _run_all(self, prepared: Prepared, cells: list[extract.Cell], questions: list[Question]) -> _Outcome:
        """Run the questions in workers; when a worker dies mid-way (its code killed it), the question it was on
        loses its unfinished cases and a fresh worker carries on with the next questions."""
        merged: _Outcome | None = None
        remaining = list(questions)
        budget = self.policy.submission_budget(len(questions))
        deadline: list[float] = []  # set when the first worker says hello: one deadline for the whole submission
        while remaining:
            out = self._run_worker(prepared, cells, remaining, deadline, budget,
                                   merged.result_bytes if merged is not None else 0)
            if merged is None:
                merged = out
            else:
                merged.cases.update(out.cases)
                merged.missing.update(out.missing)
                merged.result_bytes = out.result_bytes
            if out.loaded is None:
                if out is not merged:  # a reload failed although the first load worked
                    for q in remaining:
                        for c in q.cases:
                            merged.lost.setdefault((q.id, c.name), {"status": calls.CRASHED, "message": out.failure})
                break
            if out.done:
                break
            unfinished = [q for q in remaining if q.id not in out.missing and
                          any((q.id, c.name) not in out.cases for c in q.cases)]
            if not unfinished:
                break
            current = unfinished[0]
            if out.hung or out.broken or out.over_deadline:
                # The worker itself stopped answering, wrote a malformed or forged frame, or the submission's time
                # is up. Question code runs in children the worker times, so only code that ran while the
                # notebook loaded can do this: a fresh worker would load it again. Every unfinished case is lost.
                if out.over_deadline:
                    status = {"status": calls.TIMEOUT, "message": f"the submission used up its time ({budget:g} s)"}
                elif out.hung:
                    status = {"status": calls.TIMEOUT}
                else:
                    status = {"status": calls.CRASHED, "message": out.failure}
                for q in unfinished:
                    for c in q.cases:
                        if (q.id, c.name) not in out.cases:
                            merged.lost[(q.id, c.name)] = status
                break
            status = {"status": calls.CRASHED, "message": out.failure}
            for c in current.cases:
                if (current.id, c.name) not in out.cases:
                    merged.lost[(current.id, c.name)] = status
            remaining = remaining[remaining.index(current) + 1:]
        assert merged is not None
        return merged

    def _run_worker(self, prepared: Prepared, cells: list[extract.Cell], questions: list[Question],
                    deadline: list[float] | None = None, budget: float | None = None,
                    result_bytes: int = 0) -> _Outcome:
        work = self.base / "work" / uuid.uuid4().hex
        work.mkdir(parents=True)
        cell_entries = []
        for c in cells:
            # a cell none of whose statements runs (demo code, plots) is left out; the others' sources travel in
            # the plan (the file name is what tracebacks show)
            if c.syntax_error is None and c.keep != []:
                entry = {"index": c.index, "filename": str(work / f"cell_{c.index:03d}.py"), "source": c.source}
                if c.keep is not None:
                    entry.update(keep=c.keep, soft=c.soft)
                cell_entries.append(entry)
        plan = {
            "workdir": str(work), "keep": [*self.keep, str(self.lib), str(self.base / "inputs"), str(work)],
            "root": str(self.base / "root"), "cells": cell_entries, "policy": self._policy_dict,
            "questions": [{"id": q.id, "call": pipeline.CallSpec.of(q).to_dict(),
                           "cases": [{"name": c.name, "file": str(prepared.input_files[(q.id, c.name)])}
                                     for c in q.cases]}
                          for q in questions],
        }
        (work / "plan.json").write_text(json.dumps(plan))
        case_inputs = [c["file"] for q in plan["questions"] for c in q["cases"]]
        _chmod_public(work)
        r, w = os.pipe()
        # the worker writes the index of the cell it is loading into ``progress`` (read only if loading fails)
        with tempfile.TemporaryFile(dir=self.base) as progress:
            try:
                try:
                    server, spid = self._spawn(work / "plan.json", w, case_inputs, progress.fileno())
                finally:
                    os.close(w)
            except BaseException:
                os.close(r)
                raise
            started = isolation.start_ticks(spid)
            outcome = _Outcome(result_bytes=result_bytes)
            try:
                self._read_worker(FrameReader(r, max_payload=self.policy.max_case_payload), prepared, outcome,
                                  deadline if deadline is not None else [],
                                  budget if budget is not None else self.policy.submission_budget(len(questions)))
            finally:
                os.close(r)
                self._stop(spid, outcome, started)
                if outcome.loaded is None:
                    outcome.cell = _loading_cell(progress.fileno())
        if outcome.hello is None:
            raise GraderError(f"the grading worker did not start: {outcome.failure}\n{server.log_tail()}")
        shutil.rmtree(work, ignore_errors=True)
        return outcome

    def _spawn(self, plan: Path, result_fd: int, case_inputs: list[str], progress_fd: int) -> tuple[ForkServer, int]:
        """Start a worker on the fork server: ``(the server, the worker's supervisor pid)``."""
        server = None
        try:
            try:
                server = self.server()
                return server, server.spawn(plan, result_fd, case_inputs, progress_fd)
            except (OSError, ForkServerError) as exc:
                # The fork server died (killed, out of memory...), or the one forked from the command-line grader
                # did not start: start a new (exec'd) one, once.
                if isinstance(exc, ForkServerError) and (server is None or server.started != "forked"):
                    raise
                with self._server_lock:  # the one that failed: another thread may have replaced it already
                    if server is not None and self._server is server:
                        self._retire(server)
                        self._server = None
                server = self.server()
                return server, server.spawn(plan, result_fd, case_inputs, progress_fd)
        except ForkServerError as exc:
            raise GraderError(str(exc)) from None

    def _read_worker(self, reader: FrameReader, prepared: Prepared, outcome: _Outcome,
                     submission_deadline: list[float], budget: float) -> None:
        """Read the worker's frames into ``outcome``. Code that runs while the notebook loads shares the worker's
        channel, so every frame is checked by type and size before use: one that is malformed or does not fit the
        protocol ends this worker (``outcome.broken``). Only progress (a new case or question) extends the wait;
        the whole submission has one deadline, set when its first worker starts loading it."""
        questions = {q.id: q for q in prepared.entry.assignment.questions}
        valid = set(prepared.input_files)
        per_question = self.policy.timeout + self.policy.question_slack
        deadline = time.monotonic() + self.policy.startup_timeout

        def broken(why: str) -> None:
            outcome.broken = True
            outcome.failure = f"its results could not be read ({why})"

        while True:
            hard = submission_deadline[0] if submission_deadline else float("inf")
            try:
                frame = reader.read(min(deadline, hard))
            except TimeoutError:
                if time.monotonic() >= hard:
                    outcome.over_deadline = True
                    outcome.failure = f"the submission used up its time ({budget:g} s)"
                    if outcome.loaded is None:
                        outcome.load_timed_out = True
                elif outcome.hello is not None and outcome.loaded is None:
                    outcome.load_timed_out = True
                    outcome.failure = f"loading the notebook took more than {self.policy.load_timeout:g} s"
                else:
                    outcome.hung = True
                    outcome.failure = "the grading process stopped responding"
                return
            except ProtocolError as exc:
                broken(str(exc))
                return
            if frame is None:  # the worker ended without saying "done": _stop says why
                return
            header, payload = frame
            kind = header.get("type")
            if not isinstance(kind, str):
                broken("a message without a type")
                return
            if outcome.hello is None:
                seen = header.get("isolation")
                if kind == P.HELLO and isinstance(seen, dict):
                    outcome.hello = header
                    self.isolation_seen.add(str(seen.get("level"))[:40])
                    now = time.monotonic()
                    if not submission_deadline:
                        submission_deadline.append(now + budget)
                    deadline = now + self.policy.load_timeout
                else:  # the worker failed before loading any student code (sandbox set-up...)
                    outcome.failure = _text(str(header.get("message", f"unexpected message {kind[:40]!r}")))
                    return
            elif kind == P.LOADED and outcome.loaded is None:
                errors = header.get("errors", {})
                if not isinstance(errors, dict) or not all(
                        isinstance(k, str) and k.isdigit() and len(k) < 10 and isinstance(v, str)
                        for k, v in errors.items()):
                    broken("a malformed 'loaded' message")
                    return
                outcome.loaded = {"type": P.LOADED, "errors": {k: _text(v, 2000) for k, v in errors.items()}}
                deadline = time.monotonic() + per_question
            elif kind == P.CASE and outcome.loaded is not None:
                key = (header.get("question"), header.get("case"))
                status = header.get("status")
                if not (isinstance(key[0], str) and isinstance(key[1], str) and isinstance(status, str)):
                    broken("a malformed 'case' message")
                    return
                if key in valid and key not in outcome.cases:
                    clean = {k: _text(v) if isinstance(v, str) else v for k, v in header.items()
                             if isinstance(v, (str, int, float, bool))}
                    if payload and outcome.result_bytes + len(payload) > self.policy.result_budget_bytes:
                        clean = {"status": calls.BAD_OUTPUT, "message": f"the outputs of this notebook are larger "
                                 f"than {self.policy.result_budget_bytes >> 20} MB in total; this case's output was not read"}
                        payload = b""
                    outcome.result_bytes += len(payload)
                    outcome.cases[key] = (clean, payload)
                    deadline = time.monotonic() + per_question  # progress: a new case
            elif kind in (P.MISSING, P.NOT_CALLABLE) and outcome.loaded is not None:
                q = header.get("question")
                if not isinstance(q, str) or not isinstance(header.get("kind", ""), str):
                    broken(f"a malformed {kind!r} message")
                    return
                if q in questions and q not in outcome.missing:
                    outcome.missing[q] = {"type": kind, "kind": _text(str(header.get("kind", "value")), 80)}
                    deadline = time.monotonic() + per_question
            elif kind == P.DONE:
                outcome.done = True
                return
            elif kind == P.EXIT:  # the supervisor: the worker process has ended
                code = header.get("returncode")
                outcome.returncode = code if isinstance(code, int) and not isinstance(code, bool) else None
                return
            elif kind == P.FATAL:
                outcome.failure = "the grading process failed after your code was loaded"
                return
            # anything else (a second hello, a frame out of order) is ignored and extends no deadline

    def _stop(self, supervisor: int, outcome: _Outcome, started: int | None = None) -> None:
        try:
            os.killpg(supervisor, signal.SIGKILL)
        except OSError:
            pass
        seen = (outcome.hello or {}).get("isolation") or {}
        uid = seen.get("uid")
        # In its own PID namespace (the normal case) the kernel ends every process of the worker with it. Without
        # one, kill what runs under the worker's private uid and started after its supervisor: never older
        # processes that happen to have that uid (a directory service's or a container's ids).
        if isinstance(uid, int) and seen.get("level") == isolation.NAMESPACE and not seen.get("pid_namespace"):
            isolation.sweep_uid(uid, since=started)
        if not outcome.done and outcome.failure is None:
            outcome.failure = isolation.exit_reason(outcome.returncode)

    def _judge_question(self, prepared: Prepared, q: Question, cells: list[extract.Cell],
                        outcome: _Outcome) -> V.Result:
        if outcome.loaded is None:
            where = _cell_where(outcome.cell, cells)
            if outcome.load_timed_out:
                verdict, msg = V.TIMEOUT, f"the notebook's code could not be loaded: {outcome.failure}{where}"
            else:
                verdict, msg = V.CRASHED, f"the notebook's code could not be loaded: {outcome.failure}{where}"
            return judge.question_result(q, judge.same_for_all_cases(q, verdict, msg))
        if q.id in outcome.missing:
            header = outcome.missing[q.id]
            if header["type"] == P.NOT_CALLABLE:
                verdict, msg = V.ERROR, f"`{q.id}` is a {header.get('kind', 'value')}, not a function"
            else:
                errors = {int(k): str(v) for k, v in (outcome.loaded.get("errors") or {}).items()}
                why = extract.explain_missing(q.id, cells, errors)
                verdict, msg = (V.ERROR, why) if why else \
                    (V.MISSING, f"no top-level function named `{q.id}` was found in the notebook")
            return judge.question_result(q, judge.same_for_all_cases(q, verdict, msg))
        results = []
        for c in q.cases:
            got = outcome.cases.get((q.id, c.name))
            if got is None:
                status = outcome.lost.get((q.id, c.name)) or {
                    "status": calls.CRASHED, "message": f"no result came back ({outcome.failure or 'unknown reason'})"}
                outputs = None
            else:
                status, payload = got
                outputs = None
                if status.get("status") == calls.OK:
                    try:
                        outputs = st_load(payload)
                    except Exception as exc:  # noqa: BLE001
                        status = {"status": calls.BAD_OUTPUT, "message": f"the output could not be read: {exc}"}
            results.append(pipeline.judge_case(q, c, status, outputs, prepared.case_files[(q.id, c.name)],
                                               timeout=self.policy.timeout, memory_mb=self.policy.memory_mb,
                                               mistake_cache=prepared.mistakes, inputs_cache=prepared.inputs))
        return judge.question_result(q, results)

    # -- lifetime -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._server_lock:
            if self._server is not None:
                self._retire(self._server)
                self._server = None
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def grade_notebook(path: str | Path, assignment: registry.Entry | str, *, timeout: float = DEFAULT_TIMEOUT,
                   memory_mb: int = DEFAULT_MEMORY_MB, load_timeout: float | None = None) -> list[V.Result]:
    """Grade one notebook in a sandboxed worker: one Result per question (cases inside)."""
    with Session(timeout=timeout, memory_mb=memory_mb, load_timeout=load_timeout) as session:
        return session.grade(path, assignment).results
