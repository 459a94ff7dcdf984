"""Calling a graded function on one case and turning what happens into a JSON-able status + output tensors.

Shared by the sandboxed worker (student code in a child process) and the in-process paths (``check``, the
nbgrader hook), so every path classifies outcomes the same way. Verdicts are decided later, by the grader.
"""
from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any, Callable, Mapping

import torch

# Statuses a call can end with (the grader maps them to verdicts).
OK = "ok"
NOT_IMPLEMENTED = "not_implemented"
EXCEPTION = "exception"
MEMORY = "memory"
EXIT = "exit"
BAD_OUTPUT = "bad_output"

_MEMORY_PATTERNS = re.compile(r"can't allocate memory|out of memory|not enough memory|DefaultCPUAllocator|"
                              r"std::bad_alloc|Cannot allocate memory", re.IGNORECASE)
_CELL_FILE = re.compile(r"cell_(\d+)\.py$")
_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))


class CaseTimeout(BaseException):
    """Raised (by a timer, in-process only) when a case runs past its time limit."""


class BadOutput(Exception):
    """The function returned something that is not a tensor (or tuple of tensors / number)."""


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach()
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
        return torch.from_numpy(np.array(value, copy=True))
    if value is None:
        raise BadOutput(f"{what} is None; expected a tensor (did you forget `return`?)")
    raise BadOutput(f"{what} is a {type(value).__name__}; expected a tensor")


def normalize_output(value: Any) -> dict[str, torch.Tensor]:
    """A tensor -> ``{"out": t}``; a tuple/list -> ``{"out0": .., "out1": ..}``; a number -> 0-d float64."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise BadOutput("the function returned an empty tuple; expected tensors")
        return {f"out{i}": _as_tensor(v, f"element {i} of the returned tuple") for i, v in enumerate(value)}
    return {"out": _as_tensor(value, "the returned value")}


def call(fn: Callable, args: Mapping[str, Any], inplace: str | None = None, positional: bool = False,
         repeat: int = 1):
    """Call ``fn`` on ``args`` (``repeat`` times in a row) and return the normalized outputs of the last call (the
    mutated argument for in-place questions)."""
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
        return {"status": "timeout"}
    if isinstance(exc, BadOutput):
        return {"status": BAD_OUTPUT, "message": str(exc)}
    if isinstance(exc, SystemExit):
        return {"status": EXIT, "message": f"your code called sys.exit({exc.code!r})"}
    message = _first_line(exc)
    if isinstance(exc, MemoryError) or _MEMORY_PATTERNS.search(message):
        return {"status": MEMORY, "message": message}
    return {"status": EXCEPTION, "exc_type": type(exc).__name__, "message": message,
            "where": describe_location(exc.__traceback__)}


def seed_everything(seed: int) -> None:
    """Seed torch, random and numpy before a call, identically on every grading path."""
    import random

    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (1 << 32))
    except ImportError:  # pragma: no cover
        pass


def run(fn: Callable, args: Mapping[str, Any], inplace: str | None = None, positional: bool = False,
        seed: int | None = None, repeat: int = 1):
    """Run one case: ``(status dict, outputs or None)``. Never raises (except KeyboardInterrupt)."""
    try:
        if seed is not None:
            seed_everything(seed)
        outputs = call(fn, args, inplace, positional, repeat)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - student code may raise anything, SystemExit included
        return classify(exc), None
    return {"status": OK}, outputs
