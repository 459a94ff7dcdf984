"""The worker: the process that runs ONE submission's code, and the fork server that starts workers.

The grader starts ``python -I -S <lib>/autograder/worker.py CONFIG.json CONTROL_FD`` once per batch: a fork server
that imports torch, the engine and the public ``utils`` (never student code), runs the per-case machinery once so
its lazy initialisation is inherited, reads each assignment's case inputs (and builds their models) the first time
a plan names them, and, per submission, forks a supervisor which forks the worker. The worker isolates itself
(:mod:`autograder.sandbox`), loads the student's extracted code once, then runs each question in a forked child
with a time limit (per question), a memory limit, output sent to /dev/null and a result pipe that child owns
alone. Only statuses and output tensors go back to the grader; it never sees expected outputs, so all comparisons
happen in the grader. The supervisor reports how the worker ended.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback


def _send(fd: int, header: dict, payload: bytes = b"") -> None:
    from autograder.protocol import write_frame
    write_frame(fd, header, payload)


def _crash_reason(status: int) -> str:
    from autograder.sandbox import exit_reason

    if os.WIFSIGNALED(status):
        return exit_reason(-os.WTERMSIG(status))
    return exit_reason(os.WEXITSTATUS(status)) if os.WIFEXITED(status) else "the process stopped unexpectedly"


def _run_cases_in_child(wfd: int, fn, question: dict, cases: list, indices: list[int], memory_mb: int,
                        timeout: float) -> None:  # pragma: no cover - runs in a forked child
    """The child: runs ``indices`` cases of one question and writes one frame per case on its own pipe."""
    code = 0
    try:
        import resource

        from autograder import calls, casefile, sandbox
        from safetensors.torch import save as st_save

        if wfd != 3:
            os.dup2(wfd, 3)
            os.close(wfd)
        os.closerange(4, 1 << 16)  # the worker's channel to the grader included
        sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
        sandbox.limit_memory(memory_mb)
        sandbox.set_limit(resource.RLIMIT_CPU, int(timeout) + 5)
        try:
            os.nice(5)  # student code yields to the worker that times it (and to the grader)
        except OSError:
            pass
        for i in indices:
            try:
                args = casefile.build_args(cases[i])
            except Exception as exc:  # noqa: BLE001
                _send(3, {"i": i, "status": "engine_error", "message": f"could not build the inputs: {exc}"})
                continue
            t0 = time.perf_counter()
            status, outputs = calls.run(fn, args, question.get("inplace"), question.get("positional", False),
                                        cases[i].meta.get("seed"), question.get("repeat", 1),
                                        question.get("optional", ()))
            status["seconds"] = round(time.perf_counter() - t0, 4)
            payload = b""
            if outputs is not None:
                try:
                    payload = st_save(outputs)
                except Exception as exc:  # noqa: BLE001
                    status = {"status": calls.BAD_OUTPUT, "message": f"the output cannot be stored: {exc}"}
                if len(payload) > (64 << 20):
                    status, payload = {"status": calls.BAD_OUTPUT, "message": "the output is larger than 64 MB"}, b""
            _send(3, {"i": i, **status}, payload)
    except BaseException:  # noqa: BLE001
        code = 70
    finally:
        os._exit(code)


def run_question(out_fd: int, ns: dict, question: dict, cases: list, memory_mb: int, timeout: float) -> None:
    from autograder import sandbox
    from autograder.protocol import FrameReader, ProtocolError

    qid = question["id"]
    names = [c["name"] for c in question["cases"]]

    def report(i: int, header: dict, payload: bytes = b"") -> None:
        _send(out_fd, {**header, "type": "case", "question": qid, "case": names[i]}, payload)

    fn = ns.get(question["function"])
    if fn is None:
        _send(out_fd, {"type": "missing", "question": qid})
        return
    if not callable(fn):
        _send(out_fd, {"type": "not_callable", "question": qid, "kind": type(fn).__name__})
        return
    deadline = time.monotonic() + timeout
    remaining = list(range(len(names)))
    while remaining:
        if time.monotonic() >= deadline:
            for i in remaining:
                report(i, {"status": "timeout"})
            break
        r, w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os.close(r)
            _run_cases_in_child(w, fn, question, cases, remaining, memory_mb, timeout)
        os.close(w)
        reader = FrameReader(r)
        done = 0
        timed_out = broken = False
        try:
            while done < len(remaining):
                frame = reader.read(deadline)
                if frame is None:
                    break
                header, payload = frame
                if header.get("i") != remaining[done]:
                    broken = True
                    break
                header.pop("i")
                report(remaining[done], header, payload)
                done += 1
        except TimeoutError:
            timed_out = True
        except ProtocolError:
            broken = True
        finally:
            os.close(r)
        status = None
        if done == len(remaining) and not (timed_out or broken):  # every result is in: no need to let it exit
            os.kill(pid, signal.SIGKILL)
            status = os.waitpid(pid, 0)[1]
        while status is None:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
            elif timed_out or broken or time.monotonic() >= deadline:
                timed_out = timed_out or (not broken and time.monotonic() >= deadline)
                os.kill(pid, signal.SIGKILL)
                status = os.waitpid(pid, 0)[1]
            else:
                time.sleep(0.005)
        sandbox.kill_descendants()
        remaining = remaining[done:]
        if not remaining:
            break
        if timed_out:
            for i in remaining:
                report(i, {"status": "timeout"})
            break
        reason = "it wrote garbage on its result channel" if broken else _crash_reason(status)
        report(remaining[0], {"status": "crashed", "message": reason})
        remaining = remaining[1:]


def load_submission(cells: list[dict], on_cell=None) -> tuple[dict, dict]:
    """Run the kept statements of every cell, in order, like Jupyter would (a failing cell stops there).
    ``on_cell(index)`` is called before each cell runs (so the grader can name the cell a notebook died in)."""
    import ast
    import builtins
    import types

    from autograder import calls
    from autograder.extract import keep_node, parse

    module = types.ModuleType("submission")
    sys.modules["submission"] = module
    ns = module.__dict__
    ns["__builtins__"] = builtins
    errors = {}

    def record(cell: dict, exc: BaseException) -> None:
        st = calls.classify(exc)
        what = {"not_implemented": "NotImplementedError", "exit": "SystemExit"}.get(st["status"],
                                                                                   st.get("exc_type", "error"))
        where = f" ({st['where']})" if st.get("where") else ""
        errors.setdefault(str(cell["index"]), f"cell {cell['index']} raised {what}: {st.get('message', '')}{where}")

    for cell in cells:
        if on_cell is not None:
            on_cell(cell["index"])
        path = os.path.abspath(cell["file"])
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
            body = parse(source, path).body
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            record(cell, exc)
            continue
        keep = cell.get("keep")
        keep = set(keep) if isinstance(keep, list) else {j for j, n in enumerate(body) if keep_node(n)}
        soft = set(cell.get("soft") or ())
        for j, node in enumerate(body):  # statement by statement: a failing statement stops its cell (Jupyter),
            if j not in keep:            # except a "soft" one (an assignment graded code needs, see extract.select)
                continue
            try:
                exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), ns)  # noqa: S102
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001
                record(cell, exc)
                if j not in soft:
                    break
    return ns, errors


def run_submission(plan_path: str, out_fd: int, uid_seed: int | None = None) -> None:  # pragma: no cover
    """The worker proper (forked by its supervisor): isolate, load the submission, run every question; never
    returns."""
    from autograder import casefile, sandbox

    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    try:
        info = sandbox.enter(plan.get("hide", []), plan["keep"], plan["workdir"],
                             namespace=plan.get("namespace", True), root=plan.get("root"), uid_seed=uid_seed)
    except OSError as exc:
        _send(out_fd, {"type": "fatal", "message": f"sandbox setup failed: {exc}"})
        os._exit(2)
    try:
        cases = {}
        for q in plan["questions"]:
            cases[q["id"]] = [_CASES.get(c["file"]) or casefile.read(c["file"]) for c in q["cases"]]
        _send(out_fd, {"type": "hello", "isolation": info, "pid": os.getpid()})
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        # While the notebook loads: memory_mb more (soft), at most twice that (hard: code at load cannot raise it).
        # Each question's child then gets memory_mb more than the worker holds, within that hard limit.
        sandbox.limit_memory(plan["memory_mb"], soft_only=True, hard_mb=2 * plan["memory_mb"])
        import builtins

        saved_builtins = dict(builtins.__dict__)
        ns, errors = load_submission(plan["cells"], lambda i: _send(out_fd, {"type": "cell", "index": i}))
        builtins.__dict__.clear()  # undo any patching of builtins at import (the worker needs them intact)
        builtins.__dict__.update(saved_builtins)
        _send(out_fd, {"type": "loaded", "errors": errors})
        for q in plan["questions"]:
            run_question(out_fd, ns, q, cases[q["id"]], plan["memory_mb"], plan["timeout"])
        _send(out_fd, {"type": "done"})
    except BaseException:  # noqa: BLE001
        try:
            _send(out_fd, {"type": "fatal", "message": traceback.format_exc()[-2000:]})
        finally:
            os._exit(1)
    os._exit(0)


def supervise(plan_path: str, out_fd: int) -> None:  # pragma: no cover - runs in a forked supervisor
    """Fork the worker, wait for it, clean up below it, and report how it ended (an ``exit`` frame)."""
    from autograder import sandbox

    sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    try:
        with open(plan_path, encoding="utf-8") as f:
            namespace = bool(json.load(f).get("namespace", True))
    except (OSError, ValueError):
        namespace = False
    if namespace:
        sandbox.enter_pid_namespace()  # the worker forked next is pid 1 of a namespace of its own
    pid = os.fork()
    if pid == 0:
        run_submission(plan_path, out_fd, me)
    status = os.waitpid(pid, 0)[1]
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    sandbox.kill_descendants()
    try:
        _send(out_fd, {"type": "exit", "returncode": code})
    finally:
        os._exit(0)


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


#: Case inputs read by the fork server (inputs-only files the grader wrote), inherited by every worker it forks.
_CASES: dict = {}


def _cache_cases(plan_path: str) -> None:
    """Read the case files a plan names that are not cached yet (a worker reads them itself if this fails)."""
    from autograder import casefile

    try:
        with open(plan_path, encoding="utf-8") as f:
            plan = json.load(f)
        for q in plan["questions"]:
            for c in q["cases"]:
                if c["file"] not in _CASES:
                    _CASES[c["file"]] = case = casefile.read(c["file"])
                    casefile.build_args(case)  # builds (and caches) its models once, here
    except Exception:  # noqa: BLE001
        pass


def _warm_up() -> None:
    """Run the per-case machinery once (seeding, a call, serializing), so that the lazy initialisation it
    triggers is done here, once, instead of in every forked child."""
    import torch
    from safetensors.torch import save

    from autograder import calls

    _, outputs = calls.run(lambda x: (x * 2).sum(0), {"x": torch.ones(2, 3)}, seed=0)
    save(outputs)


#: ``[processes reaped, their CPU seconds (user + system, their own reaped descendants included)]``.
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

    Requests arrive on a Unix socket: a JSON line ``{"plan": path}`` with the result pipe's write end attached
    (SCM_RIGHTS); the reply is ``{"pid": supervisor pid}``. This process never runs student code."""
    import socket

    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    sys.path[:] = config["sys_path"]
    from autograder import sandbox

    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    _preload(["autograder.calls", "autograder.casefile", "autograder.extract", "autograder.protocol",
              "safetensors.torch", *config.get("preload", [])])
    _warm_up()
    # Supervisors (and orphaned workers we adopt as subreaper) are reaped here, with their CPU time: a child left to
    # the kernel's automatic reaping (SIGCHLD ignored) would take its CPU time out of every rusage account.
    signal.signal(signal.SIGCHLD, lambda *_: _reap(False))
    sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    sock = socket.socket(fileno=control_fd)
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
        _cache_cases(request["plan"])
        pid = os.fork()
        if pid == 0:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
            supervise(request["plan"], fds[0])
        os.close(fds[0])
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
