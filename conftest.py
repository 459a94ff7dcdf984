"""Repository-wide pytest wiring.

`python -m pytest` runs the unit tests under tests/ and, through nbval (`--nbval-lax`, see pyproject), every solution
notebook under solutions/. Notebook cells get the `notebooks` marker so the two groups can be run apart:
`-m "not notebooks"` (unit tests, minutes) and `-m notebooks` (the notebook runs).
"""
from __future__ import annotations

import pytest

# Student-facing and generated notebooks, fixtures and mutants are data for the tests, not tests themselves.
collect_ignore_glob = [
    "assignments/*",
    "dist/*",
    "benchmarks/*",
    "tests/fixtures/*",
    "tests/mutants/*",
    "**/.ipynb_checkpoints/*",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebooks)
