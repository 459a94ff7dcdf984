"""Comparing a student's outputs with the reference's, in the grader's own process (never the student's).

A question's ``compare`` is a comparison kind: an object with ``compare(expected, got, inputs) -> Judgement``.
:class:`TensorMatch` is for unique answers (values within a tolerance); :class:`PropertyCheck` for answers that are
not unique (a fooling image), judged by named :class:`Property` checks with partial credit. A new kind is a new
class with the same three members (see :class:`Comparison`); nothing else in the engine switches on the kind.
Student code never runs here, so monkeypatching torch / numpy / builtins in the student's process changes nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Protocol, Sequence

import torch

from autograder.core import verdicts as V

Outputs = Mapping[str, torch.Tensor]


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_floating_point:
        return "float"
    if dtype.is_complex:
        return "complex"
    return "int"


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ("," if t.dim() == 1 else "") + ")"


def _index(flat: int, shape: torch.Size) -> str:
    idx = []
    for size in reversed(shape):
        idx.append(flat % size)
        flat //= size
    return "(" + ", ".join(str(i) for i in reversed(idx)) + ")" if idx else "()"


def _label(key: str, many: bool) -> str:
    if not many:
        return "output"
    return "output" if key == "out" else f"output {key[3:]} of the tuple"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _percent(fraction: float) -> str:
    """0.05556 -> '5.556 %'; 1e-4 -> '0.01 %'; huge ratios stay readable ('3.2e+05 %')."""
    return f"{100 * fraction:.4g} %"


def _structure(expected: Outputs, got: Outputs) -> str | None:
    if set(expected) == set(got):
        return None
    def describe(o: Outputs) -> str:
        return "a single tensor" if list(o) == ["out"] else f"a tuple of {len(o)}"
    return f"expected {describe(expected)}, got {describe(got)}"


def check_shapes(expected: Outputs, got: Outputs) -> tuple[str, str] | None:
    """Wrong structure / shape, or None when every output has the reference's shape."""
    problem = _structure(expected, got)
    if problem:
        return V.WRONG_SHAPE, problem
    many = len(expected) > 1
    for key, exp in expected.items():
        g = got[key]
        if tuple(g.shape) != tuple(exp.shape):
            return V.WRONG_SHAPE, f"{_label(key, many)}: expected shape {_shape(exp)}, got {_shape(g)}"
    return None


def check_finite(expected: Outputs, got: Outputs) -> tuple[str, str] | None:
    many = len(expected) > 1
    for key, exp in expected.items():
        g = got[key]
        if _kind(g.dtype) not in ("float", "complex") or bool(torch.isfinite(g).all()):
            continue
        bad = ~torch.isfinite(g)
        if _kind(exp.dtype) in ("float", "complex"):
            bad &= torch.isfinite(exp)
        n = int(bad.sum())
        if n:
            first = int(torch.nonzero(bad.reshape(-1))[0])
            nans = int(torch.isnan(g[bad]).sum())
            what = "NaN" if nans == n else "Inf" if nans == 0 else "NaN or Inf"
            return V.NON_FINITE, (f"{_label(key, many)}: {n} of {g.numel()} values are {what} "
                                  f"(first at index {_index(first, g.shape)})")
    return None


Inputs = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None


class Judgement(NamedTuple):
    """What a comparison says about one case's outputs: ``credit`` is the share of the case's points earned (1 when
    passed; between 0 and 1 only where a kind gives partial credit)."""

    verdict: str
    message: str
    credit: float


class Comparison(Protocol):
    """A comparison kind (the type of :attr:`autograder.core.spec.Question.compare`)."""

    #: True when the answer is unique, so a wrong value can be told apart from the reference's by value (the demo's
    #: synthetic class breaks only such questions by perturbing the output).
    exact: bool

    def compare(self, expected: Outputs, got: Outputs, inputs: Inputs = None) -> Judgement:
        """Judge ``got`` against ``expected`` (reference outputs, plus ``_``-prefixed calibration values).
        ``inputs`` (or a function building them) is only read by kinds that need it."""

    def same_answer(self, a: Outputs, b: Outputs) -> bool:
        """Whether two answers count as the same one (a student's and a known mistake's)."""

    def describe(self) -> str | list[str]:
        """The kind and its settings as JSON-able data (part of the case files' fingerprint)."""


def split_calibration(expected: Outputs) -> tuple[Outputs, Outputs]:
    """The reference outputs, and the calibration values stored beside them (keys starting with ``_``)."""
    outputs = {k: v for k, v in expected.items() if not k.startswith("_")}
    return outputs, {k: v for k, v in expected.items() if k.startswith("_")}


@dataclass(frozen=True)
class TensorMatch:
    """Exact-answer comparison: every output tensor must match the reference's shape, dtype kind (float / int /
    bool) and values within ``|got - expected| <= atol + rtol * |expected|``."""

    rtol: float = 1e-4
    atol: float = 1e-5
    check_dtype: bool = True
    exact = True

    def compare(self, expected: Outputs, got: Outputs, inputs: Inputs = None) -> Judgement:
        verdict, message = self.match(split_calibration(expected)[0], got)
        return Judgement(verdict, message, 1.0 if verdict == V.PASSED else 0.0)

    def same_answer(self, a: Outputs, b: Outputs) -> bool:
        return self.match(a, b)[0] == V.PASSED

    def describe(self) -> str:
        return repr(self)

    def match(self, expected: Outputs, got: Outputs) -> tuple[str, str]:
        """``(verdict, message)``: the outputs' structure, shapes, dtype kinds, finiteness, then values."""
        found = check_shapes(expected, got)
        if found:
            return found
        many = len(expected) > 1
        if self.check_dtype:
            for key, exp in expected.items():
                if _kind(got[key].dtype) != _kind(exp.dtype):
                    return V.WRONG_DTYPE, (f"{_label(key, many)}: expected a {_kind(exp.dtype)} tensor ({exp.dtype}), "
                                           f"got {got[key].dtype}")
        found = check_finite(expected, got)
        if found:
            return found
        for key, exp in expected.items():
            e = exp.to(torch.float64) if _kind(exp.dtype) != "complex" else exp.to(torch.complex128)
            g = got[key].to(e.dtype)
            # Where isclose holds everywhere, so does the rule below (same formula; it is stricter about Inf and
            # NaN): one call instead of a dozen for the common case, a passing answer.
            if bool(torch.isclose(g, e, rtol=self.rtol, atol=self.atol, equal_nan=True).all()):
                continue
            err = (g - e).abs()
            both_nan = torch.isnan(g) & torch.isnan(e) if e.is_floating_point() else torch.zeros_like(err, dtype=bool)
            err = torch.where(both_nan, torch.zeros_like(err), err)
            err = torch.nan_to_num(err, nan=float("inf"))
            allowed = self.atol + self.rtol * e.abs()
            bad = err > allowed
            n = int(bad.sum())
            if n:
                flat = int(torch.argmax(torch.where(bad, err, torch.zeros_like(err))).item()) if err.dim() else 0
                rel = err / e.abs().clamp_min(1e-12)
                max_rel = float(rel[bad].max())
                i = _index(flat, e.shape)
                return V.WRONG_VALUES, (
                    f"{_label(key, many)}: {n} of {e.numel()} values differ from the reference by more than allowed; "
                    f"max abs error {_fmt(float(err.max()))} at index {i} (got {_fmt(float(g.reshape(-1)[flat].real))}, "
                    f"expected {_fmt(float(e.reshape(-1)[flat].real))}); the worst value is {_percent(max_rel)} off; "
                    f"allowed: a difference of {self.atol:g} plus {_percent(self.rtol)} of the expected value")
        return V.PASSED, "matches the reference"


@dataclass(frozen=True)
class Property:
    """One named property of a non-unique answer. ``check(inputs, output, expected) -> (ok, message)``; runs in the
    grader's own process (never in the student's), with ``inputs`` rebuilt there (models included). ``expected``
    also holds the case's calibration values (``_``-prefixed keys, see :attr:`Question.calibrate`).

    ``required``: when it fails the case earns nothing. Otherwise the case earns ``weight`` / (sum of weights) for
    each property that holds (partial credit), provided every required property holds."""

    name: str
    check: Callable[[Mapping[str, Any], Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]], tuple[bool, str]]
    weight: float = 1.0
    required: bool = True


@dataclass(frozen=True)
class PropertyCheck:
    """Comparison for answers that are not unique (a fooling image...): the output must have the reference's
    shape and be finite, then the properties are checked (see :class:`Property` for partial credit). Two answers
    are "the same" (a known mistake recognised) when they match within :class:`TensorMatch`'s default tolerance."""

    properties: Sequence[Property]
    exact = False

    def same_answer(self, a: Outputs, b: Outputs) -> bool:
        return TensorMatch().same_answer(a, b)

    def describe(self) -> list[str]:
        return [p.name for p in self.properties]

    def compare(self, expected: Outputs, got: Outputs, inputs: Inputs = None) -> Judgement:
        """``(verdict, message, credit)``: credit 1 when every property holds, 0 when a required one fails, else the
        weighted share of the properties that hold (partial credit)."""
        reference = expected
        expected, _ = split_calibration(expected)
        found = check_shapes(expected, got) or check_finite(expected, got)
        if found:
            return Judgement(*found, 0.0)
        if callable(inputs):
            inputs = inputs()
        inputs = inputs if inputs is not None else {}
        failed: list[tuple[Property, str]] = []
        for prop in self.properties:
            try:
                ok, why = prop.check(inputs, got, reference)
            except Exception as exc:  # noqa: BLE001 - a property that cannot be evaluated has failed
                ok, why = False, f"could not be checked ({type(exc).__name__}: {exc})"
            if not ok:
                failed.append((prop, why))
                if prop.required:
                    return Judgement(V.PROPERTY_FAILED, f"property {prop.name!r} failed: {why}", 0.0)
        if not failed:
            names = ", ".join(p.name for p in self.properties)
            return Judgement(V.PASSED, f"all properties hold ({names})", 1.0)
        total = math.fsum(p.weight for p in self.properties)
        credit = math.fsum(p.weight for p in self.properties if p not in [f for f, _ in failed]) / total
        prop, why = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return Judgement(V.PROPERTY_FAILED, (f"property {prop.name!r} failed{more}: {why}; the other properties hold, "
                                             f"so this case earns {credit:.0%} of its points"), credit)
