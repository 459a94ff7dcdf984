"""Wrong and correct variants of the 01_saliency_class_visualization functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference); every question is graded
with the engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``),
the path the sandboxed worker's results go through too. A wrong variant must lose points on its own question and on
no other; a correct variant (per-image loop, float64 inside, another norm call, zeroing the gradient before or
after, ...) must get full marks. The harness is tests/mutant_harness.py.
"""
from __future__ import annotations

import pytest

from autograder.core import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "01_saliency_class_visualization"
H = Harness(ASSIGNMENT_ID, "mutants_01")
M = H.mutants
globals().update(H.standard_tests(max_points=12))
grade_question = H.grade_question


#: Mutants that only show up because the engine calls an in-place step several times on the same ``img``
#: (``Question.repeat``): gradients accumulating in ``img.grad``.
NEEDS_REPEATED_CALLS = {("class_visualization_update_step", "no_grad_reset"),
                        ("neuron_visualization_update_step", "no_grad_reset")}


def test_conceptual_mutants_already_fail_a_public_case():
    """What a student can get wrong conceptually shows in the self-check; only the per-image percentile,
    N-dependent scaling and accumulated gradients need the hidden cases."""
    H.check_public_cases_catch_wrong_variants({("compute_saliency_maps", "mean_of_scores"), *NEEDS_REPEATED_CALLS})


def test_hardcoded_batch_mutant_fails_the_public_n1_case():
    """A batch size hard-coded from the N = 2 example already fails the self-check's N = 1 case."""
    res = grade_question("compute_saliency_maps", M.WRONG["compute_saliency_maps"]["hardcoded_batch"])
    verdicts = {c.case: c.verdict for c in res.cases}
    assert verdicts["public_n2_16px"] == V.PASSED
    assert verdicts["public_n1_20px"] == V.ERROR                       # index 1 is out of bounds for N = 1
    assert verdicts["hidden_n5_20px"] == V.WRONG_VALUES                # images 3.. get an all-zero map
