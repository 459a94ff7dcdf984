"""Shared harness for the mutant corpora ``tests/mutants/mutants_<nn>.py``.

A corpus module defines ``WRONG`` and ``CORRECT``: ``{question_id: {variant_name: function}}``. Each variant
replaces one function of an otherwise correct notebook (the reference's functions) and the questions are graded
with the engine's per-case pipeline (:mod:`autograder.core.pipeline`: build the inputs from the committed case
file, call, judge), the pipeline the sandboxed worker and the grader share.

The functions of such a notebook share one namespace, as a notebook's do: a reference function that calls another
graded function by name calls the variant (see :meth:`Harness.notebook`). A wrong variant must lose points on its
own question and on no other, except the questions whose spec declares they call it (``Question.calls``).
"""
from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Callable, Mapping

from autograder.core import casefile, judge, pipeline, registry
from autograder.core import verdicts as V

MUTANTS_DIR = Path(__file__).resolve().parent / "mutants"


class Harness:
    """Grades functions against one assignment's questions; case files are read once and cached."""

    def __init__(self, assignment_id: str, corpus: str):
        self.assignment_id = assignment_id
        spec = importlib.util.spec_from_file_location(corpus, MUTANTS_DIR / f"{corpus}.py")
        self.mutants: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.mutants)
        self._case_file = lru_cache(maxsize=None)(self._read_case)

    @property
    def entry(self) -> registry.Entry:
        return registry.get(self.assignment_id)

    def _read_case(self, qid: str, case_name: str) -> casefile.CaseFile:
        q = self.entry.assignment.question(qid)
        case = next(c for c in q.cases if c.name == case_name)
        return casefile.read(self.entry.case_path(q, case))

    def case_file(self, qid: str, case_name: str) -> casefile.CaseFile:
        return self._case_file(qid, case_name)

    def reference(self, qid: str) -> Callable:
        return self.entry.reference_function(self.entry.assignment.question(qid))

    def notebook(self, replaced: Mapping[str, Callable]) -> dict[str, object]:
        """The namespace of a notebook made of the reference's functions with ``replaced`` swapped in.

        The reference functions are re-created over one shared namespace (their modules' globals merged), so a
        function that calls another graded function by name calls the one in this notebook."""
        questions = self.entry.assignment.questions
        modules = {sys.modules[self.reference(q.id).__module__] for q in questions}
        ns: dict[str, object] = {}
        for module in modules:
            ns.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        files = {m.__file__ for m in modules}
        for name, fn in list(ns.items()):
            if isinstance(fn, FunctionType) and fn.__code__.co_filename in files:  # defined there, not decorated
                copy = FunctionType(fn.__code__, ns, fn.__name__, fn.__defaults__, fn.__closure__)
                copy.__kwdefaults__ = fn.__kwdefaults__
                ns[name] = copy
        for q in questions:
            ns.setdefault(q.id, ns.get(q.reference_name))
        ns.update(replaced)
        return ns

    @staticmethod
    def reachable_names(fn: Callable, ns: Mapping[str, object]) -> set[str]:
        """Global names ``fn`` may look up, following the functions of ``ns`` it names (a static reading of the
        code: ``co_names`` of the function, its nested functions and the functions they name)."""
        seen: set[str] = set()
        todo = [fn]
        while todo:
            codes = [getattr(todo.pop(), "__code__", None)]
            while codes:
                code = codes.pop()
                if not isinstance(code, CodeType):
                    continue
                for name in code.co_names:
                    if name not in seen:
                        seen.add(name)
                        if isinstance(ns.get(name), FunctionType):
                            todo.append(ns[name])
                codes.extend(c for c in code.co_consts if isinstance(c, CodeType))
        return seen

    def grade_notebook(self, replaced: Mapping[str, Callable], skip: set[str] = frozenset()) -> dict[str, V.Result]:
        """Every question (but ``skip``) of the notebook with ``replaced`` swapped in. A question whose function
        cannot reach a replaced name is exactly the reference's and gets its (cached) result; every other one is
        graded."""
        ns = self.notebook(replaced)
        out = {}
        for q in self.entry.assignment.questions:
            if q.id in skip:
                continue
            fn = ns[q.id]
            if q.id in replaced or set(replaced) & self.reachable_names(fn, ns):
                out[q.id] = self.grade_question(q.id, fn)
            else:
                out[q.id] = self.reference_result(q.id)
        return out

    def grade_question(self, qid: str, fn: Callable) -> V.Result:
        """``fn`` graded on every case (public and hidden) of question ``qid``."""
        q = self.entry.assignment.question(qid)
        results = [pipeline.grade_case(fn, q, case, self.case_file(qid, case.name)) for case in q.cases]
        return judge.question_result(q, results)

    # --- the checks every corpus runs (each test file adds its assignment-specific ones) -------------------------

    def reference_result(self, qid: str) -> V.Result:
        """The reference graded on question ``qid`` (cached: every question calls only its own function)."""
        return self._cached(("reference", qid), lambda: self.grade_question(qid, self.reference(qid)))

    def graded(self, qid: str, kind: str, name: str) -> V.Result:
        """Variant ``name`` of ``self.mutants.WRONG`` (``kind="wrong"``) or ``CORRECT`` graded on ``qid`` (cached)."""
        table = self.mutants.WRONG if kind == "wrong" else self.mutants.CORRECT
        return self._cached((kind, qid, name), lambda: self.grade_question(qid, table[qid][name]))

    def _cached(self, key, compute):
        cache = self.__dict__.setdefault("_results", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def params(self, table: dict) -> list:
        """``pytest.param(qid, name)`` for every variant of a WRONG / CORRECT table."""
        import pytest

        return [pytest.param(qid, name, id=f"{qid}-{name}") for qid, fns in table.items() for name in fns]

    def check_corpus(self, max_points: float) -> None:
        ids = sorted(q.id for q in self.entry.assignment.questions)
        assert sorted(self.mutants.WRONG) == ids
        assert sorted(self.mutants.CORRECT) == ids
        assert self.entry.assignment.max_points == max_points

    def check_reference_full_marks(self) -> None:
        for q in self.entry.assignment.questions:
            res = self.reference_result(q.id)
            assert res.points == q.points, [(c.case, c.verdict, c.message) for c in res.cases if not c.passed]

    def check_wrong_variant(self, qid: str, name: str) -> None:
        """In a notebook that is right except for this variant, ``qid`` loses points (never as 'not attempted')
        and no other question does, except those declared to call ``qid``."""
        q = self.entry.assignment.question(qid)
        res = self.graded(qid, "wrong", name)
        assert res.points < q.points, f"{name} got full marks on {qid}"
        assert all(c.verdict != V.NOT_ATTEMPTED for c in res.cases if not c.passed)
        callers = {other.id for other in self.entry.assignment.questions if qid in other.calls}
        notebook = self.grade_notebook({qid: self.mutants.WRONG[qid][name]}, skip={qid, *callers})
        for other, result in notebook.items():
            lost = [(c.case, c.verdict, c.message) for c in result.cases if not c.passed]
            assert result.points == result.max_points, f"the wrong {qid} ({name}) also costs {other}: {lost}"

    def check_correct_variant(self, qid: str, name: str) -> None:
        res = self.graded(qid, "correct", name)
        bad = [(c.case, c.verdict, c.message) for c in res.cases if not c.passed]
        assert res.points == self.entry.assignment.question(qid).points, bad

    def standard_tests(self, max_points: float) -> dict:
        """The tests every corpus runs, as module-level test functions: ``globals().update(H.standard_tests(12))``.

        The corpus covers every question and the assignment is worth ``max_points``; the reference gets full marks;
        every wrong variant loses points on its own question only; every correct variant gets full marks."""
        import pytest

        def test_every_question_has_wrong_and_correct_variants():
            self.check_corpus(max_points)

        def test_reference_gets_full_marks():
            self.check_reference_full_marks()

        @pytest.mark.parametrize("qid,name", self.params(self.mutants.WRONG))
        def test_wrong_variant_loses_points_only_on_its_question(qid, name):
            self.check_wrong_variant(qid, name)

        @pytest.mark.parametrize("qid,name", self.params(self.mutants.CORRECT))
        def test_correct_variant_gets_full_marks(qid, name):
            self.check_correct_variant(qid, name)

        tests = (test_every_question_has_wrong_and_correct_variants, test_reference_gets_full_marks,
                 test_wrong_variant_loses_points_only_on_its_question, test_correct_variant_gets_full_marks)
        return {t.__name__: t for t in tests}

    def check_public_cases_catch_wrong_variants(self, hidden_only: set[tuple[str, str]] = frozenset()) -> None:
        """Every wrong variant, except the ``(qid, name)`` pairs in ``hidden_only``, already fails a public case,
        so what a student can get wrong shows in the notebook's self-check."""
        for qid, fns in self.mutants.WRONG.items():
            for name in fns:
                if (qid, name) in hidden_only:
                    continue
                res = self.graded(qid, "wrong", name)
                assert any(c.public and not c.passed for c in res.cases), f"{qid}/{name} passes the public case"
