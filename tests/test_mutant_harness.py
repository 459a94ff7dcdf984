"""The mutant harness itself can fail: a wrong function that also breaks a second question is caught.

A notebook's functions share one namespace, so a wrong ``gram_matrix`` also breaks the reference ``style_loss``
that calls it. 04's spec declares that (``style_loss.calls``); with the declaration removed, the harness must
report the second question.
"""
from __future__ import annotations

import dataclasses

import pytest

from tests.mutant_harness import Harness


class _Undeclared(Harness):
    """04 as if ``style_loss`` did not declare that it calls ``gram_matrix``."""

    @property
    def entry(self):
        entry = super().entry
        questions = [dataclasses.replace(q, calls=()) for q in entry.assignment.questions]
        return dataclasses.replace(entry, assignment=dataclasses.replace(entry.assignment, questions=questions))


def test_a_wrong_function_that_breaks_a_second_question_is_reported():
    harness = _Undeclared("04_neural_style", "mutants_04")
    with pytest.raises(AssertionError, match="also costs style_loss"):
        harness.check_wrong_variant("gram_matrix", "not_normalized")


def test_the_declared_caller_may_lose_and_the_others_may_not():
    harness = Harness("04_neural_style", "mutants_04")
    harness.check_wrong_variant("gram_matrix", "not_normalized")   # style_loss declares the call
    notebook = harness.grade_notebook({"gram_matrix": harness.mutants.WRONG["gram_matrix"]["not_normalized"]})
    assert notebook["style_loss"].points < notebook["style_loss"].max_points
    assert all(r.points == r.max_points for q, r in notebook.items() if q not in ("gram_matrix", "style_loss"))


def test_the_notebook_namespace_is_shared_and_the_reference_untouched():
    harness = Harness("04_neural_style", "mutants_04")
    wrong = harness.mutants.WRONG["gram_matrix"]["not_normalized"]
    ns = harness.notebook({"gram_matrix": wrong})
    assert ns["style_loss"].__globals__ is ns and ns["gram_matrix"] is wrong
    assert harness.reference("style_loss").__globals__["gram_matrix"] is harness.reference("gram_matrix")
    assert "gram_matrix" in harness.reachable_names(ns["style_loss"], ns)
    assert "gram_matrix" not in harness.reachable_names(ns["tv_loss"], ns)
