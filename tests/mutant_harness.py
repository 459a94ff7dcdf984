"""Shared harness for the mutant corpora ``tests/mutants/mutants_<nn>.py``.

A corpus module defines ``WRONG`` and ``CORRECT``: ``{question_id: {variant_name: function}}``. Each variant
replaces one function of an otherwise correct submission (the reference) and every question is graded with the
engine's in-process path (case file -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``), the
path the sandboxed worker's results go through too, with the committed case files.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable

from autograder.core import calls, casefile, judge, registry
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

    def grade_question(self, qid: str, fn: Callable) -> V.Result:
        """``fn`` graded on every case (public and hidden) of question ``qid``."""
        q = self.entry.assignment.question(qid)
        results = []
        for case in q.cases:
            cf = self.case_file(qid, case.name)
            status, outputs = calls.run(fn, casefile.build_args(cf), q.inplace, q.positional,
                                        cf.meta.get("seed"), q.repeat, q.optional)
            results.append(judge.judge_case(q, case, status, outputs, cf.expected,
                                            lambda cf=cf: casefile.build_args(cf)))
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
        """The wrong variant loses points on ``qid`` (never as 'not attempted') and on no other question."""
        q = self.entry.assignment.question(qid)
        res = self.graded(qid, "wrong", name)
        assert res.points < q.points, f"{name} got full marks on {qid}"
        assert all(c.verdict != V.NOT_ATTEMPTED for c in res.cases if not c.passed)
        for other in self.entry.assignment.questions:
            if other.id != qid:
                assert self.reference_result(other.id).points == other.points, other.id

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
