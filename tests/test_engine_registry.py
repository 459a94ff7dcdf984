"""The registry: every question file loads, question ids are unique across assignments, and every case has its
reference file with matching metadata (so ``check`` / ``score`` / the grader can find it by question id)."""
from __future__ import annotations

import pytest

from autograder.core import casefile, registry
from tests.fixtures.fixture_assignment import students

registry.register(students.QUESTIONS)
ENTRIES = registry.entries()


def test_every_question_file_loads():
    assert registry.errors() == {}
    assert students.ASSIGNMENT in ENTRIES


def test_question_ids_are_unique_across_assignments():
    seen: dict[str, str] = {}
    for a, entry in ENTRIES.items():
        for q in entry.assignment.questions:
            assert q.id not in seen, f"{q.id} is in {seen.get(q.id)} and {a}"
            seen[q.id] = a
            assert registry.find_question(q.id)[0].id == a


@pytest.mark.parametrize("assignment", sorted(ENTRIES))
def test_specs_are_sane_and_reference_files_match(assignment):
    entry = ENTRIES[assignment]
    for q in entry.assignment.questions:
        assert q.points > 0 and q.cases, q.id
        assert any(c.public for c in q.cases) and any(not c.public for c in q.cases), q.id
        assert len({c.name for c in q.cases}) == len(q.cases), q.id
        for c in q.cases:
            cf = casefile.read(entry.case_path(q, c))
            assert (cf.meta["question"], cf.meta["case"], cf.meta["public"]) == (q.id, c.name, c.public)
            assert cf.meta["inplace"] == q.inplace and cf.expected, (q.id, c.name)


def test_unknown_ids_say_what_exists():
    with pytest.raises(KeyError, match="unknown assignment 'nope'; known: .*fixture_assignment"):
        registry.get("nope")
    with pytest.raises(KeyError, match="no graded question named 'nope'"):
        registry.find_question("nope")
