"""Feedback pages and the class report, on hand-made results (no grading): self-contained files, labelled images
of failing cases only on one shared scale with a difference panel, one message for a notebook that could not be
loaded, points as people write them; the report grouped by assignment, counting students, linking feedback."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import torch
from PIL import Image

from autograder.grade import feedback, report
from autograder.core import verdicts as V


def _case(q, name, verdict, points, max_points, public=True, message="", output=None):
    return V.CaseResult(q, name, public, verdict, message or V.MEANING[verdict], points, max_points, output)


def _pngs(page: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"))
            for b in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)]


def test_points_are_written_as_people_write_them():
    assert [feedback._fmt(x) for x in (1 / 3, 1.0, 0.5, 0.0, 2.675, 1e-9)] == ["0.33", "1", "0.5", "0", "2.67", "0"]


def test_feedback_page_is_self_contained_with_labelled_images_of_failing_cases_only(tmp_path):
    torch.manual_seed(0)
    ref = torch.rand(2, 16, 16)
    third = 1 / 3
    cases = [_case("sal", "n2", V.WRONG_VALUES, 0.0, third, output={"out": 2 * ref + 1}),
             _case("sal", "n3", V.PASSED, third, third, output={"out": ref.clone()}),
             _case("sal", "h1", V.WRONG_VALUES, 0.0, third, public=False, output={"out": 2 * ref + 1})]
    ok = [_case("add", "a", V.PASSED, 0.5, 0.5, output={"out": ref.clone()}),
          _case("add", "b", V.PASSED, 0.5, 0.5, output={"out": ref.clone()})]
    results = [V.summarize("sal", cases, third, 1.0), V.summarize("add", ok, 1.0, 1.0)]
    expected = {("sal", "n2"): {"out": ref}, ("sal", "n3"): {"out": ref}, ("sal", "h1"): {"out": ref},
                ("add", "a"): {"out": ref}, ("add", "b"): {"out": ref}}
    (tmp_path / "feedback" / "s").mkdir(parents=True)
    (tmp_path / "feedback" / "s" / "A__old.png").write_bytes(b"x")  # left by an earlier version
    path = feedback.write(tmp_path, "s", "A", results, expected)
    assert sorted(p.name for p in path.parent.iterdir()) == ["A.html"]  # one file, images embedded
    page = path.read_text()
    assert "0.33 / 1" in page and "0.333333" not in page and "1.33 / 2" in page
    assert not re.search(r"src='(?!data:image/png;base64,)", page)
    # only the failing public case has images: output, reference and difference rows, 2 examples each
    assert page.count("<figure>") == 1 and "Case <b>n2</b>" in page
    for label in ("your output", "reference", "difference"):
        assert f"<th class='row'>{label}</th>" in page
    images = _pngs(page)
    assert len(images) == 6
    out0, ref0, diff0 = images[0], images[2], images[4]
    # one shared scale: output = 2 * reference + 1 does not look like the reference
    assert out0.mean() > ref0.mean() + 60
    assert ref0.max() <= 90 <= out0.min() + 10  # reference in [0, 1], output in [1, 3]: scale 0..3
    # the difference is positive everywhere: vermillion-ish (red channel above blue), never white
    assert (diff0[..., 0].astype(int) - diff0[..., 2].astype(int) > 20).all()
    assert "all 2 cases (2 public, 0 hidden): <span class='v passed'>passed" in page


def test_notebook_that_cannot_load_gets_one_message(tmp_path):
    msg = ("the notebook's code could not be loaded: the process exited with code 1 (os._exit, sys.exit or exit() "
           "in C code)")
    results = [V.summarize(q, [_case(q, c, V.CRASHED, 0.0, 0.5, message=msg) for c in ("a", "b")], 0.0, 1.0)
               for q in ("f", "g", "h")]
    page = feedback.write(tmp_path, "s", "A", results).read_text()
    assert page.count("exited with code 1") == 1
    assert "No question could be graded" in page and "0 / 3" in page


def _rows():
    rows, cases = [], []
    spec = {"A": [("f", 1.0), ("g", 2.0)], "B": [("h", 1.0)]}
    verdicts = {("ann", "A", "g"): (V.WRONG_VALUES, "max abs error 0.5 at index (1, 2)"),
                ("bob", "A", "g"): (V.WRONG_VALUES, "max abs error 0.25 at index (0, 0)"),
                ("cid", "A", "g"): (V.ERROR, "IndexError: boom"),
                ("bob", "B", "h"): (V.NOT_ATTEMPTED, "the function still raises NotImplementedError")}
    for student in ("ann", "bob", "cid"):
        for a, qs in spec.items():
            for q, mx in qs:
                verdict, message = verdicts.get((student, a, q), (V.PASSED, "all 2 cases passed"))
                pts = mx if verdict == V.PASSED else 0.0
                rows.append(dict(student=student, assignment=a, question=q, points=pts, max_points=mx,
                                 verdict=verdict, message=message))
                for c in ("c1", "c2"):
                    cases.append(dict(student=student, assignment=a, question=q, name=c, public=1,
                                      points=pts / 2, max_points=mx / 2, verdict=verdict, message=message))
    return rows, cases


def test_class_report_grouped_by_assignment_counting_students_with_links(tmp_path):
    rows, cases = _rows()
    path = report.write(tmp_path, rows, cases)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    page = path.read_text()
    assert page.index("<h2 id='A'>") < page.index("<h2 id='B'>")
    assert "counts <b>students</b>" in page
    for student in ("ann", "bob", "cid"):
        assert f"href='feedback/{student}/A.html'" in page and f"href='feedback/{student}/B.html'" in page
    # most common message: the two wrong-values messages differ only in numbers, so they count as one kind
    assert ("<li><b>2 of 3</b> students: max abs error 0.5 at index (1, 2) <span class='who'>(<a href='feedback/"
            "ann/A.html'>ann</a>, <a href='feedback/bob/A.html'>bob</a>)</span></li><li><b>1 of 3</b> students: "
            "IndexError: boom <span class='who'>(<a href='feedback/cid/A.html'>cid</a>)</span></li>") in page
    assert report.common_messages(rows)[("A", "g")] == ("max abs error 0.5 at index (1, 2)", 2, 3)
    assert "wrong values: <b>2</b>" in page and "error: <b>1</b>" in page and "passed: <b>2</b>" in page
    # a histogram and a verdict chart per assignment, inline SVG
    assert page.count("<svg ") == 4 and len(_pngs(page)) == 0
    assert "aria-label='A: histogram of total points; bars count students'" in page
    assert "aria-label='B: verdict per question; bars count students'" in page
    assert "<title>Q2 g: wrong values, 2 students</title>" in page  # the bars say what they count
    assert ">totals of 3 students (out of " in page
    assert ">totals of 1 student (out of 2 points)<" in report._histogram("C", {"ann": 2.0}, 2.0)
    colours = {c.upper() for c in re.findall(r"#[0-9A-Fa-f]{6}", " ".join(c for c, _ in report.STYLES.values()))}
    okabe_ito = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"}
    assert colours - okabe_ito <= {"#777777", "#CCCCCC"}  # plus two greys for "nothing to grade"
    assert len(set(report.STYLES.values())) == len(report.STYLES)  # every verdict looks different


def test_student_names_are_escaped_and_linked_safely(tmp_path):
    rows, cases = _rows()
    for r in rows + cases:
        if r["student"] == "ann":
            r["student"] = "a'nn <x>#1"
    page = report.write(tmp_path, rows, cases).read_text()
    assert "href='feedback/a%27nn%20%3Cx%3E%231/A.html'" in page and "a&#x27;nn &lt;x&gt;#1" in page


def test_notebook_dying_at_load_gets_one_message_naming_the_cell(tmp_path):
    """Graded for real (the fixture assignment): a notebook whose last cell calls os._exit while loading."""
    from autograder.core import registry
    from autograder.grade.batch import grade_folder
    from tests.fixtures.fixture_assignment import students

    registry.register(students.QUESTIONS)
    variant = students.HOSTILE["exit_at_import"]
    students.write_class(tmp_path / "submitted", {"dies": variant})
    cell = len(students.notebook(variant).cells)  # the appended cell is the last one (cells count from 1)
    out = tmp_path / "out"
    grade_folder(tmp_path / "submitted", out, workers=1, timeout=10, progress=False, log=lambda s: None)
    page = (out / "feedback" / "dies" / f"{students.ASSIGNMENT}.html").read_text()
    assert page.count("could not be loaded") == 1 and page.count("exited with code 3") == 1
    assert f"while loading cell {cell}, the cell that defines `Boom`" in page
    assert "No question could be graded" in page and "<figure>" not in page


def test_a_flat_looking_panel_is_explained():
    ref = torch.rand(1, 8, 8) * 1e-3
    panels = feedback.comparison(ref + 1, ref)
    assert panels["flat"] == ["reference", "your output"]
    html = feedback._figure_html("c", "out", V.WRONG_VALUES, panels)
    assert "The reference and your output look uniform" in html
    assert feedback.comparison(2 * ref + 1e-3, ref)["flat"] == []
