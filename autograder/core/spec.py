"""Questions as data: the vocabulary every ``autograder/questions/<assignment>.py`` file is written in.

A question file declares, for one assignment, which functions are graded, how many points each is worth, how to
build the inputs of each case (seeded, so references can be regenerated bit for bit), and how a student's output
is compared with the reference output. Nothing here runs student code.

Example (see ``autograder/questions/*.py``)::

    def build_saliency(seed: int, n: int, size: int) -> dict:
        g = torch.Generator().manual_seed(seed)
        return {"X": torch.randn(n, 3, size, size, generator=g),
                "y": torch.randint(0, 10, (n,), generator=g),
                "model": ModelRef("tiny_cnn", seed=seed)}

    QUESTIONS = [
        Question(id="compute_saliency_maps", points=4, build=build_saliency,
                 cases=[Case("public", seed=0, public=True, params={"n": 2, "size": 16}),
                        Case("hidden_batch5", seed=101, params={"n": 5, "size": 20})],
                 compare=TensorMatch(rtol=1e-4, atol=1e-5)),
    ]
    ASSIGNMENT = Assignment(id="01_saliency_class_visualization", questions=QUESTIONS)

The builder returns the call's arguments *by keyword, in signature order*; the function is called as
``fn(**inputs)`` unless ``Question.positional`` is True (then ``fn(*inputs.values())``).
Values may be tensors, Python scalars / strings / lists of them, or a :class:`ModelRef`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from autograder.core.compare import Comparison, Property, PropertyCheck, TensorMatch

__all__ = ["Assignment", "Case", "Comparison", "Mistake", "ModelRef", "Property", "PropertyCheck", "Question",
           "TensorMatch"]


@dataclass(frozen=True)
class ModelRef:
    """A model argument. ``name`` is ``"shapes"`` (the bundled classifier) or the name of a tiny, public,
    deterministic architecture in :mod:`autograder.core.tiny_models` whose weights are stored in the case file."""

    name: str
    seed: int = 0


@dataclass(frozen=True)
class Case:
    """One graded call. ``params`` go to the question's builder together with ``seed``.

    Public cases ship to students (self-check); hidden cases use other seeds, batch sizes and shapes.
    ``weight`` is the case's share of the question's points (normalized over the question's cases)."""

    name: str
    seed: int
    public: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer, as data. ``function`` is the dotted path (``"package.module:name"``) of a function
    with the graded function's signature that makes the mistake; it is called like the student's function, on the
    same inputs, in the grader's process only, and is looked up lazily, so it may live in instructor-only code
    (the technique's module in ``utils.reference``). When a wrong answer matches its output, the message says
    ``hint``."""

    name: str
    hint: str
    function: str


@dataclass(frozen=True)
class Question:
    """A graded function. ``id`` is the function's name in the notebook and in :mod:`utils.reference`.

    ``inplace``: name of an argument the function mutates; its value after the call is the graded output
    (``out``), e.g. ``class_visualization_update_step(img, ...)`` with ``inplace="img"``.
    Outputs are normalized to a dict of tensors: a tensor -> ``{"out": t}``; a tuple -> ``{"out0": .., "out1": ..}``;
    a Python number -> a 0-d float64 tensor.
    ``repeat``: call the function this many times in a row on the same arguments and grade the last result
    (for in-place steps: state that leaks from one call into the next, e.g. gradients never reset, shows up).
    ``reference``: name in :mod:`utils.reference` when it differs from ``id``.
    ``optional``: keyword arguments passed only when the student's function takes them (a function written to a
    shorter published signature, cs231n's say, is called the way it was written).
    ``mistakes``: known wrong answers to recognise (see :class:`Mistake`).
    ``calibrate``: dotted path of an instructor-only function ``(inputs, reference_outputs) -> {name: tensor}``
    run when the case files are generated; its values are stored with the expected outputs (as ``_name``) for
    property checks to read, e.g. where the reference would be after one more step.
    ``calls``: other graded functions this one calls by name in a notebook (``style_loss`` calls ``gram_matrix``):
    a wrong one may cost this question too, which the mutant corpora check and ``autograder list`` shows.
    ``description``: one line on what the function computes (``autograder list`` prints it)."""

    id: str
    points: float
    build: Callable[..., dict[str, Any]]
    cases: Sequence[Case]
    compare: Comparison = TensorMatch()
    inplace: str | None = None
    positional: bool = False
    repeat: int = 1
    reference: str | None = None
    description: str = ""
    optional: Sequence[str] = ()
    mistakes: Sequence[Mistake] = ()
    calibrate: str | None = None
    calls: Sequence[str] = ()

    @property
    def reference_name(self) -> str:
        return self.reference or self.id


@dataclass(frozen=True)
class Assignment:
    """An assignment: its id (folder and notebook name) and its questions, in notebook order."""

    id: str
    questions: Sequence[Question]

    @property
    def notebook(self) -> str:
        return f"{self.id}.ipynb"

    @property
    def max_points(self) -> float:
        return float(sum(q.points for q in self.questions))

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        names = ", ".join(q.id for q in self.questions)
        raise KeyError(f"unknown question {qid!r} in {self.id}; valid: {names}")
