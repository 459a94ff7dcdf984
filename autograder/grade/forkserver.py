"""The fork server, both ends: the grader's :class:`ForkServer` handle and the server process (:func:`serve`).

The grader starts ``python -I -S <lib>/autograder/grade/forkserver.py CONFIG.json CONTROL_FD`` once per batch. The
server imports torch, the engine and the public ``utils`` (never student code), runs the per-case machinery once so
its lazy initialisation is inherited, reads each assignment's case inputs (and builds their models) the first time
a plan names them, and per submission forks a supervisor, which forks the worker (:mod:`autograder.grade.worker`).
A submission therefore costs a fork instead of an interpreter start.

``python -m autograder grade`` saves that interpreter's torch import (about a second of CPU, a sixth of what the
grader's own processes cost for a class of 200): first thing, before it reads anything of the course, it imports
torch and forks the server from itself (:func:`prefork`). The forked server overwrites the environment it inherited
(:func:`_scrub_environ`), forgets the modules it did not import itself and then waits for the same configuration an
exec'd server reads from its file; the first :class:`ForkServer` adopts it. Anywhere else (``grade_folder`` called
from Python, a restart after the server died) the server is exec'd as above.

The socket carries one request per submission: a JSON line ``{"plan": path, "cases": [case input files]}`` with
the result pipe's write end
attached (SCM_RIGHTS); the answer is a JSON line ``{"pid": supervisor pid}``. The server's first line is
``{"ready": true}``.

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
    """A ``python -I -S`` process that has imported torch and the engine (never student code) and forks one
    fresh supervisor + worker per submission, so a submission costs a fork instead of an interpreter start."""

    def __init__(self, lib: Path, sys_path: list[str], log_path: Path, env: dict[str, str],
                 startup_timeout: float = 180.0):
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.lock = threading.Lock()
        config = {"sys_path": sys_path, "preload": PRELOAD}
        adopted = _adopt_preforked({**config, "cwd": str(lib), "env": dict(env), "log": str(log_path)})
        #: how this server started: "forked" (from the grader, see :func:`prefork`) or "exec"
        self.started = "forked" if adopted is not None else "exec"
        if adopted is not None:
            self.proc, self.sock = adopted
        else:
            config_path = log_path.with_suffix(".json")
            config_path.write_text(json.dumps(config))
            os.chmod(config_path, 0o644)
            self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with open(log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(lib / "autograder" / "grade" / "forkserver.py"), str(config_path),
                     str(theirs.fileno())],
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

    def spawn(self, plan: Path, result_fd: int, cases: list[str] = ()) -> int:
        """Start a worker for ``plan`` writing frames to ``result_fd``; returns its supervisor's pid (a process
        group leader: kill the group to stop the worker). ``cases``: the case input files the plan names (the
        server reads those it has not read yet before it forks, so that every worker inherits them)."""
        with self.lock:
            if not self._ready:
                self._wait_ready()
            new = [c for c in cases if c not in self._cases_sent]  # the server keeps what it read: name each once
            self._cases_sent.update(new)
            request = json.dumps({"plan": str(plan), "cases": new}).encode()
            socket.send_fds(self.sock, [request], [result_fd])
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


# -- the server forked from the command-line grader (see the module's docstring) ----------------------------------

#: ``(pid, socket)`` of the server :func:`prefork` forked, until a :class:`ForkServer` adopts it.
_PREFORKED: tuple[int, socket.socket] | None = None


class _ForkedProcess:
    """The little of :class:`subprocess.Popen` that :class:`ForkServer` uses, for a child forked by hand."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            try:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            except ChildProcessError:
                self.returncode = -1
        return self.returncode


def prefork() -> None:
    """Import torch and fork the fork server from this process, to be adopted by the first :class:`ForkServer`.

    Only for a process that has read nothing of the course yet (no question file, no reference, no case file: the
    server's memory is a copy of this process's, and student code runs in its children); ``python -m autograder
    grade`` calls it first thing. Best effort: if anything fails, the server is exec'd as usual."""
    global _PREFORKED
    if _PREFORKED is not None or not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return
    import torch  # noqa: F401 - what the server inherits instead of importing it again

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked server
        try:
            mine.close()
            _zygote(theirs)
        finally:
            os._exit(70)
    theirs.close()
    _PREFORKED = (pid, mine)


def _adopt_preforked(config: dict) -> tuple[_ForkedProcess, socket.socket] | None:
    """Hand ``config`` to the server :func:`prefork` forked; None when there is none (or it is gone)."""
    global _PREFORKED
    if _PREFORKED is None:
        return None
    pid, sock = _PREFORKED
    _PREFORKED = None
    proc = _ForkedProcess(pid)
    try:
        if proc.poll() is not None:
            raise OSError("the preforked server ended")
        sock.sendall(json.dumps(config).encode() + b"\n")
    except OSError:
        sock.close()
        if proc.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        return None
    return proc, sock


def _scrub_environ() -> None:
    """Overwrite the environment this process was started with, everywhere it lies in memory, and empty it.

    The forked server's memory is a copy of the grader's, whose environment may hold an instructor's secrets, and
    student code runs in the server's children, where it can read all of their memory. The environment lies in the
    block the kernel wrote at the top of the stack (``env_start`` to ``env_end`` in ``/proc/self/stat``), in the C
    library's list of pointers into it, and in Python's copies (``os.environ``, ``posix.environ``: bytes objects).
    Raises OSError when the block cannot be found (the caller then gives up on the forked server)."""
    import ctypes
    import posix

    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])  # proc(5): fields 50 and 51; `fields` starts at field 3
    if not 0 < start < end:
        raise OSError("no environment block in /proc/self/stat")
    ctypes.memset(start, 0, end - start)
    offset = sys.getsizeof(b"") - 1  # where a bytes object's characters start (CPython)
    for mapping in (os.environ._data, posix.environ):  # type: ignore[attr-defined]
        for item in [*mapping.keys(), *mapping.values()]:
            if isinstance(item, bytes) and len(item) > 1:  # never the shared one-character singletons
                ctypes.memset(id(item) + offset, 0, len(item))
    libc = ctypes.CDLL(None)
    libc.clearenv()
    os.environ._data.clear()  # type: ignore[attr-defined] # not .clear(): unsetenv on overwritten names
    posix.environ.clear()


def _zygote(sock: socket.socket) -> None:  # pragma: no cover - the forked server
    """The forked server until it is adopted: its own session, killed with the grader, its inherited environment
    overwritten; then it waits for the configuration and becomes the server (:func:`_serve`)."""
    import ctypes

    os.setsid()
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    _scrub_environ()
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:  # the grader ended without adopting it
            os._exit(0)
        line += chunk
    config = json.loads(line)
    os.environ.update(config["env"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, sock.fileno())
    os.closerange(sock.fileno() + 1, 1 << 16)
    os.chdir(config["cwd"])
    # The engine's modules this process imported came from the repository (the questions and references beside
    # them): forget them, so that everything imports from the public copy, as in an exec'd server.
    for name in [m for m in sys.modules if m.split(".")[0] in ("autograder", "utils")]:
        del sys.modules[name]
    sys.path_importer_cache.clear()
    _serve(config, sock)


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
    end attached (SCM_RIGHTS); the reply is ``{"pid": supervisor pid}``. This process never runs student code."""
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    _serve(config, socket.socket(fileno=control_fd))


def _serve(config: dict, sock: socket.socket) -> None:  # pragma: no cover - the fork server process
    """:func:`serve` from its configuration on: both the exec'd and the forked server run this."""
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
    _warm_up()
    # What is alive now is never collected: a collection would write to every object's header, and each page it
    # writes that a running child still shares is then copied (in this process: its CPU). Huge pages: see there.
    import gc

    gc.collect()
    gc.freeze()
    _huge_pages()
    # Supervisors (and orphaned workers we adopt as subreaper) are reaped here, with their CPU time: a child left to
    # the kernel's automatic reaping (SIGCHLD ignored) would take its CPU time out of every rusage account.
    signal.signal(signal.SIGCHLD, lambda *_: _reap(False))
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    sock.sendall(b'{"ready": true}\n')
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
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
            supervise(request["plan"], fds[0])
        os.close(fds[0])
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
