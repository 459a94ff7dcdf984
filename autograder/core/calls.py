"""Calling a graded function on one case and turning what happens into a JSON-able status + output tensors.

Shared by the sandboxed worker (student code in a child process) and the in-process paths (``check``, the
nbgrader hook), so every path classifies outcomes the same way. Verdicts are decided later, by the grader.
"""
from __future__ import annotations

import inspect
import os
import re
import sys
import traceback
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from utils.device import seed_everything  # one seeding policy for notebooks and grading

# Statuses a call can end with (the grader maps them to verdicts).
OK = "ok"
NOT_IMPLEMENTED = "not_implemented"
EXCEPTION = "exception"
MEMORY = "memory"
EXIT = "exit"
BAD_OUTPUT = "bad_output"
WRONG_TYPE = "wrong_type"
# ... and the statuses the machinery around the call reports
TIMEOUT = "timeout"            # the question's time ran out
CRASHED = "crashed"            # the process running the call died
ENGINE_ERROR = "engine_error"  # the grader could not run the case (not the student's fault)

# Notes a call may add to an "ok" status (the grader turns them into hints when the answer is wrong).
NOTE_UNCHANGED = "inplace_unchanged"      # the in-place argument came back exactly as it went in
NOTE_GRAD_LEFT = "grad_left"              # the in-place argument's .grad holds a non-zero gradient afterwards

_MEMORY_PATTERNS = re.compile(r"can't allocate memory|out of memory|not enough memory|DefaultCPUAllocator|"
                              r"std::bad_alloc|Cannot allocate memory", re.IGNORECASE)
_CELL_FILE = re.compile(r"cell_(\d+)\.py$")
_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CaseTimeout(BaseException):
    """Raised (by a timer, in-process only) when a case runs past its time limit."""


class BadOutput(Exception):
    """The function returned something that cannot be graded as a tensor."""


class WrongType(BadOutput):
    """The function returned something that is not a tensor (or tuple of tensors / number): a NumPy array, None,
    a list, a tensor without values."""


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.device.type == "meta":
            raise WrongType(f"{what} is a tensor on the 'meta' device, which holds no values; compute it on the "
                            f"device of the inputs")
        if t.layout != torch.strided:
            t = t.to_dense()
        return t.as_subclass(torch.Tensor).cpu().clone().contiguous()
    if isinstance(value, bool):
        return torch.tensor(value, dtype=torch.bool)
    if isinstance(value, (int, float)):
        return torch.tensor(float(value), dtype=torch.float64)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        raise WrongType(f"{what} is a NumPy {type(value).__name__}, not a torch tensor: keep the computation in "
                        f"torch (no .numpy()), or wrap the result with torch.from_numpy(...) on the inputs' device")
    if value is None:
        raise WrongType(f"{what} is None; expected a tensor (did you forget `return`?)")
    raise WrongType(f"{what} is a {type(value).__name__}; expected a torch tensor")


def normalize_output(value: Any) -> dict[str, torch.Tensor]:
    """A tensor -> ``{"out": t}``; a tuple/list -> ``{"out0": .., "out1": ..}``; a number -> 0-d float64."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise BadOutput("the function returned an empty tuple; expected tensors")
        return {f"out{i}": _as_tensor(v, f"element {i} of the returned tuple") for i, v in enumerate(value)}
    return {"out": _as_tensor(value, "the returned value")}


def accepted_args(fn: Callable, args: Mapping[str, Any], optional: Sequence[str] = ()) -> dict[str, Any]:
    """``args`` without the ``optional`` keywords that ``fn``'s signature does not take (so a function written to
    a shorter, published signature, e.g. cs231n's ``make_fooling_image(X, target_y, model)``, is called the way it
    was written). Every argument is kept when ``fn`` takes ``**kwargs`` or has no readable signature."""
    if not optional:
        return dict(args)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(args)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(args)
    return {k: v for k, v in args.items() if k not in optional or k in params}


def _watched(args: Mapping[str, Any], inplace: str | None) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor argument the function must not change: ``(name, tensor)``, lists as ``name[i]``."""
    for name, value in args.items():
        if name == inplace:
            continue
        if isinstance(value, torch.Tensor):
            yield name, value
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    yield f"{name}[{i}]", item


def _snapshot(t: torch.Tensor) -> tuple:
    return t.detach().clone(), t.requires_grad, t.grad is None


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b) or (
        a.is_floating_point() and torch.equal(torch.nan_to_num(a, nan=0.5), torch.nan_to_num(b, nan=0.5))
        and torch.equal(torch.isnan(a), torch.isnan(b))))


def side_effects(before: Mapping[str, tuple], args: Mapping[str, Any], inplace: str | None) -> list[str]:
    """What the call changed in arguments it must leave alone, one sentence per argument."""
    found = []
    now = dict(_watched(args, inplace))
    for name, (values, requires_grad, grad_none) in before.items():
        t = now.get(name)
        if t is None:
            continue
        what = []
        if not _same(t.detach(), values):
            what.append("its values were changed (an in-place operation on the caller's tensor)")
        if t.requires_grad != requires_grad:
            what.append(f"requires_grad was switched {'on' if t.requires_grad else 'off'}")
        if grad_none and t.grad is not None:
            what.append(".grad was left set, so a second call on the same tensor adds to it")
        if what:
            base = name.split("[")[0]
            found.append(f"`{name}`: " + "; ".join(what) + f". Work on a copy instead, e.g. "
                         f"`{base} = {base}.clone().requires_grad_()` or `torch.autograd.grad`")
    return found


def call(fn: Callable, args: Mapping[str, Any], inplace: str | None = None, positional: bool = False,
         repeat: int = 1, optional: Sequence[str] = ()):
    """Call ``fn`` on ``args`` (``repeat`` times in a row) and return the normalized outputs of the last call (the
    mutated argument for in-place questions). ``optional`` keywords are passed only if ``fn`` takes them."""
    args = accepted_args(fn, args, optional) if not positional else args
    for _ in range(max(1, repeat)):
        result = fn(*args.values()) if positional else fn(**args)
    if inplace:
        return normalize_output(args[inplace])
    return normalize_output(result)


def describe_location(tb) -> str:
    """Where in the student's code an exception happened: 'cell 7 line 3: `return x.sum(1)`' (best effort)."""
    best = None
    for frame in traceback.extract_tb(tb):
        path = os.path.abspath(frame.filename) if not frame.filename.startswith("<") else frame.filename
        if path.startswith(_ENGINE_DIR) or "site-packages" in path or path.startswith(sys.base_prefix):
            continue
        best = frame
    if best is None:
        return ""
    m = _CELL_FILE.search(best.filename)
    where = f"cell {int(m.group(1))} line {best.lineno}" if m else f"line {best.lineno}"
    line = (best.line or "").strip()
    if line:
        where += f": `{line[:120]}`"
    return where


def _first_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).strip().split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def classify(exc: BaseException) -> dict[str, Any]:
    """A JSON status for an exception raised by the student's function."""
    if isinstance(exc, NotImplementedError):
        return {"status": NOT_IMPLEMENTED}
    if isinstance(exc, CaseTimeout):
        return {"status": TIMEOUT}
    if isinstance(exc, WrongType):
        return {"status": WRONG_TYPE, "message": str(exc)}
    if isinstance(exc, BadOutput):
        return {"status": BAD_OUTPUT, "message": str(exc)}
    if isinstance(exc, SystemExit):
        return {"status": EXIT, "message": f"your code called sys.exit({exc.code!r})"}
    message = _first_line(exc)
    if isinstance(exc, MemoryError) or _MEMORY_PATTERNS.search(message):
        return {"status": MEMORY, "message": message}
    return {"status": EXCEPTION, "exc_type": type(exc).__name__, "message": message,
            "where": describe_location(exc.__traceback__)}


def run(fn: Callable, args: Mapping[str, Any], inplace: str | None = None, positional: bool = False,
        seed: int | None = None, repeat: int = 1, optional: Sequence[str] = ()):
    """Run one case: ``(status dict, outputs or None)``. Never raises (except KeyboardInterrupt).

    An "ok" status may carry ``side_effects`` (sentences naming each argument the call changed although the
    question does not declare it in place: values, ``requires_grad``, ``.grad``) and ``notes`` (``NOTE_*`` codes
    about the in-place argument), which the grader turns into a verdict or a hint."""
    before = {name: _snapshot(t) for name, t in _watched(args, inplace)}
    target = args.get(inplace) if inplace else None
    start = target.detach().clone() if isinstance(target, torch.Tensor) else None
    try:
        if seed is not None:
            seed_everything(seed)
        outputs = call(fn, args, inplace, positional, repeat, optional)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - student code may raise anything, SystemExit included
        return classify(exc), None
    status: dict[str, Any] = {"status": OK}
    try:
        changed = side_effects(before, args, inplace)
        notes = []
        if start is not None:
            if _same(target.detach(), start):
                notes.append(NOTE_UNCHANGED)
            if target.grad is not None and bool(target.grad.detach().abs().sum() > 0):
                notes.append(NOTE_GRAD_LEFT)
    except Exception:  # noqa: BLE001 - a hostile argument must not stop grading; judge the outputs alone
        changed, notes = [], []
    if changed:
        status["side_effects"] = changed
    if notes:
        status["notes"] = notes
    return status, outputs
