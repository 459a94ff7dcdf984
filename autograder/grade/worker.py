"""The worker: the process that runs ONE submission's code (forked by :mod:`autograder.grade.forkserver`).

Per submission the fork server forks a supervisor, which forks the worker. The worker isolates itself
(:mod:`autograder.grade.isolation`) under the plan's :class:`~autograder.grade.policy.SandboxPolicy`, loads the
student's extracted code once, then runs each question in a forked child with the policy's time, CPU and memory
limits, output sent to /dev/null and a result pipe that child owns alone; each case goes through
:func:`autograder.core.pipeline.call_case`. Only statuses and output tensors go back to the grader
(:mod:`autograder.grade.protocol` frames); it never sees expected outputs, so all comparisons happen in the grader.
The supervisor reports how the worker ended.

Wake-ups are what a frame costs the grader (a thread woken for a lone frame spends ~30 us of CPU, ten times what
parsing it costs), so the worker sends few: the cell being loaded is not a frame but a number it writes into a
file the grader reads only if loading fails (the ``progress`` descriptor), and the case frames of the question
phase wait in an outbox for at most :data:`FLUSH_WINDOW` seconds, so that those which come close together travel in
one write. Anything that precedes student code is sent at once. (A worker killed while frames wait there, say by a
thread the notebook started at load, loses at most that window's results: those cases count as crashed.)

Imports are inside the functions: this module is imported by the fork server before it has set ``sys.path``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback


#: The longest a finished case's frame waits in the worker's outbox (seconds): far below the grader's deadlines.
FLUSH_WINDOW = 0.05

#: Frames packed and not yet written, and when the oldest must go (``time.monotonic()``).
_OUTBOX: list[bytes] = []
_DUE = [float("inf")]


def _queue(header: dict, payload: bytes = b"") -> None:
    """Put a frame in the outbox (written by the next :func:`_flush` or :func:`_send`)."""
    from autograder.grade.protocol import pack

    if not _OUTBOX:
        _DUE[0] = time.monotonic() + FLUSH_WINDOW
    _OUTBOX.append(pack(header, payload))


def _flush(fd: int) -> None:
    """Write what waits in the outbox, in one write where the pipe takes it."""
    from autograder.grade.protocol import write_bytes

    if _OUTBOX:
        data = b"".join(_OUTBOX)
        _OUTBOX.clear()
        _DUE[0] = float("inf")
        write_bytes(fd, data)


def _send(fd: int, header: dict, payload: bytes = b"") -> None:
    """Write a frame now (after whatever waits in the outbox)."""
    _queue(header, payload)
    _flush(fd)


def _crash_reason(status: int) -> str:
    from autograder.grade.isolation import exit_reason

    if os.WIFSIGNALED(status):
        return exit_reason(-os.WTERMSIG(status))
    return exit_reason(os.WEXITSTATUS(status)) if os.WIFEXITED(status) else "the process stopped unexpectedly"


def _run_cases_in_child(wfd: int, fn, how, cases: list, indices: list[int],
                        policy) -> None:  # pragma: no cover - runs in a forked child
    """The child: runs ``indices`` cases of one question and writes one frame per case on its own pipe."""
    code = 0
    _OUTBOX.clear()  # the worker's, inherited: not this pipe's to send
    try:
        import resource

        from autograder.core import calls, pipeline
        from autograder.grade import isolation
        from autograder.grade.protocol import write_frame
        from safetensors.torch import save as st_save

        if wfd != 3:
            os.dup2(wfd, 3)
            os.close(wfd)
        os.closerange(4, 1 << 16)  # the worker's channel to the grader included
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolation.limit_memory(policy.memory_mb)
        isolation.set_limit(resource.RLIMIT_CPU, policy.cpu_seconds)
        try:
            os.nice(policy.nice)
        except OSError:
            pass
        for i in indices:
            t0 = time.perf_counter()
            status, outputs = pipeline.call_case(fn, how, cases[i])
            status["seconds"] = round(time.perf_counter() - t0, 4)
            payload = b""
            if outputs is not None:
                try:
                    payload = st_save(outputs)
                except Exception as exc:  # noqa: BLE001
                    status = {"status": calls.BAD_OUTPUT, "message": f"the output cannot be stored: {exc}"}
                if len(payload) > policy.max_output_bytes:
                    status = {"status": calls.BAD_OUTPUT,
                              "message": f"the output is larger than {policy.max_output_bytes >> 20} MB"}
                    payload = b""
            write_frame(3, {"i": i, **status}, payload)
    except BaseException:  # noqa: BLE001
        code = 70
    finally:
        os._exit(code)


def run_question(out_fd: int, ns: dict, question: dict, cases: list, policy) -> None:
    """Run one question's cases in forked children (a child that dies costs its case; the next child goes on with
    the rest) within the question's time limit, and report one ``case`` frame per case."""
    from autograder.core import calls
    from autograder.core.pipeline import CallSpec
    from autograder.grade import isolation
    from autograder.grade.protocol import CASE, MISSING, NOT_CALLABLE, FrameReader, ProtocolError

    qid = question["id"]
    how = CallSpec.from_dict(question["call"])
    names = [c["name"] for c in question["cases"]]

    def report(i: int, header: dict, payload: bytes = b"") -> None:
        _queue({**header, "type": CASE, "question": qid, "case": names[i]}, payload)

    fn = ns.get(how.function)
    if fn is None:
        _queue({"type": MISSING, "question": qid})
        return
    if not callable(fn):
        _queue({"type": NOT_CALLABLE, "question": qid, "kind": type(fn).__name__})
        return
    deadline = time.monotonic() + policy.timeout
    remaining = list(range(len(names)))
    while remaining:
        if time.monotonic() >= deadline:
            for i in remaining:
                report(i, {"status": calls.TIMEOUT})
            break
        r, w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os.close(r)
            _run_cases_in_child(w, fn, how, cases, remaining, policy)
        os.close(w)
        reader = FrameReader(r)
        done = 0
        timed_out = broken = False
        try:
            while done < len(remaining):
                try:
                    frame = reader.read(min(deadline, _DUE[0]))
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        raise
                    _flush(out_fd)  # the outbox's oldest frame is due: nothing is held longer than FLUSH_WINDOW
                    continue
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
                if time.monotonic() >= _DUE[0]:
                    _flush(out_fd)
                time.sleep(0.005)
        isolation.kill_descendants()
        remaining = remaining[done:]
        if not remaining:
            break
        if timed_out:
            for i in remaining:
                report(i, {"status": calls.TIMEOUT})
            break
        reason = "it wrote garbage on its result channel" if broken else _crash_reason(status)
        report(remaining[0], {"status": calls.CRASHED, "message": reason})
        remaining = remaining[1:]


def load_submission(cells: list[dict], on_cell=None) -> tuple[dict, dict]:
    """Run the kept statements of every cell, in order, like Jupyter would (a failing cell stops there).
    ``on_cell(index)`` is called before each cell runs (so the grader can name the cell a notebook died in)."""
    import ast
    import builtins
    import linecache
    import types

    from autograder.core import calls
    from autograder.core.extract import keep_node, parse

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
        path, source = cell["filename"], cell["source"]
        # tracebacks read a cell's lines from here (no file is written per cell); "no mtime" keeps them cached
        linecache.cache[path] = (len(source), None, source.splitlines(keepends=True), path)
        try:
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


def _progress_writer(fd: int | None):
    """``on_cell`` for :func:`load_submission`: writes the index of the cell about to load at the start of the
    ``progress`` file (which the grader reads if loading fails); a write that fails is skipped."""
    if fd is None:
        return None

    def on_cell(index: int) -> None:
        try:
            os.pwrite(fd, b"%-12d" % index, 0)
        except OSError:
            pass

    return on_cell


def run_submission(plan_path: str, out_fd: int, uid_seed: int | None = None,
                   progress_fd: int | None = None) -> None:  # pragma: no cover
    """The worker proper (forked by its supervisor): isolate, load the submission, run every question; never
    returns. ``progress_fd``: the file to write the cell being loaded into (see :func:`_progress_writer`)."""
    from autograder.core import casefile
    from autograder.grade import isolation
    from autograder.grade.policy import SandboxPolicy
    from autograder.grade.protocol import DONE, FATAL, HELLO, LOADED

    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    policy = SandboxPolicy.from_dict(plan["policy"])
    try:
        info = isolation.enter(plan["keep"], plan["workdir"], policy, root=plan.get("root"), uid_seed=uid_seed)
    except OSError as exc:
        _send(out_fd, {"type": FATAL, "message": f"sandbox setup failed: {exc}"})
        os._exit(2)
    try:
        cases = {}
        for q in plan["questions"]:
            cases[q["id"]] = [CASES.get(c["file"]) or casefile.read(c["file"]) for c in q["cases"]]
        _send(out_fd, {"type": HELLO, "isolation": info, "pid": os.getpid()})
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        # While the notebook loads: memory_mb more (soft), at most twice that (hard: code at load cannot raise it).
        # Each question's child then gets memory_mb more than the worker holds, within that hard limit.
        isolation.limit_memory(policy.memory_mb, soft_only=True, hard_mb=policy.load_memory_factor * policy.memory_mb)
        import builtins

        saved_builtins = dict(builtins.__dict__)
        ns, errors = load_submission(plan["cells"], _progress_writer(progress_fd))
        if progress_fd is not None:
            try:
                os.close(progress_fd)
            except OSError:
                pass
        builtins.__dict__.clear()  # undo any patching of builtins at import (the worker needs them intact)
        builtins.__dict__.update(saved_builtins)
        _queue({"type": LOADED, "errors": errors})  # goes with the first question's results
        for q in plan["questions"]:
            run_question(out_fd, ns, q, cases[q["id"]], policy)
        _send(out_fd, {"type": DONE})
    except BaseException:  # noqa: BLE001
        try:
            _send(out_fd, {"type": FATAL, "message": traceback.format_exc()[-2000:]})
        finally:
            os._exit(1)
    os._exit(0)


def supervise(plan_path: str, out_fd: int,
              progress_fd: int | None = None) -> None:  # pragma: no cover - runs in a forked supervisor
    """Fork the worker, wait for it, clean up below it, and report how it ended (an ``exit`` frame)."""
    from autograder.grade import isolation
    from autograder.grade.protocol import EXIT

    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    try:
        with open(plan_path, encoding="utf-8") as f:
            namespace = bool(json.load(f)["policy"].get("namespace", True))
    except (OSError, ValueError, KeyError):
        namespace = False
    if namespace:
        isolation.enter_pid_namespace()  # the worker forked next is pid 1 of a namespace of its own
    pid = os.fork()
    if pid == 0:
        run_submission(plan_path, out_fd, me, progress_fd)
    if progress_fd is not None:
        os.close(progress_fd)
    status = os.waitpid(pid, 0)[1]
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    isolation.kill_descendants()
    try:
        _send(out_fd, {"type": EXIT, "returncode": code})
    finally:
        os._exit(0)


#: Case inputs the fork server read before forking (inputs-only files the grader wrote), inherited by every worker.
CASES: dict = {}
