"""Points arithmetic: one function, exact totals, partial credit by case weight."""
from __future__ import annotations

import pytest

from autograder.core.scoring import case_points, question_points
from autograder.core.spec import Case, Question


def q(points, weights):
    return Question(id="q", points=points, build=lambda seed: {},
                    cases=[Case(f"c{i}", i, public=i == 0, weight=w) for i, w in enumerate(weights)])


def test_all_passed_is_exactly_the_question_points():
    question = q(1, [1, 1, 1])
    assert question_points(question, ["c0", "c1", "c2"]) == 1.0
    assert question_points(question, ["c2", "c0", "c1"]) == 1.0


def test_partial_credit_by_weight():
    question = q(2, [1, 1, 2])
    assert question_points(question, []) == 0.0
    assert question_points(question, ["c0"]) == 0.5
    assert question_points(question, ["c2"]) == 1.0
    assert question_points(question, ["c0", "c1"]) == 1.0
    assert [case_points(question, c.name) for c in question.cases] == [0.5, 0.5, 1.0]


def test_thirds_are_rounded_and_stable():
    question = q(1, [1, 1, 1])
    assert question_points(question, ["c0"]) == 0.333333
    assert question_points(question, ["c0", "c1"]) == 0.666667
    assert repr(question_points(question, ["c1", "c0"])) == "0.666667"


def test_unknown_case_is_an_error():
    with pytest.raises(KeyError):
        question_points(q(1, [1]), ["nope"])
    with pytest.raises(KeyError):
        case_points(q(1, [1]), "nope")


def test_zero_total_weight():
    assert question_points(q(3, [0, 0]), ["c0"]) == 0.0
