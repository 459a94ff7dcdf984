"""How ``python -m autograder grade`` starts: torch imported once for the grader and its fork server.

An exec'd fork server (:mod:`autograder.grade.forkserver`) imports torch a second time, about 1.2 s of CPU: a
fifth of what the grader's own processes cost for a class of 200. The command-line grader instead forks the server
from itself, right after importing torch and before it reads anything of the course (:func:`start`). The forked
server must be the exec'd one's equal: student code runs in its children and can read all of their memory, and a
grade must not depend on how the server started. So:

* **The grader re-execs itself once, first thing, in the exec'd server's conditions**
  (:func:`startup_env`). It starts with the policy's worker environment (``PYTHONHASHSEED=0``: an interpreter's
  hash seed is fixed when it starts; one thread for OpenMP and BLAS, which size their pools when torch is imported;
  ``LANG=C.UTF-8``...) plus the few variables that say where its packages are. Nothing else of the instructor's
  environment, which may hold secrets, is ever in its memory before the fork: the whole environment travels in an
  anonymous memory file that the grader reads back after the fork (so what is read only when a process starts or
  torch is imported, such as ``OPENBLAS_NUM_THREADS`` or ``MALLOC_ARENA_MAX``, is the policy's in the grader too:
  it grades with one thread anyway). The grader hashes with a known key too: Python hashes strings with SipHash,
  and a slow dict needs keys that collide in their full 64-bit hashes, which a known key does not make practical.
* **It forks only from a plain start**: exactly ``python -m autograder ...``, no interpreter options (``-O``
  would strip the students' ``assert`` statements, ``-W error`` would turn their warnings into errors...).
* **The forked server** (:func:`_zygote`) takes the policy's environment, forgets the engine modules it inherited
  (they came from the repository, beside the questions and references), puts the import system back to what
  ``python -S`` has (an editable install's finder would find ``utils.reference`` in the repository) and then waits
  for the configuration an exec'd server reads from its file; the first
  :class:`~autograder.grade.forkserver.ForkServer` with the same policy environment adopts it (:func:`adopt`).
  The server checks that the references cannot be imported, however it started.

Best effort throughout: wherever a step fails or a condition does not hold, the server is exec'd as usual.
Imports at the top are the standard library's and the policy's only: :func:`start` runs before torch is imported.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
from typing import Mapping

from autograder.grade.policy import WORKER_ENV

#: The environment variable that names the memory file holding the grader's whole environment (re-exec'd process).
ENV_FD = "_AUTOGRADER_ENV_FD"
_MEMFD_NAME = "autograder-environment"

#: What the re-exec'd grader keeps of the user's environment: where its interpreter finds the standard library and
#: its packages. Everything else it starts with is :data:`~autograder.grade.policy.WORKER_ENV`.
LOCATION_NAMES = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "PYTHONSAFEPATH",
                  "PYTHONPLATLIBDIR", "HOME")

#: ``(pid, socket, the policy environment it started with)`` of the server :func:`start` forked, until a
#: :class:`ForkServer` adopts it.
_PREFORKED: tuple[int, socket.socket, dict[str, str]] | None = None

#: Modules that read the environment when they are imported (torch imports them): imported again by the grader
#: once its own environment is back (the server keeps the policy's: ``TQDM_DISABLE=1``).
_READ_ENV_AT_IMPORT = ("tqdm",)


def startup_env(environ: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """The environment the re-exec'd grader starts with: the policy's worker environment and the user's
    :data:`LOCATION_NAMES` (``environ``: ``os.environb``). Never the policy's ``HOME`` (``/tmp``): ``site`` would
    read a user site folder there that anyone can write to."""
    env = {k.encode(): v.encode() for k, v in WORKER_ENV.items() if k != "HOME"}
    env.update({n.encode(): environ[n.encode()] for n in LOCATION_NAMES if n.encode() in environ})
    return env


def pack_env(environ: Mapping[bytes, bytes]) -> bytes:
    """``environ`` as ``NAME=value`` entries separated by NUL bytes (neither can hold one)."""
    return b"\0".join(k + b"=" + v for k, v in environ.items())


def unpack_env(data: bytes) -> dict[bytes, bytes]:
    """The inverse of :func:`pack_env`; entries without a usable name are left out."""
    out = {}
    for entry in data.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name:
            out[name] = value
    return out


def plain_start() -> bool:
    """Whether this process is ``python -m autograder ...`` with no interpreter option, on Linux, where the
    forked server can be the exec'd one's equal."""
    argv, orig = sys.argv, getattr(sys, "orig_argv", None)
    return (sys.platform.startswith("linux") and hasattr(os, "memfd_create") and bool(sys.executable)
            and os.path.isdir("/proc/self/fd")
            and orig is not None and orig[1:3] == ["-m", "autograder"] and orig[3:] == argv[1:]
            and not sys.flags.ignore_environment and not sys.flags.optimize and not sys.flags.dev_mode
            and not sys.flags.bytes_warning and not sys.warnoptions and not sys._xoptions)


def start() -> None:
    """Called first thing by ``python -m autograder grade``, before anything of the course is read.

    In the process the user started it re-execs the same command line in the exec'd server's conditions (it does
    not return, unless the exec fails). In the re-exec'd process it imports torch, forks the fork server and
    restores the user's whole environment in ``os.environ``."""
    fd = os.environ.get(ENV_FD)
    if fd is None:
        if _PREFORKED is None and plain_start():
            _reexec()
        return
    env_fd = _our_memfd(fd)
    if env_fd is None:  # not ours (a stray variable): never fork from an environment we did not choose
        os.environ.pop(ENV_FD, None)
        return
    try:
        expected = startup_env(os.environb)
        expected[ENV_FD.encode()] = fd.encode()
        if sys.flags.hash_randomization == 0 and dict(os.environb) == expected:
            _fork_server(env_fd)
    finally:
        _restore_env(env_fd)


def _our_memfd(value: str) -> int | None:
    try:
        fd = int(value)
        return fd if os.readlink(f"/proc/self/fd/{fd}").startswith(f"/memfd:{_MEMFD_NAME}") else None
    except (ValueError, OSError):
        return None


def _reexec() -> None:
    import fcntl

    try:
        fd = os.memfd_create(_MEMFD_NAME, 0)  # no MFD_CLOEXEC: the re-exec'd process reads it
    except OSError:
        return
    try:
        if fd < 3:  # the user started us with a standard stream closed: keep it closed
            high = fcntl.fcntl(fd, fcntl.F_DUPFD, 3)
            os.close(fd)
            fd = high
        view = memoryview(pack_env(os.environb))
        while view:
            view = view[os.write(fd, view):]
        env = startup_env(os.environb)
        env[ENV_FD.encode()] = str(fd).encode()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except (OSError, ValueError):
        os.close(fd)


def _restore_env(fd: int) -> None:
    """Replace ``os.environ`` (the startup environment) with the whole environment in memory file ``fd``."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        with open(fd, "rb") as f:
            data = f.read()
    except OSError:
        os.environ.pop(ENV_FD, None)
        return
    os.environb.clear()
    for name, value in unpack_env(data).items():
        try:
            os.environb[name] = value
        except (OSError, ValueError):  # a name putenv refuses
            pass
    for name in [m for m in sys.modules if m.split(".")[0] in _READ_ENV_AT_IMPORT]:
        del sys.modules[name]


def _fork_server(env_fd: int) -> None:
    global _PREFORKED
    import warnings

    pid, sockets = None, ()
    try:
        import torch  # noqa: F401 - what the server inherits instead of importing it again

        sockets = mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork() with threads (OpenMP's) alive
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked server
            try:
                mine.close()
                os.close(env_fd)
                _zygote(theirs)
            finally:
                os._exit(70)
        theirs.close()
        _PREFORKED = (pid, mine, dict(WORKER_ENV))
    except Exception:  # noqa: BLE001 - best effort: the server will be exec'd
        if pid:
            _ForkedProcess(pid).kill()
        for sock in sockets:
            sock.close()


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

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.wait()


def adopt(config: dict) -> tuple[_ForkedProcess, socket.socket] | None:
    """Hand ``config`` to the server :func:`start` forked; None when there is none, it is gone, or ``config``'s
    policy environment is not the one it started with (it imported torch under that one)."""
    global _PREFORKED
    if _PREFORKED is None:
        return None
    pid, sock, started_with = _PREFORKED
    _PREFORKED = None
    proc = _ForkedProcess(pid)
    try:
        if config.get("env") != started_with:
            raise OSError("another policy environment")
        if proc.poll() is not None:
            raise OSError("the preforked server ended")
        sock.sendall(json.dumps(config).encode() + b"\n")
    except OSError:
        sock.close()
        proc.kill()
        return None
    return proc, sock


def _standard_imports() -> None:
    """Put the import system back to what ``python -S`` has: no finder or hook that ``site`` (``.pth`` files: an
    editable install's finder maps ``utils`` and ``autograder`` to the repository) added, none of their modules,
    none of the builtins ``site`` adds (``help``, ``exit``...: student code gets the same names either way)."""
    import builtins
    import importlib.machinery as machinery
    import zipimport

    for name in ("help", "exit", "quit", "copyright", "credits", "license"):
        builtins.__dict__.pop(name, None)
    sys.meta_path[:] = [f for f in sys.meta_path
                        if f in (machinery.BuiltinImporter, machinery.FrozenImporter, machinery.PathFinder)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if h is zipimport.zipimporter
                         or getattr(h, "__qualname__", "").startswith("FileFinder.path_hook")]
    for name in [m for m in sys.modules if m.startswith("__editable__") or m == "_distutils_hack"
                 or m.split(".")[0] in ("autograder", "utils")]:
        del sys.modules[name]
    sys.path_importer_cache.clear()


def _zygote(sock: socket.socket) -> None:  # pragma: no cover - the forked server
    """The forked server until it is adopted: its own session, killed with the grader; then it waits for the
    configuration, takes the policy's environment and becomes the server
    (:func:`~autograder.grade.forkserver.run_server`)."""
    import time
    import types

    from autograder.grade import isolation
    from autograder.grade.forkserver import run_server

    os.setsid()
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:  # the grader ended without adopting it
            os._exit(0)
        line += chunk
    config = json.loads(line)
    os.environ.clear()
    os.environ.update(config["env"])
    time.tzset()
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, sock.fileno())
    os.closerange(sock.fileno() + 1, 1 << 16)
    os.chdir(config["cwd"])
    # What the exec'd server would have: its own command line and main module, the standard import system, and
    # the engine imported from the public copy only.
    sys.argv[:] = [os.path.join(config["cwd"], "autograder", "grade", "forkserver.py")]
    sys.modules["__main__"] = types.ModuleType("__main__")
    sys.modules.pop("__mp_main__", None)
    _standard_imports()
    run_server(config, sock)
