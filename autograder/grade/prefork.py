"""How ``python -m autograder grade`` starts: torch imported once for the grader and its fork server.

An exec'd fork server (:mod:`autograder.grade.forkserver`) imports torch a second time, about 1.2 s of CPU: a
fifth of what the grader's own processes cost for a class of 200. The command-line grader instead forks the server
from itself, right after importing torch and before it reads anything of the course (:func:`start`). Two things an
exec'd server gets for free are arranged first:

* **The hash seed.** Workers run with the policy's ``PYTHONHASHSEED=0`` (the same set and dict orders in every
  regrade), and an interpreter's hash seed is fixed when it starts. So the grader re-execs itself once, first
  thing, with ``PYTHONHASHSEED=0``, and hashes with that known key too. (Python hashes strings with SipHash: to slow
  a dict down, keys must collide in their full 64-bit hashes, which a known key does not make practical.)
* **The environment.** Student code can read all of the server's memory (it runs in the server's children), and an
  instructor's environment may hold secrets. The re-exec'd grader starts with only the variables that say where
  software is and how the interpreter is set up (:func:`startup_env`); the whole environment travels in an
  anonymous memory file that the grader reads after the fork. The server never holds it.

The forked server (:func:`_zygote`) forgets the engine modules it inherited (they came from the repository, beside
the questions and references) and waits for the configuration an exec'd server reads from its file; the first
:class:`~autograder.grade.forkserver.ForkServer` adopts it (:func:`adopt`). Best effort throughout: wherever a step
fails (no ``memfd_create``, ``python -E``), the server is exec'd as usual.

Imports at the top are the standard library's only: :func:`start` runs before anything else is imported.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
from typing import Mapping

#: The environment variable that names the memory file holding the grader's whole environment (re-exec'd process).
ENV_FD = "_AUTOGRADER_ENV_FD"

#: What the re-exec'd grader (and so the forked server's memory) starts with: these names, and names with these
#: prefixes. Where software is, how text is encoded, how the interpreter, the C library and torch are set up.
STARTUP_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
                           "VIRTUAL_ENV", "LD_LIBRARY_PATH", "LD_PRELOAD", "GLIBC_TUNABLES", "MPLBACKEND",
                           "MPLCONFIGDIR", "NO_COLOR"})
STARTUP_PREFIXES = ("LC_", "PYTHON", "CONDA_", "CUDA_", "TORCH_", "PYTORCH_", "OMP_", "MKL_", "KMP_")

#: ``(pid, socket)`` of the server :func:`start` forked, until a :class:`ForkServer` adopts it.
_PREFORKED: tuple[int, socket.socket] | None = None


def startup_env(environ: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """The part of ``environ`` (``os.environb``) the re-exec'd grader starts with (see :data:`STARTUP_NAMES`)."""
    keep = {n.encode() for n in STARTUP_NAMES}
    prefixes = tuple(p.encode() for p in STARTUP_PREFIXES)
    return {k: v for k, v in environ.items() if k in keep or k.startswith(prefixes)}


def pack_env(environ: Mapping[bytes, bytes]) -> bytes:
    """``environ`` as ``NAME=value`` entries separated by NUL bytes (neither can hold one)."""
    return b"\0".join(k + b"=" + v for k, v in environ.items())


def unpack_env(data: bytes) -> dict[bytes, bytes]:
    """The inverse of :func:`pack_env`."""
    out = {}
    for entry in data.split(b"\0"):
        if entry:
            name, _, value = entry.partition(b"=")
            out[name] = value
    return out


def start() -> None:
    """Called first thing by ``python -m autograder grade``, before anything of the course is read.

    In the process the user started it re-execs the same command line with ``PYTHONHASHSEED=0`` and the startup
    environment (it does not return, unless the exec fails). In the re-exec'd process it imports torch, forks the
    fork server and restores the user's whole environment in ``os.environ``."""
    fd = os.environ.get(ENV_FD)
    if fd is None:
        if _PREFORKED is None and sys.platform.startswith("linux") and hasattr(os, "memfd_create") \
                and sys.executable:
            _reexec()
        return
    try:
        env_fd = int(fd)
    except ValueError:
        os.environ.pop(ENV_FD, None)
        return
    try:
        if sys.flags.hash_randomization == 0:  # PYTHONHASHSEED=0 took effect (not under ``python -E`` or ``-I``)
            _fork_server(env_fd)
    finally:
        _restore_env(env_fd)


def _reexec() -> None:
    try:
        fd = os.memfd_create("autograder-environment", 0)  # no MFD_CLOEXEC: the re-exec'd process reads it
    except OSError:
        return
    try:
        view = memoryview(pack_env(os.environb))
        while view:
            view = view[os.write(fd, view):]
        env = startup_env(os.environb)
        env.update({b"PYTHONHASHSEED": b"0", ENV_FD.encode(): str(fd).encode()})
        env[b"GLIBC_TUNABLES"] = b":".join(filter(None, [env.get(b"GLIBC_TUNABLES"), b"glibc.malloc.hugetlb=1"]))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError:
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
    os.environb.update(unpack_env(data))


def _fork_server(env_fd: int) -> None:
    global _PREFORKED
    import torch  # noqa: F401 - what the server inherits instead of importing it again

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked server
        try:
            mine.close()
            os.close(env_fd)
            _zygote(theirs)
        finally:
            os._exit(70)
    theirs.close()
    _PREFORKED = (pid, mine)


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


def adopt(config: dict) -> tuple[_ForkedProcess, socket.socket] | None:
    """Hand ``config`` to the server :func:`start` forked; None when there is none (or it is gone)."""
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


def _zygote(sock: socket.socket) -> None:  # pragma: no cover - the forked server
    """The forked server until it is adopted: its own session, killed with the grader; then it waits for the
    configuration, takes the policy's environment and becomes the server
    (:func:`~autograder.grade.forkserver.run_server`)."""
    import ctypes

    from autograder.grade.forkserver import run_server

    os.setsid()
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:  # the grader ended without adopting it
            os._exit(0)
        line += chunk
    config = json.loads(line)
    os.environ.clear()
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
    run_server(config, sock)
