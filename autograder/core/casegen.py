"""Generating the case files from the reference: ``python -m autograder cases [--assignment ID]``.

For every case: build the inputs with ``question.build(seed=case.seed, **case.params)``, rebuild them from the
stored tensors (so the reference sees exactly what a student's function will see), call the reference function
(CPU, float32, deterministic algorithms, seeded), then each known mistake exactly as a student's function is called
(fresh inputs, seeded), and write ``<cases>/{public|hidden}/<assignment>/<question>/<case>.safetensors``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from autograder.core import calls, casefile, registry
from autograder.core.spec import Case, Question


def build_case(entry: registry.Entry, question: Question, case: Case) -> casefile.CaseFile:
    """The full case file (inputs, weights, expected outputs, metadata) for one case."""
    inputs = question.build(seed=case.seed, **dict(case.params))
    args, tensors = casefile.encode_args(inputs)
    meta = {
        "format": casefile.FORMAT, "assignment": entry.id, "question": question.id, "case": case.name,
        "public": case.public, "seed": case.seed, "params": json.loads(json.dumps(dict(case.params))),
        "function": question.id, "inplace": question.inplace, "positional": question.positional,
        "repeat": question.repeat, "args": args, "outputs": None,
    }
    cf = casefile.CaseFile(meta, tensors)
    fn = entry.reference_function(question)
    call_args = casefile.build_args(cf)        # first: building a model may draw from the global RNG
    calls.seed_everything(case.seed)           # then seed, exactly as the graders do right before the call
    outputs = calls.call(fn, call_args, question.inplace, question.positional, question.repeat)
    for key, value in outputs.items():
        cf.tensors[f"out/{key}"] = value
    meta["outputs"] = list(outputs)
    if question.calibrate:
        from autograder.core.judge import _resolve

        calibration = _resolve(question.calibrate)(casefile.build_args(cf), outputs)
        for key, value in calibration.items():
            cf.tensors[f"out/_{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    if question.mistakes:
        from autograder.core.judge import mistake_outputs

        stored = {}
        for mistake in question.mistakes:
            theirs = mistake_outputs(question, case, mistake, lambda: casefile.build_args(cf))
            stored[mistake.function] = theirs is not None
            for key, value in (theirs or {}).items():
                cf.tensors[f"mistake/{mistake.function}/{key}"] = value
        meta["mistakes"] = stored
    return cf


def generate(entry: registry.Entry, root: Path | None = None, *, verbose: bool = False) -> list[Path]:
    """Write every case file of ``entry`` under ``root`` (default: the entry's references folder); remove stale
    ones. Returns the written paths."""
    root = Path(root or entry.cases_dir)
    written = []
    previous = torch.are_deterministic_algorithms_enabled()
    dtype = torch.get_default_dtype()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_default_dtype(torch.float32)
    try:
        with torch.random.fork_rng(devices=[]):
            for q in entry.assignment.questions:
                for c in q.cases:
                    path = entry.case_path(q, c, root)
                    build_case(entry, q, c).write(path)
                    written.append(path)
                    if verbose:
                        print(f"  {path.relative_to(root)}")
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.set_default_dtype(dtype)
    keep = set(written)
    for kind in ("public", "hidden"):
        folder = root / kind / entry.id
        if folder.is_dir():
            for stale in folder.rglob("*.safetensors"):
                if stale not in keep:
                    stale.unlink()
                    if verbose:
                        print(f"  removed stale {stale.relative_to(root)}")
    return written
