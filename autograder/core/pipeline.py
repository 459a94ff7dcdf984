"""One graded case, start to end: build its inputs from the case file, call the function, judge its outputs.

Every path grades a case through these three functions, so a case means the same thing everywhere:

- the batch grader: :func:`call_case` runs in the sandboxed worker (student code), :func:`judge_case` in the
  grader's process (the expected outputs never reach the worker);
- inside a kernel (the self-check and nbgrader's hidden tests): both, in the kernel, with a time limit around the call;
- the mutant corpora's harness: :func:`grade_case`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import torch

from autograder.core import calls, casefile, judge
from autograder.core import verdicts as V
from autograder.core.spec import Case, Question

Status = dict[str, Any]
Outputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class CallSpec:
    """How a question's function is called (see :class:`~autograder.core.spec.Question`); plain data, so it travels
    in a worker's plan."""

    function: str
    inplace: str | None = None
    positional: bool = False
    repeat: int = 1
    optional: tuple[str, ...] = ()

    @classmethod
    def of(cls, question: Question) -> "CallSpec":
        return cls(question.id, question.inplace, question.positional, question.repeat, tuple(question.optional))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CallSpec":
        return cls(str(data["function"]), data.get("inplace"), bool(data.get("positional", False)),
                   int(data.get("repeat", 1)), tuple(data.get("optional", ())))


def call_case(fn: Callable, how: CallSpec | Question, case_file: casefile.CaseFile) -> tuple[Status, Outputs | None]:
    """Build the case's inputs (fresh tensors and models) and call ``fn`` on them: ``(status, outputs)`` as
    :func:`autograder.core.calls.run` gives them."""
    try:
        args = casefile.build_args(case_file)
    except Exception as exc:  # noqa: BLE001 - a broken case file costs this case, not the run
        return {"status": calls.ENGINE_ERROR, "message": f"could not build the inputs: {exc}"}, None
    return calls.run(fn, args, how.inplace, how.positional, case_file.meta.get("seed"), how.repeat, how.optional)


def judge_case(question: Question, case: Case, status: Mapping[str, Any], outputs: Mapping[str, torch.Tensor] | None,
               case_file: casefile.CaseFile, *, timeout: float | None = None, memory_mb: int | None = None,
               mistake_cache: dict | None = None, inputs_cache: dict | None = None) -> V.CaseResult:
    """The verdict, message and points of one call's outcome against the case file's expected outputs (inputs are
    rebuilt from the case file only if the comparison or a known mistake needs them; ``mistake_cache``: see
    :func:`autograder.core.judge.known_mistake`). ``inputs_cache`` (one dict per set of case files, like
    ``mistake_cache``): the inputs a comparison reads (a property check's model...) are built once per case and
    shared by the calls given the same dict; comparisons only read them. Known mistakes always get fresh ones."""
    compare_inputs = None
    if inputs_cache is not None:
        def compare_inputs() -> Mapping[str, Any]:
            key = (question.id, case.name)
            args = inputs_cache.get(key)
            if args is None:
                inputs_cache[key] = args = casefile.build_args(case_file)
            return args
    return judge.judge_case(question, case, status, outputs, case_file.expected,
                            lambda: casefile.build_args(case_file), timeout=timeout, memory_mb=memory_mb,
                            mistake_cache=mistake_cache, compare_inputs=compare_inputs,
                            stored_mistakes=case_file.mistakes)


def grade_case(fn: Callable, question: Question, case: Case, case_file: casefile.CaseFile) -> V.CaseResult:
    """:func:`call_case` then :func:`judge_case`, in this process."""
    status, outputs = call_case(fn, question, case_file)
    return judge_case(question, case, status, outputs, case_file)
