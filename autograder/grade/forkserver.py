"""The fork server, both ends: the grader's :class:`ForkServer` handle and the server process (:func:`serve`).

The grader starts ``python -s -S -P <lib>/autograder/grade/forkserver.py CONFIG.json CONTROL_FD`` once per batch,
with the policy's environment only (not ``-I``: that would ignore its ``PYTHONHASHSEED=0``, and the workers inherit
the server's hash seed). The server imports torch, the engine and the public ``utils`` (never student code), runs
the per-case machinery once so its lazy initialisation is inherited, reads each assignment's case inputs (and
builds their models) the first time a plan names them, and per submission forks a supervisor, which forks the
worker (:mod:`autograder.grade.worker`).
A submission therefore costs a fork instead of an interpreter start.

``python -m autograder grade`` saves that interpreter's torch import: it forks the server from itself before it
reads anything of the course (:mod:`autograder.grade.prefork`), and the first :class:`ForkServer` adopts that one.
Anywhere else (``grade_folder`` called from Python, a restart after the server died) the server is exec'd as above.

The socket carries one request per submission: a JSON line ``{"plan": path, "cases": [case input files not named
before]}`` with the result pipe's write end and the worker's progress file attached (SCM_RIGHTS); the answer is a
JSON line ``{"pid": supervisor pid}``. The server's first line is ``{"ready": true}``.

Imports at the top are the standard library's only: the server sets ``sys.path`` before it imports anything else.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

#: Modules the fork server imports before any student code, so a notebook's setup imports cost nothing per
#: submission. ``utils.*`` stands for every public ``utils`` module (the worker's copy has no ``reference/``).
PRELOAD = ["numpy", "torch.nn", "torch.nn.functional", "matplotlib", "matplotlib.pyplot", "tqdm.auto", "utils",
           "utils.*", "autograder", "autograder.kernel.selfcheck"]


class ForkServerError(Exception):
    """The fork server did not start."""


# -- the grader's end -------------------------------------------------------------------------------------------

class ForkServer:
    """A ``python -s -S -P`` process (or one forked from the command-line grader in the same conditions) that has
    imported torch and the engine (never student code) and forks one fresh supervisor + worker per submission, so a
    submission costs a fork instead of an interpreter start."""

    def __init__(self, lib: Path, sys_path: list[str], log_path: Path, env: dict[str, str],
                 startup_timeout: float = 180.0):
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.lock = threading.Lock()
        config = {"sys_path": sys_path, "preload": PRELOAD}
        from autograder.grade.prefork import adopt

        adopted = adopt({**config, "cwd": str(lib), "env": dict(env), "log": str(log_path)})
        #: how this server started: "forked" (from the command-line grader, see :mod:`autograder.grade.prefork`)
        #: or "exec"
        self.started = "forked" if adopted is not None else "exec"
        if adopted is not None:
            self.proc, self.sock = adopted
        else:
            config_path = log_path.with_suffix(".json")
            config_path.write_text(json.dumps(config))
            os.chmod(config_path, 0o644)
            self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            safe_path = ["-P"] if sys.version_info >= (3, 11) else []  # not the script's folder on sys.path
            with open(log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-s", "-S", *safe_path, str(lib / "autograder" / "grade" / "forkserver.py"),
                     str(config_path), str(theirs.fileno())],
                    cwd=lib, env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    pass_fds=[theirs.fileno()], start_new_session=True)
            theirs.close()
        self._ready = False  # checked at the first spawn: the interpreter starts while the grader prepares
        self._cases_sent: set[str] = set()
        #: CPU seconds (user + system) set by :meth:`close`: ``{"workers": the supervisors and workers this server
        #: started, as their reaper (``os.wait4``) saw them, "fork_server": the server's own}``; None if the server
        #: did not report (it died).
        self.cpu_s: dict[str, float] | None = None

    def _wait_ready(self) -> None:
        self.sock.settimeout(self.startup_timeout)
        try:
            ready = self._line()
        except OSError as exc:
            ready = f"no answer ({exc})"
        if '"ready"' not in ready:
            raise ForkServerError(f"the grading fork server did not start: {ready}\n{self.log_tail()}")
        self.sock.settimeout(60)
        self._ready = True

    def _line(self) -> str:
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data.decode()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, plan: Path, result_fd: int, cases: list[str] = (), progress_fd: int | None = None) -> int:
        """Start a worker for ``plan`` writing frames to ``result_fd``; returns its supervisor's pid (a process
        group leader: kill the group to stop the worker). ``cases``: the case input files the plan names (the
        server reads those it has not read yet before it forks, so that every worker inherits them).
        ``progress_fd``: a file the worker writes the cell it is loading into (see :mod:`autograder.grade.worker`)."""
        with self.lock:
            if not self._ready:
                self._wait_ready()
            new = [c for c in cases if c not in self._cases_sent]  # the server keeps what it read: name each once
            self._cases_sent.update(new)
            request = json.dumps({"plan": str(plan), "cases": new}).encode()
            socket.send_fds(self.sock, [request], [result_fd] + ([progress_fd] if progress_fd is not None else []))
            return int(json.loads(self._line())["pid"])

    def close(self) -> None:
        """End the fork server. Asked first (end of requests), it reaps its last workers and answers with the CPU
        seconds of every process it reaped and its own (:attr:`cpu_s`); it is killed after at most a few seconds."""
        try:
            if not self._ready:  # never asked to start a worker
                self.cpu_s = {"workers": 0.0, "fork_server": 0.0}
            else:
                self.sock.shutdown(socket.SHUT_WR)
                self.sock.settimeout(5)
                report = json.loads(self._line())
                self.cpu_s = {"workers": float(report["workers_cpu_s"]), "fork_server": float(report["cpu_s"])}
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            self.sock.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()


# -- the server's end -------------------------------------------------------------------------------------------

def _preload(modules: list[str]) -> None:
    """Import ``modules`` (``pkg.*``: every module of ``pkg``); a failure is left for the student's own import."""
    import importlib
    import pkgutil

    for name in modules:
        names = [name]
        if name.endswith(".*"):
            try:
                pkg = importlib.import_module(name[:-2])
                names = [m.name for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
            except Exception:  # noqa: BLE001
                names = []
        for mod in names:
            try:
                importlib.import_module(mod)
            except Exception:  # noqa: BLE001 - the student's own import will report it
                pass


def _cache_cases(files: object) -> None:
    """Read the case input files a request names that are not cached yet (a worker reads them itself if this
    fails)."""
    from autograder.core import casefile
    from autograder.grade.worker import CASES

    if not isinstance(files, list):
        return
    for file in files:
        if isinstance(file, str) and file not in CASES:
            try:
                CASES[file] = case = casefile.read(file)
                casefile.build_args(case)  # builds (and caches) its models once, here
            except Exception:  # noqa: BLE001
                pass


def _warm_up() -> None:
    """Run the per-case machinery once (seeding, a call, serializing), so that the lazy initialisation it
    triggers is done here, once, instead of in every forked child."""
    import torch
    from safetensors.torch import save

    from autograder.core import calls

    _, outputs = calls.run(lambda x: (x * 2).sum(0), {"x": torch.ones(2, 3)}, seed=0)
    save(outputs)


_HUGE = 2 << 20        # the x86-64 / arm64 (4 KiB base pages) transparent huge page
_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25    # Linux >= 6.1; elsewhere madvise fails with EINVAL and nothing changes


def _huge_pages(min_bytes: int = 4 << 20) -> None:
    """Back the server's large private writable memory (the heap and big anonymous mappings, a few hundred MB
    after importing torch) with transparent huge pages, now (``MADV_COLLAPSE``).

    ``fork`` copies the parent's page tables and takes a reference on every anonymous page it maps; with 4 KiB
    pages that is ~80,000 pages per fork (about 10 ms of the server's CPU per submission, measured), with 2 MiB
    pages a few hundred entries (about 2 ms). A child that writes to a shared huge page gets a 4 KiB copy, as
    before. Best effort: where huge pages are off or unsupported nothing changes."""
    from autograder.grade import isolation

    libc = isolation._libc()
    if not libc:
        return
    try:
        import ctypes

        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps", encoding="ascii") as f:
            maps = f.read().splitlines()
        for line in maps:
            fields = line.split()
            if len(fields) < 2 or "w" not in fields[1] or "p" not in fields[1]:
                continue
            if len(fields) >= 6 and fields[5] != "[heap]":  # a file mapping, the stack, vdso...
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            lo, hi = -(-lo // _HUGE) * _HUGE, hi // _HUGE * _HUGE
            if hi - lo >= min_bytes and libc.madvise(lo, hi - lo, _MADV_HUGEPAGE) == 0:
                libc.madvise(lo, hi - lo, _MADV_COLLAPSE)
    except Exception:  # noqa: BLE001 - an optimisation only
        pass


#: Children reaped by the server and their CPU seconds (user + system, from ``os.wait4``).
_REAPED = [0, 0.0]


def _reap(block: bool) -> None:
    """Reap finished children with ``os.wait4`` and add their CPU time to :data:`_REAPED`; ``block``: until none
    is left."""
    while True:
        try:
            pid, _, usage = os.wait4(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _REAPED[0] += 1
        _REAPED[1] += usage.ru_utime + usage.ru_stime


def serve(config_path: str, control_fd: int) -> None:  # pragma: no cover - the fork server process
    """The fork server: import torch and the engine once, then fork one supervisor + worker per request.

    Requests arrive on a Unix socket: a JSON line ``{"plan": path, "cases": [...]}`` with the result pipe's write
    end and the progress file attached (SCM_RIGHTS); the reply is ``{"pid": supervisor pid}``. This process never
    runs student code."""
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    run_server(config, socket.socket(fileno=control_fd))


def _refuse_if_references_import() -> None:  # pragma: no cover - the fork server process
    """End the server (before it says it is ready) if student code could import the references or the case files:
    whichever way it started, its import system must be the public copy's alone."""
    import importlib.util

    for hidden in ("utils.reference", "autograder.cases"):
        try:
            found = importlib.util.find_spec(hidden)
        except (ImportError, ValueError):
            found = None
        if found is not None:
            where = found.origin or found.submodule_search_locations
            print(f"refusing to start: {hidden} can be imported from {where}", file=sys.stderr, flush=True)
            os._exit(3)


def run_server(config: dict, sock: socket.socket) -> None:  # pragma: no cover - the fork server process
    """:func:`serve` from its configuration on: both the exec'd and the forked server
    (:mod:`autograder.grade.prefork`) run this."""
    sys.path[:] = config["sys_path"]
    from autograder.grade import isolation
    from autograder.grade.worker import supervise

    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    _preload(["autograder.core.calls", "autograder.core.casefile", "autograder.core.extract", "autograder.grade.protocol",
              "safetensors.torch", *config.get("preload", [])])
    _refuse_if_references_import()
    _warm_up()
    # What is alive now is never collected: a collection would write to every object's header, and each page it
    # writes that a running child still shares is then copied (in this process: its CPU). Not even once before the
    # freeze: that costs ~0.1 s and frees only the imports' few cycles. Huge pages: see there.
    import gc

    gc.freeze()
    _huge_pages()
    # Supervisors (and orphaned workers we adopt as subreaper) are reaped here, with their CPU time: a child left to
    # the kernel's automatic reaping (SIGCHLD ignored) would take its CPU time out of every rusage account.
    signal.signal(signal.SIGCHLD, lambda *_: _reap(False))
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    sock.sendall(b'{"ready": true}\n')
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
        except OSError:
            os._exit(0)
        if not msg or not fds:  # the grader is done: wait for the last workers, say what they used, end
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _reap(True)
            try:
                import resource

                own = resource.getrusage(resource.RUSAGE_SELF)
                sock.sendall(json.dumps({"reaped": _REAPED[0], "workers_cpu_s": round(_REAPED[1], 4),
                                         "cpu_s": round(own.ru_utime + own.ru_stime, 4)}).encode() + b"\n")
            except OSError:
                pass
            os._exit(0)
        request = json.loads(msg)
        _cache_cases(request.get("cases"))
        pid = os.fork()
        if pid == 0:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
            supervise(request["plan"], fds[0], fds[1] if len(fds) > 1 else None)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
