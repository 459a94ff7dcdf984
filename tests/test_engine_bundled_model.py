"""A case that takes the bundled classifier (``ModelRef("shapes")``): loaded by name, never stored in the case
file, checked against the weights' fingerprint, and available to the sandboxed worker from the public utils."""
from __future__ import annotations

import textwrap

import nbformat
import pytest
import torch

from autograder.core import casefile, casegen, registry
from autograder.grade.session import Session

pytest.importorskip("utils.models")

QUESTIONS = '''
import torch
from pathlib import Path
from autograder.core.spec import Assignment, Case, ModelRef, Question, TensorMatch

HERE = Path(__file__).resolve().parent
REFERENCE = str(HERE / "ref.py")
CASES_DIR = HERE / "refs"


def build(seed, n):
    g = torch.Generator().manual_seed(seed)
    return {"X": torch.randn(n, 3, 64, 64, generator=g), "model": ModelRef("shapes")}


ASSIGNMENT = Assignment(id="bundled_fixture", questions=[
    Question(id="bundled_scores", points=1, build=build, compare=TensorMatch(rtol=1e-4, atol=1e-5),
             cases=[Case("one", seed=0, public=True, params={"n": 1}), Case("three", seed=5, params={"n": 3})])])
'''
ANSWER = "def bundled_scores(X, model):\n    return model(X)\n"


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundled")
    (folder / "questions.py").write_text(QUESTIONS)
    (folder / "ref.py").write_text(ANSWER)
    entry = registry.register(folder / "questions.py")
    casegen.generate(entry)
    return entry


def test_bundled_model_is_referenced_not_stored(entry):
    q = entry.assignment.questions[0]
    cf = casefile.read(entry.case_path(q, q.cases[0]))
    model_arg = cf.meta["args"][1]
    assert model_arg["kind"] == "model" and model_arg["model"] == "shapes" and model_arg["stored"] is False
    assert not any(k.startswith("model/") for k in cf.tensors)
    model = casefile.build_args(cf)["model"]
    torch.testing.assert_close(model(cf.tensors["in/X"]), cf.expected["out"])


def test_changed_bundled_weights_are_detected(entry):
    q = entry.assignment.questions[0]
    cf = casefile.read(entry.case_path(q, q.cases[0]))
    cf.meta["args"][1]["sha256"] = "0" * 64
    with pytest.raises(casefile.CaseFileError, match="regenerate"):
        casefile.build_args(cf)


def test_worker_grades_with_the_bundled_model(entry, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch\nfrom utils.models import "
                                                                   "load_model\n" + ANSWER)])
    path = tmp_path / "bundled_fixture.ipynb"
    nbformat.write(nb, path)
    wrong = textwrap.dedent("""
        import torch
        def bundled_scores(X, model):
            return model(X).softmax(dim=1)
    """)
    wrong_path = tmp_path / "wrong.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(wrong)]), wrong_path)
    with Session(timeout=30) as session:
        (result,) = session.grade(path, entry).results
        (wrong_result,) = session.grade(wrong_path, entry).results
    assert (result.verdict, result.points) == ("passed", 1.0), result.message
    assert wrong_result.verdict == "wrong values"
