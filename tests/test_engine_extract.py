"""Code extraction: magics stripped, only imports / defs / classes / literal constants kept, errors located."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from autograder.core import extract

REPO = Path(__file__).resolve().parents[1]


def nb_with(*sources, markdown_first=True):
    cells = [nbformat.v4.new_markdown_cell("# title")] if markdown_first else []
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.v4.new_notebook(cells=cells)


def kept(source):
    return [type(n).__name__ for n in extract.kept_module(source, "x.py").body]


def test_keeps_imports_defs_classes_and_literal_constants_only():
    src = ("import torch\nfrom math import pi\nSIZE = 3\nNAMES: tuple = ('a', 'b')\nmodel = load_model()\n"
           "print('demo')\nfor i in range(3):\n    pass\ndef f(x):\n    return x\nclass A:\n    pass\n"
           "if True:\n    import os\n")
    assert kept(src) == ["Import", "ImportFrom", "Assign", "AnnAssign", "FunctionDef", "ClassDef"]


def test_magics_and_shell_lines_are_blanked_keeping_line_numbers():
    src = "%matplotlib inline\n!pip install foo\nx = !ls\ndef f(x):\n    %time y = 1\n    return x\nf?\n"
    cleaned = extract.strip_magics(src)
    assert cleaned.splitlines()[3] == "def f(x):"
    assert cleaned.splitlines()[4] == "    pass"
    assert kept(cleaned) == ["FunctionDef"]
    assert extract.strip_magics("%%bash\necho hi\n") is None
    assert extract.strip_magics("%%time\nimport os\n").splitlines()[1] == "import os"


def test_cells_numbering_grade_ids_and_syntax_errors():
    nb = nb_with("import torch", "def f(x)\n    return x\n", "def g(x):\n    return x\n")
    nb.cells[2].metadata["nbgrader"] = {"grade_id": "f"}
    cells = extract.extract_cells(nb)
    assert [c.index for c in cells] == [2, 3, 4]
    assert cells[1].syntax_error == "SyntaxError in cell 3 (f) line 1: expected ':' (`def f(x)`)"
    assert cells[2].defines == ["g"]
    assert extract.explain_missing("f", cells) == cells[1].syntax_error
    assert extract.explain_missing("h", cells) is None
    assert extract.explain_missing("g", cells, {4: "cell 4 raised ImportError: nope"}) == \
        "cell 4 raised ImportError: nope"


def test_unreadable_notebooks(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(extract.NotebookError, match="not a Jupyter notebook|not valid JSON"):
        extract.read_notebook(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(extract.NotebookError):
        extract.read_notebook(bad)
    with pytest.raises(extract.NotebookError):
        extract.read_notebook(tmp_path / "missing.ipynb")
    bad.write_text('{"hello": 1}')
    with pytest.raises(extract.NotebookError):
        extract.read_notebook(bad)


def test_parsing_is_serialized_across_threads(monkeypatch):
    """CPython 3.11's AST constructor keeps a recursion counter shared by all threads; concurrent parses in the
    batch grader's thread pool failed with "AST constructor recursion depth mismatch". No two parses may overlap."""
    import ast
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    real_parse, active, most = ast.parse, [0], [0]
    lock = threading.Lock()

    def slow_parse(*args, **kwargs):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.002)
        try:
            return real_parse(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(ast, "parse", slow_parse)
    nb = nb_with(*[f"def f{i}(x):\n    return x + {i}\n" for i in range(10)])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: extract.extract_cells(nb), range(8)))
    assert most[0] == 1
    assert all([c.defines for c in cells] == [[f"f{i}"] for i in range(10)] for cells in results)


#: Cells whose statements share lines, continue lines, carry decorators, comments, odd line breaks.
TRICKY = [
    "a = 1; b = a\nc = b + d\n",
    "@dec(x)\n\n# comment\n@dec2\ndef f(y=z):\n    return w + y\n",
    "x = (1 +\n  q)  # comment\ny = x \\\n  + r\n",
    "class A(B):\n    k = m\n    def g(self):\n        return self.k + n\n",
    "s = '''\n\x0c\u2028'''\nt = s + u\n",
    "x = 1 \\\n  ; y = x + v\n",
    "if flag: z = g(1)\r\nw = z\rv = [i * k for i in w]\n",
    "async def h(p=default):\n    global G\n    G = p\n    return await other(p)\n",
]


@pytest.mark.parametrize("source", TRICKY, ids=range(len(TRICKY)))
def test_statement_sources_give_the_names_unparsing_gives(source):
    """``select`` reads each statement's names from its own lines (cheap) instead of from ``ast.unparse`` (slow): the
    names must be the same, and a statement sharing a line with another falls back to unparsing."""
    body = extract.parse(source).body
    texts = extract._statement_sources(source, body)
    assert len(texts) == len(body)
    for node, text in zip(body, texts):
        assert extract._reads(node, text) == extract._reads(node)
        if text is not None:
            try:
                tree = ast.parse(text)
            except SyntaxError:  # a cut that is no statement on its own: _reads unparses instead
                continue
            assert [ast.dump(n) for n in tree.body] == [ast.dump(node)]


def test_statement_sources_on_every_course_notebook():
    """The same agreement on every statement of the solution and release notebooks."""
    import glob

    n = 0
    for path in sorted(glob.glob(str(REPO / "solutions" / "*" / "*.ipynb"))) + \
            sorted(glob.glob(str(REPO / "assignments" / "*" / "*.ipynb"))):
        for cell in extract.extract_cells(extract.read_notebook(path)):
            if cell.syntax_error is not None:
                continue
            body = extract.parse(cell.source).body
            for node, text in zip(body, extract._statement_sources(cell.source, body)):
                assert extract._reads(node, text) == extract._reads(node), (path, cell.index, text)
                n += 1
    assert n > 500
