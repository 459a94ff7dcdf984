"""OS-level isolation for the worker that runs student code.

Levels, strongest first (see :func:`isolation_level`):

``namespace``
    Linux, run as root. The supervisor gives the worker a PID namespace of its own (the worker is its pid 1: the
    kernel ends every process left in it when the worker ends, so nothing escapes and the grader never has to
    hunt for processes by uid). The worker enters private mount, network, IPC and UTS namespaces and switches to
    a root file system built for it from an allow-list (:func:`_build_root`): read-only system software, the
    Python installation, a public copy of ``utils`` and ``autograder``, the case inputs and its own folder;
    private ``/tmp``, ``/var/tmp``, ``/dev/shm``; a minimal ``/dev`` and its own ``/proc``. Nothing else of the
    host exists there. It then drops to a uid of its own (no capabilities, no new privileges, not dumpable).
``process``
    Elsewhere. A separate ``python -s -S`` process (the policy's environment only) with an explicit ``sys.path``
    (no repository, no editable install), started in a folder holding only the student's code and case inputs;
    resource limits apply, but files on disk remain readable by absolute path.

Every function here runs in the worker, before any student code, except :func:`isolation_level`,
:func:`start_ticks` and :func:`sweep_uid` (the grader) and :func:`enter_pid_namespace` (the supervisor).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys
import time

from autograder.grade.policy import SandboxPolicy

NAMESPACE = "namespace"
PROCESS = "process"

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
#: Student processes get uid ``UID_BASE + supervisor pid``: unique among live workers, owning nothing on disk.
UID_BASE = 200000

_DESCRIPTION = {
    NAMESPACE: "PID, mount, network and IPC namespaces; the worker's file system is an allow-list (system "
               "software, Python, the public library, case inputs, its own folder, private /tmp); student code "
               "runs under its own unprivileged uid with time, memory and process limits",
    PROCESS: "separate python -s -S process with a clean sys.path and time/memory limits; instructor files are "
             "not on its path but stay readable by absolute path (run the grader as root on Linux for the "
             "namespace level)",
}


_LIBC: list = []


def _libc():
    """The C library (None off Linux), loaded once per process and inherited by forked children: finding it
    (``ctypes.util.find_library``) runs ``ldconfig -p`` in a subprocess, which per call cost more CPU than the call
    it served (the supervisor and the worker called it about ten times per submission)."""
    if not _LIBC:
        libc = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            except OSError:
                libc = None
        _LIBC.append(libc)
    return _LIBC[0]


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


def _minimal(paths) -> list[str]:
    """Existing directories (real paths), deduplicated, without those nested in another one of the list."""
    out: list[str] = []
    for p in sorted({_real(p) for p in paths if p and os.path.isdir(p)}, key=len):
        if p != "/" and not any(_inside(p, q) for q in out):
            out.append(p)
    return out


#: Never bound into the worker's root, even when a kept folder lies inside (the worker gets its own /proc, /dev).
_NEVER_BOUND = ("/proc", "/sys", "/dev", "/run")
CLONE_NEWPID = 0x20000000
CLONE_NEWUTS = 0x04000000
MS_MOVE = 8192
MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203, "s390x": 217,
                   "armv7l": 218, "i686": 217}


def _mount(libc, source, target: str, fstype, flags: int, data=None) -> None:
    enc = (lambda v: v.encode() if isinstance(v, str) else v)
    _check(libc.mount(enc(source), target.encode(), enc(fstype), flags, enc(data)), f"mount {target}")


def _bind_ro(libc, src: str, dst: str) -> None:
    _mount(libc, src, dst, None, MS_BIND | MS_REC)
    _mount(libc, None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _build_root(libc, root: str, keep: list[str], pid_namespace: bool, policy: SandboxPolicy) -> list[str]:
    """Make ``root`` (an empty folder) a file system holding only what the worker may see, and switch to it.

    Read-only: the system software (the policy's ``system_dirs`` and ``system_files``), and ``keep`` (the Python
    installation, the public library copy, the case inputs, the worker's folder) at their usual paths. Private and
    writable: ``/tmp``, ``/var/tmp``, ``/dev/shm``. Also a minimal ``/dev`` and a ``/proc`` of the worker's own PID
    namespace. Nothing else of the host exists inside (no home folders, no ``/run``, ``/etc``, ``/opt``, ``/srv``,
    ``/mnt``, other users' files or other copies of the course). Returns the folders bound read-only."""
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")

    def inside(path: str) -> str:
        return root + path

    for path, size in policy.private_tmp.items():
        if path == "/dev/shm":
            continue
        os.makedirs(inside(path), exist_ok=True)
        _mount(libc, "tmpfs", inside(path), "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,mode=1777")
    dev = inside("/dev")
    os.makedirs(dev, exist_ok=True)
    _mount(libc, "tmpfs", dev, "tmpfs", MS_NOSUID, "size=1m,mode=755")
    for name in policy.devices:
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "w").close()
            _mount(libc, f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                         "stderr": "/proc/self/fd/2"}.items():
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(f"{dev}/shm")
    _mount(libc, "tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={policy.private_tmp['/dev/shm']}m,mode=1777")
    os.makedirs(inside("/proc"))
    # a proc of the worker's PID namespace shows only its processes; without one, hidepid hides other users'
    _mount(libc, "proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           None if pid_namespace else "hidepid=2")
    bound = []
    system = []
    for path in policy.system_dirs:
        if os.path.islink(path):
            os.symlink(os.readlink(path), inside(path))
        elif os.path.isdir(path):
            system.append(path)
    for path in _minimal(system + [k for k in keep if not any(_inside(_real(k), n) for n in _NEVER_BOUND)]):
        os.makedirs(inside(path), exist_ok=True)
        _bind_ro(libc, path, inside(path))
        bound.append(path)
    for path in policy.system_files:
        if os.path.isfile(path):
            os.makedirs(os.path.dirname(inside(path)), exist_ok=True)
            open(inside(path), "w").close()
            _bind_ro(libc, path, inside(path))
    _switch_root(libc, root)
    return bound


def _switch_root(libc, root: str) -> None:
    """Make ``root`` the root file system: pivot_root (the old root is then detached entirely), or move + chroot."""
    import platform

    os.chdir(root)
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is not None and libc.syscall(number, b".", b".") == 0:
        _check(libc.umount2(b".", MNT_DETACH), "detach the old root")
    else:  # pragma: no cover - other architectures
        _mount(libc, ".", "/", None, MS_MOVE)
        os.chroot(".")
    os.chdir("/")


def enter(keep: list[str], workdir: str, policy: SandboxPolicy, root: str | None = None,
          uid_seed: int | None = None) -> dict:
    """Isolate the current (single-threaded) worker process under ``policy``; returns what was achieved.

    ``keep``: folders the worker needs (read-only); ``workdir``: its working folder; ``root``: an empty folder to
    build its file system on; ``policy.namespace=False`` forces the ``process`` level; ``uid_seed``: a number
    unique among live workers (its supervisor's pid) that makes its private uid. At the namespace level the worker
    sees an allow-list, nothing else."""
    info: dict = {"level": PROCESS, "network": True, "uid": os.getuid(), "pid_namespace": False, "visible": []}
    libc = _libc()
    if policy.namespace and libc is not None and os.geteuid() == 0 and root:
        mounted = False
        try:
            info["pid_namespace"] = os.getpid() == 1  # the supervisor unshared one before forking us
            _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
            info["network"] = libc.unshare(CLONE_NEWNET) != 0
            libc.unshare(CLONE_NEWIPC)  # no System V shared memory between submissions
            if libc.unshare(CLONE_NEWUTS) == 0:
                libc.sethostname(b"sandbox", 7)
            mounted = True
            info["visible"] = _build_root(libc, os.path.realpath(root), list(keep) + [workdir],
                                          info["pid_namespace"], policy)
            uid = UID_BASE + (uid_seed if uid_seed is not None else os.getpid())
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            info.update(level=NAMESPACE, uid=uid)
            global PRIVATE_UID
            PRIVATE_UID = True
        except OSError as exc:
            if os.geteuid() == 0 and mounted:
                raise  # half-isolated: never run student code like this
            info["error"] = str(exc)
    os.chdir(workdir)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    set_limit(resource.RLIMIT_CORE, 0)
    set_limit(resource.RLIMIT_FSIZE, policy.max_file_bytes)
    if info["level"] == NAMESPACE:
        set_limit(resource.RLIMIT_NPROC, policy.max_processes)  # processes + threads of this private uid (fork bombs)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return info


def enter_pid_namespace() -> bool:
    """Supervisor side (root): the next child this process forks starts a new PID namespace as its pid 1. When
    that child (the worker) ends, the kernel kills every process left in the namespace: nothing escapes it."""
    libc = _libc()
    return bool(libc) and os.geteuid() == 0 and libc.unshare(CLONE_NEWPID) == 0


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


def limit_memory(megabytes: int, soft_only: bool = False, hard_mb: int | None = None) -> None:
    """Allow ``megabytes`` more address space than this process uses now (RLIMIT_AS, or RLIMIT_DATA).

    ``hard_mb``: also set the hard limit to that much more than now (``soft_only`` then keeps the soft limit at
    ``megabytes``); a hard limit cannot be raised again by the process."""
    extra = int(megabytes) << 20
    base = virtual_memory_bytes()
    which = resource.RLIMIT_AS if base else getattr(resource, "RLIMIT_DATA", resource.RLIMIT_AS)
    if hard_mb is not None:
        try:
            _, hard = resource.getrlimit(which)
            cap = base + (int(hard_mb) << 20)
            if hard != resource.RLIM_INFINITY:
                cap = min(cap, hard)
            resource.setrlimit(which, (min(base + extra, cap), cap))
            return
        except (ValueError, OSError):
            pass
    set_limit(which, base + extra, soft_only)


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


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from /proc/PID/stat), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def sweep_uid(uid: int, since: int | None = None) -> int:
    """Grader side, for a worker without a PID namespace: SIGKILL the processes running under its private ``uid``
    that started at or after ``since`` (its supervisor's :func:`start_ticks`): never an older process that happens
    to use that uid."""
    if uid < UID_BASE or since is None:
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
                    if os.stat(f"/proc/{name}").st_uid == uid and (start_ticks(int(name)) or -1) >= since:
                        os.kill(int(name), signal.SIGKILL)
                        found += 1
                except OSError:
                    pass
        killed += found
        if not found:
            break
        time.sleep(0.01)
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
