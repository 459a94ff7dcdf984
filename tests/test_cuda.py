"""The `cuda` group: every reference function, run on a CUDA GPU, reproduces its committed (CPU-generated) case
files within the question's tolerances. Skipped without CUDA. ``pytest -m cuda`` runs only this group;
``benchmarks/gpu_check.py`` runs it together with the notebooks on the GPU.

The kit's precision policy (``utils.device.exact_float32``): TF32 off, exact float32 on the GPU as on the CPU.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.core import calls, casefile, registry
from autograder.core import verdicts as V
from autograder.course.layout import assignment_ids
from utils.device import exact_float32

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

IDS = assignment_ids()
CASES = [(aid, q.id, c.name) for aid in IDS for q in registry.get(aid).assignment.questions for c in q.cases]


def to_device(value, device):
    """Tensors, models, and lists / tuples / dicts of them moved to ``device``; anything else unchanged."""
    if isinstance(value, (torch.Tensor, nn.Module)):
        moved = value.to(device)
        if isinstance(value, torch.Tensor) and value.requires_grad and moved.is_leaf is False:
            moved = moved.detach().requires_grad_(True)
        return moved
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


@pytest.mark.parametrize("assignment_id,qid,case_name", CASES, ids=[f"{a[:2]}-{q}-{c}" for a, q, c in CASES])
def test_reference_on_cuda_reproduces_the_case_file(assignment_id, qid, case_name):
    exact_float32()
    entry = registry.get(assignment_id)
    q = entry.assignment.question(qid)
    case = next(c for c in q.cases if c.name == case_name)
    cf = casefile.read(entry.case_path(q, case))
    args = to_device(casefile.build_args(cf), "cuda")
    status, outputs = calls.run(entry.reference_function(q), args, q.inplace, q.positional, case.seed, q.repeat,
                                q.optional)
    assert status["status"] == calls.OK, status
    verdict, message, _ = q.compare.compare(cf.expected, outputs, lambda: casefile.build_args(cf))
    assert verdict == V.PASSED, message


def test_to_device_moves_nested_arguments():
    args = {"x": torch.zeros(2), "feats": [torch.ones(1)], "bounds": (torch.zeros(1), torch.ones(1)), "k": 3}
    moved = to_device(args, "cuda")
    assert moved["x"].is_cuda and moved["feats"][0].is_cuda and moved["bounds"][1].is_cuda and moved["k"] == 3
