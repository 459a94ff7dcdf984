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

from autograder import calls, casefile, judge, registry
from autograder import verdicts as V

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
                                        cf.meta.get("seed"), q.repeat)
            results.append(judge.judge_case(q, case, status, outputs, cf.expected,
                                            lambda cf=cf: casefile.build_args(cf)))
        return judge.question_result(q, results)

    def grade_submission(self, replace: dict[str, Callable]) -> dict[str, V.Result]:
        """Every question graded, with the reference for every function not in ``replace``."""
        return {q.id: self.grade_question(q.id, replace.get(q.id) or self.reference(q.id))
                for q in self.entry.assignment.questions}
