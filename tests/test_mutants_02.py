"""Wrong and correct variants of the 02_feature_inversion functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference) and is graded with the
engine's in-process path (case files -> ``calls.run`` -> ``judge.judge_case`` -> ``judge.question_result``), the
path the sandboxed worker's results go through too; the property checks of ``invert_features`` run exactly as in
grading (the tiny CNN is rebuilt from the case file and re-run on the variant's output). A wrong variant (loss not
normalized, MSE, norm not squared, |.| missing, TV cropped wrongly, power per direction, beta instead of beta/2, a
loop without clamping / without TV / climbing instead of descending / without the guard inside the power, ...)
must lose points on its own question and on no other; a correct variant (float64 loops, other formulations, other
random starts, one image at a time) must get full marks. The harness is tests/mutant_harness.py.

Also checked here (issue 13): the known mistakes declared in the question file name the mutants they describe (and
never a correct variant); the reference and the correct variants leave their inputs untouched (values,
``requires_grad``, ``.grad``) and return tensors; a variant with a side effect on an input loses the case with a
message naming the argument.

Every test here runs torch on one thread (the inversion loops are many tiny operations; on a busy 2-core machine
two threads make them 10-20 times slower).
"""
from __future__ import annotations

import importlib

import pytest
import torch

from autograder.core import calls, casefile
from autograder.core import verdicts as V
from tests.mutant_harness import Harness

ASSIGNMENT_ID = "02_feature_inversion"
H = Harness(ASSIGNMENT_ID, "mutants_02")
M = H.mutants
Q = importlib.import_module("autograder.questions.02_feature_inversion")
_graded = H.graded


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_question_has_wrong_and_correct_variants():
    H.check_corpus(max_points=7)  # + 3 points of written questions in the notebook = 10


def test_the_mutants_the_issue_names_are_in_the_corpus():
    assert {"not_normalized", "mse", "norm_not_squared"} <= set(M.WRONG["feature_reconstruction_loss"])
    assert {"no_abs"} <= set(M.WRONG["alpha_norm"])
    assert {"crop_full_range", "power_per_direction", "beta_not_half"} <= set(M.WRONG["tv_norm"])
    assert {"float64_loop"} <= set(M.CORRECT["feature_reconstruction_loss"]) & set(M.CORRECT["alpha_norm"]) \
        & set(M.CORRECT["tv_norm"])
    assert {"vectorized_diff", "hypot"} <= set(M.CORRECT["tv_norm"])
    assert {"float64", "per_image_loop", "whole_batch_loss"} <= set(M.CORRECT["invert_features"])


def test_reference_gets_full_marks():
    H.check_reference_full_marks()


@pytest.mark.parametrize("qid,name", H.params(M.WRONG))
def test_wrong_variant_loses_points_only_on_its_question(qid, name):
    H.check_wrong_variant(qid, name)


@pytest.mark.parametrize("qid,name", H.params(M.CORRECT))
def test_correct_variant_gets_full_marks(qid, name):
    H.check_correct_variant(qid, name)


def test_every_wrong_variant_already_fails_a_public_case():
    """What a student gets wrong shows in the self-check; the hidden cases then add other sizes and exponents.
    One needs a hidden case by design: a sum over dims (1, 2, 3) only breaks on 2-D class scores."""
    H.check_public_cases_catch_wrong_variants(hidden_only={("feature_reconstruction_loss", "spatial_dims_only")})


# -------------------------------------------------------------------- the properties catch what they promise


def _verdict_mentions(qid: str, name: str, text: str) -> bool:
    res = _graded(qid, "wrong", name)
    return any(text in c.message for c in res.cases if not c.passed)


@pytest.mark.parametrize("name,text", [
    ("no_clamp", "stays in the valid range"),
    ("ascent", "matches the code"),
    ("no_optimization", "did not improve on the random start"),
    ("no_tv", "regularized"),
    ("tv_without_eps", "NaN"),
])
def test_the_named_property_catches_the_inversion_mutant(name, text):
    assert _verdict_mentions("invert_features", name, text), \
        [(c.case, c.message) for c in _graded("invert_features", "wrong", name).cases]


def test_properties_accept_the_reference_and_reject_noise_and_overshoot():
    """Direct checks of the property functions on the public case (no student code involved)."""
    q = H.entry.assignment.question("invert_features")
    cf = H.case_file(q.id, q.cases[0].name)
    inputs = casefile.build_args(cf)
    expected = cf.expected
    for prop in q.compare.properties:
        ok, why = prop.check(inputs, expected, expected)
        assert ok, (prop.name, why)
    props = {p.name: p for p in q.compare.properties}
    lo, hi = inputs["bounds"]
    g = torch.Generator().manual_seed(0)
    noise = {"out": torch.maximum(torch.minimum(torch.randn(expected["out"].shape, generator=g), hi), lo)}
    assert not props["matches the code"].check(inputs, noise, expected)[0]
    assert not props["regularized"].check(inputs, noise, expected)[0]
    edge = {"out": expected["out"].clone()}
    edge["out"][0, 0, 0, 0] = hi[0, 0, 0, 0]
    assert props["stays in the valid range"].check(inputs, edge, expected)[0]
    edge["out"][0, 0, 0, 0] = hi[0, 0, 0, 0] + 1e-3
    assert not props["stays in the valid range"].check(inputs, edge, expected)[0]


def test_the_invert_cases_have_room_between_right_and_wrong():
    """The reference's error is far below what the random start reaches, and its TV far below the unregularized
    loop's, on every case (the thresholds sit in between)."""
    q = H.entry.assignment.question("invert_features")
    for case in q.cases:
        cf = H.case_file(q.id, case.name)
        inputs = casefile.build_args(cf)
        ref = Q._relative_errors(inputs, cf.expected["out"])
        start = Q._relative_errors(inputs, torch.maximum(torch.minimum(
            inputs["init_std"] * torch.randn(cf.expected["out"].shape, generator=torch.Generator().manual_seed(1)),
            inputs["bounds"][1]), inputs["bounds"][0]))
        assert bool((Q.ERROR_FACTOR * ref + Q.ERROR_SLACK < start).all()), (case.name, ref, start)


# --------------------------------------------------------------------------------- known mistakes (issue 13)

#: mutant -> the known mistake (``Question.mistakes``) its wrong values must be named as
DIAGNOSES = {
    ("feature_reconstruction_loss", "not_normalized"): "not normalized",
    ("feature_reconstruction_loss", "mse"): "mean squared error",
    ("feature_reconstruction_loss", "norm_not_squared"): "norm not squared",
    ("feature_reconstruction_loss", "per_image_mean"): "per-image average",
    ("alpha_norm", "no_abs"): "absolute value missing",
    ("alpha_norm", "root"): "root taken",
    ("tv_norm", "beta_not_half"): "beta instead of beta / 2",
    ("tv_norm", "power_per_direction"): "power per direction",
    ("tv_norm", "crop_full_range"): "wrong crop",
    ("tv_norm", "squared_of_04"): "squared TV of assignment 04",
}
#: for beta = 2 the full-range crop and assignment 04's squared TV are the same function: either name is right
SAME_AT_BETA_2 = {"wrong crop", "squared TV of assignment 04"}


@pytest.mark.parametrize("qid,name", list(DIAGNOSES), ids=[f"{q}-{n}" for q, n in DIAGNOSES])
def test_known_mistakes_name_the_mutant(qid, name):
    """Every case where the mutant's values are wrong names its own known mistake (never another one)."""
    q = H.entry.assignment.question(qid)
    res = _graded(qid, "wrong", name)
    wrong = [c for c in res.cases if c.verdict == V.WRONG_VALUES]
    assert wrong
    for c in wrong:
        beta = next(case for case in q.cases if case.name == c.case).params.get("beta")
        names = SAME_AT_BETA_2 if DIAGNOSES[(qid, name)] in SAME_AT_BETA_2 and beta == 2.0 \
            else {DIAGNOSES[(qid, name)]}
        found = [n for n in {m.name for m in q.mistakes} if f'known mistake "{n}"' in c.message]
        assert len(found) == 1 and found[0] in names, (c.case, c.message)


def test_every_known_mistake_is_a_graded_mutant():
    for q in H.entry.assignment.questions:
        assert {m.name for m in q.mistakes} <= {v for (qid, _), v in DIAGNOSES.items() if qid == q.id}, q.id


def test_correct_variants_are_never_called_a_mistake():
    for qid, fns in M.CORRECT.items():
        for name in fns:
            assert not any("known mistake" in c.message for c in _graded(qid, "correct", name).cases), (qid, name)


# ------------------------------------------------------------------------------ side effects (issue 13)


def _snapshot(args):
    return {k: (v.detach().clone(), v.requires_grad, None if v.grad is None else v.grad.clone())
            for k, v in args.items() if isinstance(v, torch.Tensor)}


def _side_effects(fn, qid: str, case_name: str) -> list[str]:
    """An independent check (not the engine's): what the call changed in its tensor arguments."""
    args = casefile.build_args(H.case_file(qid, case_name))
    before = _snapshot(args)
    calls.seed_everything(0)
    out = fn(**args)
    problems = [] if isinstance(out, torch.Tensor) else [f"returned {type(out).__name__}"]
    for k, (value, rg, grad) in before.items():
        t = args[k]
        if not torch.equal(t.detach(), value):
            problems.append(f"{k} changed")
        if t.requires_grad != rg:
            problems.append(f"{k}.requires_grad changed")
        if (t.grad is None) != (grad is None):
            problems.append(f"{k}.grad set")
    return problems


@pytest.mark.parametrize("qid,name", [(q.id, "reference") for q in H.entry.assignment.questions]
                         + [(qid, name) for qid, fns in M.CORRECT.items() for name in fns])
def test_reference_and_correct_variants_leave_their_inputs_alone(qid, name):
    fn = H.reference(qid) if name == "reference" else M.CORRECT[qid][name]
    q = H.entry.assignment.question(qid)
    assert _side_effects(fn, qid, q.cases[0].name) == []


def alpha_norm_abs_in_place(x, alpha):
    """Right value, but x.abs_() overwrites the caller's tensor."""
    return x.abs_().pow(alpha).sum()


def loss_requires_grad_on_input(features, target):
    """Right value, but leaves requires_grad (and a .grad) on the caller's features."""
    features.requires_grad_(True)
    loss = (features - target).pow(2).sum() / target.pow(2).sum()
    loss.backward()
    return loss.detach()


def test_side_effects_are_seen_by_the_independent_check():
    assert _side_effects(alpha_norm_abs_in_place, "alpha_norm", "public_n1_alpha3") == ["x changed"]
    assert _side_effects(loss_requires_grad_on_input, "feature_reconstruction_loss", "public_n2") == [
        "features.requires_grad changed", "features.grad set"]


@pytest.mark.parametrize("qid,fn,arg", [("alpha_norm", alpha_norm_abs_in_place, "x"),
                                        ("feature_reconstruction_loss", loss_requires_grad_on_input, "features")])
def test_a_side_effect_loses_the_case_and_names_the_argument(qid, fn, arg):
    res = H.grade_question(qid, fn)
    assert res.points < H.entry.assignment.question(qid).points
    failed = [c for c in res.cases if not c.passed]
    assert failed and all(c.verdict == V.MODIFIED_INPUT and arg in c.message for c in failed), \
        [(c.case, c.verdict, c.message) for c in failed]
