"""OS-level isolation for the worker that runs student code.

Levels, strongest first (see :func:`isolation_level`):

``namespace``
    Linux, run as root. The worker enters a private mount namespace (and private network and IPC namespaces
    when it can), mounts empty tmpfs over the instructor's folders (the repository: ``utils/reference``, hidden references,
    ``solutions/``, ``.git``...; the home folder; the submissions and output folders; ``/tmp``, ``/var/tmp``,
    ``/dev/shm``), bind-mounts back only what the worker needs (the Python installation, a public copy of
    ``utils`` and ``autograder``, the case inputs and its own working folder), then drops to a uid of its own
    (no capabilities, no new privileges, not dumpable). Student code cannot see, mount back, signal or trace
    anything of the grader's or of another submission's.
``process``
    Elsewhere. A separate ``python -I -S`` process with an explicit ``sys.path`` (no repository, no editable
    install), started in a folder holding only the student's code and case inputs; resource limits apply, but
    files on disk remain readable by absolute path.

Every function here runs in the worker, before any student code, except :func:`isolation_level` and
:func:`sweep_uid`, which the grader calls.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys
import time

NAMESPACE = "namespace"
PROCESS = "process"

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
#: Student processes get uid ``UID_BASE + worker pid``: unique among live workers, owning nothing on disk.
UID_BASE = 200000

_DESCRIPTION = {
    NAMESPACE: "mount, network and IPC namespaces hide the instructor's files; student code runs under its own "
               "unprivileged uid with time, memory and process limits",
    PROCESS: "separate python -I -S process with a clean sys.path and time/memory limits; instructor files are "
             "not on its path but stay readable by absolute path (run the grader as root on Linux for the "
             "namespace level)",
}


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg: int = 0) -> bool:
    libc = _libc()
    return bool(libc) and libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0


def describe(level: str) -> str:
    return _DESCRIPTION.get(level, level)


_LEVEL: str | None = None


def isolation_level() -> str:
    """The isolation this machine gives student code: ``"namespace"`` or ``"process"`` (probed once, in a fork).

    ``AUTOGRADER_ISOLATION=process`` in the environment forces the weaker level (to test the fallback)."""
    global _LEVEL
    if _LEVEL is None:
        _LEVEL = PROCESS
        libc = _libc()
        forced = os.environ.get("AUTOGRADER_ISOLATION") == PROCESS
        if not forced and libc is not None and os.geteuid() == 0 and hasattr(os, "fork"):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the probe child
                ok = b"0"
                try:
                    os.close(r)
                    _check(libc.unshare(CLONE_NEWNS), "unshare")
                    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make-private")
                    _check(libc.mount(b"tmpfs", b"/mnt" if os.path.isdir("/mnt") else b"/tmp", b"tmpfs", 0,
                                      b"size=1m"), "mount")
                    os.setresuid(UID_BASE, UID_BASE, UID_BASE)
                    ok = b"1"
                finally:
                    os.write(w, ok)
                    os._exit(0)
            os.close(w)
            ok = os.read(r, 1)
            os.close(r)
            os.waitpid(pid, 0)
            if ok == b"1":
                _LEVEL = NAMESPACE
    return _LEVEL


def _real(p: str) -> str:
    return os.path.realpath(p)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


#: System folders never covered (a grader started from ``/dev`` must not hide ``/dev/null``).
_SYSTEM = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
           "/sys", "/usr", "/var")


def _minimal(paths, system_ok: bool = True) -> list[str]:
    """Existing directories, deduplicated, without those nested in another one of the list (and, unless
    ``system_ok``, without system folders or their parents)."""
    out: list[str] = []
    for p in sorted({_real(p) for p in paths if p and os.path.isdir(p)}, key=len):
        if p in _SYSTEM and not system_ok:
            continue
        if p != "/" and not any(_inside(p, q) for q in out):
            out.append(p)
    return out


_PUBLIC_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def _hide_mounts(libc, hide: list[str], keep: list[str]) -> list[str]:
    """Cover ``hide`` with empty tmpfs, then bind ``keep`` back in place (via O_PATH fds opened beforehand)."""
    fds = {k: os.open(k, os.O_PATH | os.O_DIRECTORY) for k in keep}
    hidden = []
    try:
        def cover(h: str) -> None:
            opts = b"size=64m,mode=1777" if h in _PUBLIC_TMP else b"size=1m,mode=755"
            _check(libc.mount(b"tmpfs", h.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), f"mount tmpfs on {h}")
            hidden.append(h)
        for h in hide:
            if h not in keep:
                cover(h)
        for k, fd in fds.items():
            if any(_inside(k, h) for h in hidden):
                os.makedirs(k, exist_ok=True)
                _check(libc.mount(f"/proc/self/fd/{fd}".encode(), k.encode(), None, MS_BIND | MS_REC, None),
                       f"bind {k}")
                libc.mount(None, k.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None)
        for h in hide:  # hidden folders that live inside a folder bound back
            if h not in hidden and any(_inside(h, k) for k in keep):
                cover(h)
    finally:
        for fd in fds.values():
            os.close(fd)
    return hidden


def enter(hide: list[str], keep: list[str], workdir: str, namespace: bool = True) -> dict:
    """Isolate the current (single-threaded) worker process; returns what was achieved.

    ``hide``: folders student code must not see; ``keep``: folders it needs (bound back if covered);
    ``workdir``: the working folder (the student's code and nothing else); ``namespace=False`` forces the
    ``process`` level."""
    info: dict = {"level": PROCESS, "network": True, "uid": os.getuid(), "hidden": []}
    libc = _libc()
    if namespace and libc is not None and os.geteuid() == 0:
        try:
            _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
            info["network"] = libc.unshare(CLONE_NEWNET) != 0
            libc.unshare(CLONE_NEWIPC)  # no System V shared memory between submissions
            keep_m = _minimal(list(keep) + [workdir])
            hide_m = _minimal(list(hide) + [p for p in _PUBLIC_TMP if os.path.isdir(p)], system_ok=False)
            info["hidden"] = _hide_mounts(libc, hide_m, keep_m)
            uid = UID_BASE + os.getpid()
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            info.update(level=NAMESPACE, uid=uid)
            global PRIVATE_UID
            PRIVATE_UID = True
        except OSError as exc:
            if os.geteuid() == 0 and info.get("hidden"):
                raise  # half-isolated: never run student code like this
            info["error"] = str(exc)
    os.chdir(workdir)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    set_limit(resource.RLIMIT_CORE, 0)
    set_limit(resource.RLIMIT_FSIZE, 256 << 20)
    if info["level"] == NAMESPACE:
        set_limit(resource.RLIMIT_NPROC, 32)  # processes + threads of this private uid (fork bombs)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return info


def set_limit(which: int, value: int, soft_only: bool = False) -> None:
    """Lower a resource limit (best effort; never raises)."""
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard if soft_only else value))
    except (ValueError, OSError):
        pass


def virtual_memory_bytes() -> int:
    """This process's current virtual memory size (VmSize), 0 when unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def limit_memory(megabytes: int, soft_only: bool = False) -> None:
    """Allow ``megabytes`` more address space than this process uses now (RLIMIT_AS, or RLIMIT_DATA)."""
    extra = int(megabytes) << 20
    base = virtual_memory_bytes()
    if base:
        set_limit(resource.RLIMIT_AS, base + extra, soft_only)
    else:  # pragma: no cover - non-Linux
        set_limit(getattr(resource, "RLIMIT_DATA", resource.RLIMIT_AS), extra, soft_only)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; empty where /proc is missing)."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(name))
    return out


#: True once this process runs under a uid of its own (namespace level): it may then kill(-1) safely.
PRIVATE_UID = False


def _own_uid_others() -> bool:
    """Whether another process runs under this process's uid."""
    me, uid = os.getpid(), os.getuid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except OSError:
                pass
    return False


def kill_descendants() -> None:
    """Kill every process left below this one (orphans reparent here: we are a child subreaper). Under a
    private uid, kill every other process of that uid too (a fork bomb's grandchildren included)."""
    me = os.getpid()
    if PRIVATE_UID:
        for _ in range(50):
            try:
                os.kill(-1, signal.SIGKILL)  # never signals the caller itself
            except OSError:
                pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass
            if not _own_uid_others():
                break
            time.sleep(0.01)
    for _ in range(20):
        kids = children_of(me)
        if not kids:
            return
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        for k in kids:
            try:
                os.waitpid(k, 0)
            except ChildProcessError:
                pass


def sweep_uid(uid: int) -> int:
    """Grader side: SIGKILL every process running under a worker's private ``uid`` (escaped daemons included)."""
    if uid < UID_BASE:
        return 0
    killed = 0
    for _ in range(50):
        found = 0
        try:
            names = os.listdir("/proc")
        except OSError:
            return killed
        for name in names:
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid == uid:
                        os.kill(int(name), signal.SIGKILL)
                        found += 1
                except OSError:
                    pass
        killed += found
        if not found:
            break
        time.sleep(0.01)
    return killed


def sweep_orphans() -> int:
    """Grader side: kill processes left under a private uid whose worker is gone (e.g. a daemon a submission
    started before the grader itself was killed). The uid encodes its worker's pid, so this is exact."""
    if os.geteuid() != 0:
        return 0
    owners: dict[int, set[int]] = {}
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return 0
    for name in names:
        try:
            uid = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if uid >= UID_BASE:
            owners.setdefault(uid, set()).add(int(name))
    killed = 0
    for uid, pids in owners.items():
        if uid - UID_BASE not in pids:  # its worker (pid = uid - UID_BASE, under that uid) is gone
            killed += sweep_uid(uid)
    return killed


def exit_reason(returncode: int | None) -> str:
    """A student-readable reason for a process's end."""
    if returncode is None:
        return "the process ended unexpectedly"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        extra = {"SIGSEGV": " (segmentation fault)", "SIGKILL": " (killed; possibly out of memory)",
                 "SIGABRT": " (aborted)", "SIGBUS": " (bus error)", "SIGXCPU": " (CPU time limit)"}.get(name, "")
        return f"the process was killed by {name}{extra}"
    return f"the process exited with code {returncode} (os._exit, sys.exit or exit() in C code)"
