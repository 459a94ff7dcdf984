"""``python -m autograder pytest NOTEBOOK --assignment ID``: one pytest item per graded case.

A small test module is generated on the fly: a session fixture grades the notebook once (sandboxed worker, like
the batch grader) and each ``test_case[<question>-<case>]`` item asserts that its case passed, failing with the
verdict and message.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from autograder.core import registry
from autograder.grade import session
from autograder.grade.policy import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

TEMPLATE = '''import json
import pytest
from autograder.course import pytest_support

CONFIG = json.loads({config!r})
CASES = pytest_support.case_ids(CONFIG["assignment"])


@pytest.fixture(scope="session")
def graded():
    return pytest_support.grade(CONFIG)


@pytest.mark.parametrize("question,case", CASES, ids=[f"{{q}}-{{c}}" for q, c in CASES])
def test_case(graded, question, case):
    verdict, message = graded[(question, case)]
    if verdict != "passed":
        pytest.fail(f"{{verdict}}: {{message}}", pytrace=False)
'''


def case_ids(assignment: str) -> list[tuple[str, str]]:
    entry = registry.get(assignment)
    return [(q.id, c.name) for q in entry.assignment.questions for c in q.cases]


def grade(config: dict) -> dict[tuple[str, str], tuple[str, str]]:
    for path in config.get("questions", []):
        registry.register(path)
    results = session.grade_notebook(config["notebook"], config["assignment"], timeout=config["timeout"],
                                    memory_mb=config["memory_mb"], load_timeout=config.get("load_timeout"))
    return {(r.question, c.case): (c.verdict, c.message) for r in results for c in r.cases}


def run(notebook: str | Path, assignment: str, *, timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB, load_timeout: float | None = None, questions: list[str] = (),
        pytest_args: list[str] = ()) -> int:
    """Run pytest on one notebook; returns pytest's exit code."""
    import pytest

    registry.get(assignment)  # fail early with the list of known assignments
    config = {"notebook": str(Path(notebook).resolve()), "assignment": assignment, "timeout": timeout,
              "memory_mb": memory_mb, "load_timeout": load_timeout,
              "questions": [str(Path(q).resolve()) for q in questions]}
    with tempfile.TemporaryDirectory(prefix="autograder-pytest-") as tmp:
        test_file = Path(tmp) / f"test_{assignment}.py"
        test_file.write_text(TEMPLATE.format(config=json.dumps(config)))
        (Path(tmp) / "pytest.ini").write_text("[pytest]\n")
        # one line per failing case (its verdict and message), not a traceback each; pytest_args may override
        return int(pytest.main([str(test_file), "-c", str(Path(tmp) / "pytest.ini"), "--rootdir", tmp,
                                "-p", "no:cacheprovider", "--tb=line", "-rf", *pytest_args]))
