"""Comparison and verdicts: pure functions, each verdict with a message a student understands."""
from __future__ import annotations

import math

import pytest
import torch

from autograder.core import calls, judge
from autograder.core import verdicts as V
from autograder.core.spec import Case, Property, PropertyCheck, Question, TensorMatch


def compare(kind, expected, got, inputs=None):
    """``(verdict, message)`` of a comparison kind."""
    verdict, message, _ = kind.compare(expected, got, inputs)
    return verdict, message


def out(t):
    return {"out": t}


def test_passed():
    x = torch.randn(3, 4)
    assert compare(TensorMatch(), out(x), out(x + 1e-7)) == (V.PASSED, "matches the reference")


def test_wrong_shape_message_names_both_shapes():
    verdict, msg = compare(TensorMatch(), out(torch.zeros(2, 16, 16)), out(torch.zeros(2, 3, 16, 16)))
    assert verdict == V.WRONG_SHAPE
    assert "expected shape (2, 16, 16), got (2, 3, 16, 16)" in msg


def test_wrong_structure_tuple_vs_tensor():
    verdict, msg = compare(TensorMatch(), {"out0": torch.zeros(2), "out1": torch.zeros(2)}, out(torch.zeros(2)))
    assert verdict == V.WRONG_SHAPE and msg == "expected a tuple of 2, got a single tensor"


def test_wrong_dtype_kind_but_float64_is_fine():
    x = torch.randn(5)
    verdict, msg = compare(TensorMatch(), out(x), out(x.long()))
    assert verdict == V.WRONG_DTYPE and "expected a float tensor (torch.float32), got torch.int64" in msg
    assert compare(TensorMatch(), out(x), out(x.double()))[0] == V.PASSED
    assert compare(TensorMatch(check_dtype=False), out(x.round()), out(x.round().long()))[0] == V.PASSED


def test_non_finite_counts_and_locates():
    exp = torch.zeros(2, 3)
    got = exp.clone()
    got[1, 2] = float("nan")
    got[0, 1] = float("inf")
    verdict, msg = compare(TensorMatch(), out(exp), out(got))
    assert verdict == V.NON_FINITE
    assert "2 of 6 values are NaN or Inf (first at index (0, 1))" in msg


def test_wrong_values_reports_max_errors_index_and_tolerance():
    exp = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    got = exp.clone()
    got[2, 1] += 0.5
    got[0, 3] += 0.01
    verdict, msg = compare(TensorMatch(rtol=1e-4, atol=1e-5), out(exp), out(got))
    assert verdict == V.WRONG_VALUES
    assert "2 of 12 values differ" in msg
    assert "max abs error 0.5 at index (2, 1) (got 9.5, expected 9)" in msg
    assert "allowed: a difference of 1e-05 plus 0.01 % of the expected value" in msg
    assert "the worst value is 5.556 % off" in msg


def test_values_within_tolerance_pass_and_matching_nans_are_equal():
    exp = torch.tensor([1.0, float("nan"), 1000.0])
    got = torch.tensor([1.0 + 5e-6, float("nan"), 1000.05])
    assert compare(TensorMatch(rtol=1e-4, atol=1e-5), out(exp), out(got))[0] == V.PASSED


def test_zero_dim_outputs():
    assert compare(TensorMatch(), out(torch.tensor(2.0)), out(torch.tensor(2.0, dtype=torch.float64)))[0] == V.PASSED
    verdict, msg = compare(TensorMatch(), out(torch.tensor(2.0)), out(torch.tensor(3.0)))
    assert verdict == V.WRONG_VALUES and "at index ()" in msg


def test_property_check_names_the_failed_property_and_survives_a_raising_one():
    spec = PropertyCheck([Property("positive", lambda i, o, e: (bool((o["out"] > 0).all()), "some value <= 0")),
                          Property("sums to k", lambda i, o, e: (float(o["out"].sum()) == i["k"], "wrong sum"))])
    exp = out(torch.ones(3))
    assert compare(spec, exp, out(torch.ones(3)), {"k": 3.0})[0] == V.PASSED
    assert compare(spec, exp, out(-torch.ones(3)), {"k": 3.0}) == (V.PROPERTY_FAILED,
                                                                 "property 'positive' failed: some value <= 0")
    verdict, msg = compare(spec, exp, out(torch.ones(3)), {})  # KeyError inside the property
    assert verdict == V.PROPERTY_FAILED and "property 'sums to k' failed: could not be checked (KeyError" in msg
    assert compare(spec, exp, out(torch.ones(4)), {"k": 3.0})[0] == V.WRONG_SHAPE
    assert compare(spec, exp, out(torch.tensor([1.0, float("nan"), 1.0])), {"k": 3.0})[0] == V.NON_FINITE


def test_inputs_are_built_lazily_only_for_properties():
    built = []
    spec = PropertyCheck([Property("p", lambda i, o, e: (True, ""))])
    compare(spec, out(torch.ones(2)), out(torch.ones(2)), lambda: built.append(1) or {})
    compare(TensorMatch(), out(torch.ones(2)), out(torch.ones(2)), lambda: built.append(2) or {})
    assert built == [1]


Q = Question(id="f", points=3, build=lambda seed: {}, cases=[Case("a", 0, public=True), Case("b", 1, weight=2.0)])


@pytest.mark.parametrize("status,verdict,needle", [
    ({"status": calls.NOT_IMPLEMENTED}, V.NOT_ATTEMPTED, "raises NotImplementedError"),
    ({"status": calls.EXCEPTION, "exc_type": "IndexError", "message": "boom", "where": "cell 3 line 2: `x[9]`"},
     V.ERROR, "IndexError: boom (at cell 3 line 2: `x[9]`)"),
    ({"status": "timeout"}, V.TIMEOUT, "did not finish within 2 s"),
    ({"status": calls.MEMORY, "message": "can't allocate"}, V.CRASHED, "ran out of memory (the limit is 512 MB"),
    ({"status": calls.EXIT, "message": "your code called sys.exit(0)"}, V.CRASHED, "sys.exit(0)"),
    ({"status": "crashed", "message": "the process was killed by SIGSEGV (segmentation fault)"}, V.CRASHED,
     "SIGSEGV (segmentation fault) while running this case"),
    ({"status": calls.BAD_OUTPUT, "message": "the returned value is None"}, V.ERROR, "is None"),
])
def test_status_verdicts(status, verdict, needle):
    r = judge.judge_case(Q, Q.cases[0], status, None, out(torch.ones(1)), timeout=2, memory_mb=512)
    assert r.verdict == verdict and needle in r.message and r.points == 0.0 and r.max_points == 1.0


def test_classify_exceptions():
    assert calls.classify(NotImplementedError())["status"] == calls.NOT_IMPLEMENTED
    assert calls.classify(SystemExit(2)) == {"status": calls.EXIT, "message": "your code called sys.exit(2)"}
    assert calls.classify(MemoryError())["status"] == calls.MEMORY
    assert calls.classify(RuntimeError("DefaultCPUAllocator: can't allocate memory"))["status"] == calls.MEMORY
    st = calls.classify(ValueError("x" * 1000))
    assert st["status"] == calls.EXCEPTION and st["exc_type"] == "ValueError" and len(st["message"]) <= 300


def test_normalize_output():
    assert list(calls.normalize_output(torch.ones(2))) == ["out"]
    assert list(calls.normalize_output((torch.ones(2), 3.0))) == ["out0", "out1"]
    assert calls.normalize_output(2)["out"].dtype == torch.float64
    assert calls.normalize_output(torch.nn.Parameter(torch.ones(2)))["out"].__class__ is torch.Tensor
    with pytest.raises(calls.BadOutput, match="forget `return`"):
        calls.normalize_output(None)
    with pytest.raises(calls.BadOutput, match="is a str"):
        calls.normalize_output("hello")


def test_question_summary_uses_first_failing_case():
    cases = [V.CaseResult("f", "a", True, V.PASSED, "ok", 1.0, 1.0),
             V.CaseResult("f", "b", False, V.WRONG_SHAPE, "expected shape (5,), got (3,)", 0.0, 2.0)]
    r = judge.question_result(Q, cases)
    assert (r.points, r.max_points, r.verdict) == (1.0, 3.0, V.WRONG_SHAPE)
    assert r.message == "1/2 cases passed; hidden case 'b': expected shape (5,), got (3,)"
    same = judge.same_for_all_cases(Q, V.MISSING, "no function")
    r = judge.question_result(Q, same)
    assert (r.points, r.verdict, r.message) == (0.0, V.MISSING, "no function")
    assert math.isclose(sum(c.max_points for c in same), 3.0)


def _rule(expected: list[float], got: list[float], rtol: float, atol: float) -> str:
    """TensorMatch's verdict for float tensors, one element at a time in Python floats (an independent
    formulation): a non-finite value where the reference is finite is "non-finite"; otherwise each value must be
    within ``atol + rtol * |expected|`` (a NaN error counts as infinite; NaN where the reference has NaN is fine)."""
    if any(not math.isfinite(g) and math.isfinite(e) for e, g in zip(expected, got)):
        return V.NON_FINITE
    for e, g in zip(expected, got):
        if math.isnan(e) and math.isnan(g):
            continue
        err = abs(g - e)
        err = math.inf if math.isnan(err) else err
        if err > atol + rtol * abs(e):
            return V.WRONG_VALUES
    return V.PASSED


def test_tensormatch_verdicts_agree_with_an_elementwise_rule_on_awkward_values():
    """Including the values where its quick path for passing answers (isclose) and its full rule could differ."""
    gen = torch.Generator().manual_seed(0)
    special = torch.tensor([0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, math.inf, -math.inf, math.nan, 1e-5, 2e-5],
                           dtype=torch.float64)
    kinds = TensorMatch(rtol=1e-4, atol=1e-5), TensorMatch(rtol=0.0, atol=0.0), TensorMatch(rtol=0.5, atol=1.0)
    seen = set()
    for trial in range(600):
        n = int(torch.randint(1, 5, (1,), generator=gen))
        e = special[torch.randint(len(special), (n,), generator=gen)]
        step = torch.tensor([0.0, 1e-9, 1e-6, 1e-5, 1.5e-5, 1e-3, 0.5, 1.0, 2.0], dtype=torch.float64)
        g = e + step[torch.randint(len(step), (n,), generator=gen)] * torch.sign(torch.randn(n, generator=gen))
        swap = torch.rand(n, generator=gen) < 0.2  # sometimes a value of its own (inf, nan...)
        g = torch.where(swap, special[torch.randint(len(special), (n,), generator=gen)], g)
        kind = kinds[trial % len(kinds)]
        want = _rule(e.tolist(), g.tolist(), kind.rtol, kind.atol)
        verdict = kind.match(out(e), out(g))[0]
        assert verdict == want, (e.tolist(), g.tolist(), kind)
        seen.add(want)
    assert seen == {V.PASSED, V.WRONG_VALUES, V.NON_FINITE}
