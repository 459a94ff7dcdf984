"""Style transfer (04) checked against float64 NumPy loops, closed forms, gradcheck and simple facts: the losses,
colour preservation, style blending; the references on CUDA against the committed case files; extract_features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.models import extract_features, load_model
from utils.reference import blend_style_targets, content_loss, gram_matrix, preserve_color, style_loss, tv_loss
from utils.reference.neural_style import RGB_TO_YIQ


def _rand(seed, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _gram_loop(f: np.ndarray, normalize: bool) -> np.ndarray:
    n, c, h, w = f.shape
    out = np.zeros((n, c, c))
    for b in range(n):
        for i in range(c):
            for j in range(c):
                out[b, i, j] = sum(f[b, i, y, x] * f[b, j, y, x] for y in range(h) for x in range(w))
    return out / (c * h * w) if normalize else out


def test_content_loss_is_the_weighted_sum_of_squares():
    cur, orig = _rand(0, 1, 4, 5, 6), _rand(1, 1, 4, 5, 6)
    expected = 0.3 * sum(float(a - b) ** 2 for a, b in zip(cur.double().flatten(), orig.double().flatten()))
    assert content_loss(0.3, cur, orig).item() == pytest.approx(expected, rel=1e-5)
    assert content_loss(2.0, cur, cur).item() == 0.0


def test_content_loss_rejects_mismatched_layers():
    with pytest.raises(ValueError, match="same layer"):
        content_loss(1.0, _rand(0, 1, 4, 5, 6), _rand(1, 1, 8, 5, 6))


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 4, 3, 3), (3, 1, 1, 7)])
def test_gram_matrix_against_loops(shape, normalize):
    f = _rand(2, *shape)
    got = gram_matrix(f, normalize=normalize)
    np.testing.assert_allclose(got.double().numpy(), _gram_loop(f.double().numpy(), normalize), rtol=1e-5,
                               atol=1e-6)
    assert torch.equal(got, got.transpose(1, 2))


def test_gram_matrix_of_each_image_ignores_the_rest_of_the_batch():
    f = _rand(3, 4, 5, 6, 7)
    alone = torch.cat([gram_matrix(f[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(gram_matrix(f), alone)


def test_style_loss_against_loops():
    feats = [_rand(10 + i, 1, c, s, s) for i, (c, s) in enumerate([(3, 6), (4, 5), (5, 3), (6, 2)])]
    layers, weights = [0, 2, 3], [10.0, 0.5, 2.0]
    targets = [gram_matrix(_rand(20 + i, *feats[l].shape)) for i, l in enumerate(layers)]
    expected = 0.0
    for l, t, w in zip(layers, targets, weights):
        diff = _gram_loop(feats[l].double().numpy(), True) - t.double().numpy()
        expected += w * float((diff ** 2).sum())
    assert style_loss(feats, layers, targets, weights).item() == pytest.approx(expected, rel=1e-5)
    matching = [gram_matrix(feats[l]) for l in layers]
    assert style_loss(feats, layers, matching, weights).item() == 0.0


def test_style_loss_needs_one_target_and_weight_per_layer():
    feats = [_rand(0, 1, 3, 4, 4)]
    with pytest.raises(ValueError, match="one target and one weight per layer"):
        style_loss(feats, [0], [gram_matrix(feats[0])], [1.0, 2.0])


def test_tv_loss_against_loops():
    img = _rand(4, 2, 3, 5, 6)
    a = img.double().numpy()
    n, c, h, w = a.shape
    total = 0.0
    for b in range(n):
        for k in range(c):
            for y in range(h):
                for x in range(w):
                    if y + 1 < h:
                        total += (a[b, k, y + 1, x] - a[b, k, y, x]) ** 2
                    if x + 1 < w:
                        total += (a[b, k, y, x + 1] - a[b, k, y, x]) ** 2
    assert tv_loss(img, 0.7).item() == pytest.approx(0.7 * total, rel=1e-5)


def test_tv_loss_facts():
    assert tv_loss(torch.full((1, 3, 8, 8), 2.5), 1.0).item() == 0.0                 # a flat image
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 4, 5)                     # +1 per column
    assert tv_loss(ramp, 1.0).item() == pytest.approx(4 * 4)                          # 4 rows x 4 steps of 1


def test_gradients_match_finite_differences():
    x = _rand(5, 1, 2, 4, 3, dtype=torch.float64).requires_grad_(True)
    y = _rand(6, 1, 2, 4, 3, dtype=torch.float64)
    target = gram_matrix(_rand(7, 1, 2, 4, 3, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: tv_loss(t, 0.3), (x,))
    assert torch.autograd.gradcheck(lambda t: content_loss(0.5, t, y), (x,))
    assert torch.autograd.gradcheck(lambda t: gram_matrix(t), (x,))
    assert torch.autograd.gradcheck(lambda t: style_loss([t], [0], [target], [2.0]), (x,))


def test_extract_features_gives_every_layer_of_features():
    model = load_model("shapes", "cpu")
    x = _rand(8, 2, 3, 32, 32)
    feats = extract_features(x, model)
    assert len(feats) == len(model.features)
    for i, f in enumerate(feats):
        torch.testing.assert_close(f, model.features[:i + 1](x))


def test_extract_features_needs_a_features_sequence():
    with pytest.raises(TypeError, match="features"):
        extract_features(torch.zeros(1, 3, 8, 8), nn.Linear(3, 3))


# ------------------------------------------------------------------------------------------ colour preservation


def _yiq_loop(img: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) RGB -> YIQ, one pixel at a time in float64."""
    m = np.array(RGB_TO_YIQ, dtype=np.float64)
    out = np.zeros_like(img, dtype=np.float64)
    n, _, h, w = img.shape
    for b in range(n):
        for y in range(h):
            for x in range(w):
                out[b, :, y, x] = m @ img[b, :, y, x]
    return out


def _colour_inputs(seed, n=2, h=5, w=7):
    g = torch.Generator().manual_seed(seed)
    stylized = torch.rand(n, 3, h, w, generator=g)
    content = torch.rand(n, 3, h, w, generator=g)
    content[:, :, 0, :] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1)   # a saturated red row
    return stylized, content


def test_yiq_chrominance_rows_sum_to_zero_so_luminance_adds_to_every_channel():
    m = torch.tensor(RGB_TO_YIQ, dtype=torch.float64)
    assert m[0].sum().item() == pytest.approx(1.0, abs=1e-12)
    assert m[1].sum().item() == pytest.approx(0.0, abs=1e-12) and m[2].sum().item() == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(torch.linalg.inv(m)[:, 0], torch.ones(3, dtype=torch.float64))


def test_preserve_color_keeps_stylized_luminance_and_content_chrominance():
    """Where nothing is clamped, the result's Y is the stylized image's and its I, Q are the content's (float64
    per-pixel loop); where the result is clamped it is on the edge of [0, 1]."""
    stylized, content = _colour_inputs(0)
    out = preserve_color(stylized, content)
    yiq_out, yiq_s, yiq_c = (_yiq_loop(t.double().numpy()) for t in (out, stylized, content))
    unclamped = ((out > 1e-6) & (out < 1 - 1e-6)).all(dim=1).numpy()                    # (N, H, W)
    assert unclamped.mean() > 0.5
    np.testing.assert_allclose(yiq_out[:, 0][unclamped], yiq_s[:, 0][unclamped], atol=1e-5)
    np.testing.assert_allclose(yiq_out[:, 1:].transpose(0, 2, 3, 1)[unclamped],
                               yiq_c[:, 1:].transpose(0, 2, 3, 1)[unclamped], atol=1e-5)
    assert (~unclamped).any()                                                           # the red row leaves [0, 1]
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0


def test_preserve_color_closed_form_and_facts():
    stylized, content = _colour_inputs(1, n=3, h=6, w=4)
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    dy = ((stylized.double() - content.double()) * luma).sum(1, keepdim=True)
    torch.testing.assert_close(preserve_color(stylized, content).double(), (content.double() + dy).clamp(0, 1),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(preserve_color(content, content), content, atol=1e-6, rtol=0)   # nothing to change
    grey = content.mean(1, keepdim=True).expand(-1, 3, -1, -1)          # a grey content has no chrominance:
    luminance = (stylized * luma.float()).sum(1, keepdim=True).expand(-1, 3, -1, -1)   # the result is grey too
    torch.testing.assert_close(preserve_color(stylized, grey), luminance, atol=1e-6, rtol=0)


def test_preserve_color_leaves_its_inputs_alone_and_checks_shapes():
    stylized, content = _colour_inputs(2)
    s0, c0 = stylized.clone(), content.clone()
    preserve_color(stylized, content)
    assert torch.equal(stylized, s0) and torch.equal(content, c0)
    with pytest.raises(ValueError, match="same shape"):
        preserve_color(stylized, content[:1])


# ---------------------------------------------------------------------------------------------- style blending


def test_blend_against_a_float64_loop():
    g = torch.Generator().manual_seed(3)
    targets = [gram_matrix(torch.rand(3, c, 4, 5, generator=g)) for c in (2, 5)]
    weights = [0.5, 0.0, 2.0]
    got = blend_style_targets(targets, weights)
    for t, b in zip(targets, got):
        expected = np.zeros((1,) + tuple(t.shape[1:]))
        for s, w in enumerate(weights):
            expected[0] += w / sum(weights) * t[s].double().numpy()
        np.testing.assert_allclose(b.double().numpy(), expected, rtol=1e-6, atol=1e-8)


def test_blend_facts():
    g = torch.Generator().manual_seed(4)
    targets = [gram_matrix(torch.rand(2, c, 3, 3, generator=g)) for c in (3, 4)]
    for a, b in zip(blend_style_targets(targets, [1.0, 3.0]), blend_style_targets(targets, torch.tensor([5., 15.]))):
        torch.testing.assert_close(a, b)                                 # only the ratios matter
    for t, b in zip(targets, blend_style_targets(targets, [0.0, 2.0])):
        torch.testing.assert_close(b, t[1:2])                            # a one-hot blend is that style
    one = blend_style_targets([t[:1] for t in targets], [7.0])
    assert [b.shape for b in one] == [(1, 3, 3), (1, 4, 4)]
    for t, b in zip(targets, one):
        torch.testing.assert_close(b, t[:1])
    with pytest.raises(ValueError, match="non-negative"):
        blend_style_targets(targets, [1.0, -1.0])
    with pytest.raises(ValueError, match="one Gram matrix per weight"):
        blend_style_targets(targets, [1.0, 1.0, 1.0])


def test_a_blend_of_one_style_leaves_the_style_loss_unchanged():
    feats = [_rand(30, 1, 4, 5, 5).relu()]
    style = [gram_matrix(_rand(31, 1, 4, 5, 5).relu())]
    assert style_loss(feats, [0], blend_style_targets(style, [0.3]), [10.0]).item() == pytest.approx(
        style_loss(feats, [0], style, [10.0]).item(), rel=1e-6)


# ------------------------------------------------------------------------------ the references on the case files


def _cases():
    from autograder.core import registry

    entry = registry.get("04_neural_style")
    return [(entry, q, c) for q in entry.assignment.questions for c in q.cases]


@pytest.mark.parametrize("entry,question,case", _cases(), ids=lambda v: getattr(v, "name", getattr(v, "id", "")))
def test_references_leave_their_inputs_unchanged(entry, question, case):
    """No graded reference modifies an argument or leaves a gradient on it (the notebook asks the same)."""
    from autograder.core import casefile

    args = casefile.build_args(casefile.read(entry.case_path(question, case)))
    tensors = {f"{k}[{i}]": t for k, v in args.items() for i, t in enumerate(v if isinstance(v, list) else [v])
               if isinstance(t, torch.Tensor)}
    before = {k: (t.clone(), t.requires_grad) for k, t in tensors.items()}
    entry.reference_function(question)(**args)
    for k, t in tensors.items():
        assert torch.equal(t, before[k][0]) and t.requires_grad == before[k][1] and t.grad is None, k


def _references_match_case_files_on(device: str) -> None:
    """Every case's inputs moved to ``device``: the reference runs there (no tensor made on another device inside)
    and its output matches the committed expected output within the question's own tolerances."""
    from autograder.core import casefile

    def move(v):
        if isinstance(v, torch.Tensor):
            return v.detach().to(device).requires_grad_(v.requires_grad)
        if isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
            return [move(t) for t in v]
        return v

    for entry, question, case in _cases():
        cf = casefile.read(entry.case_path(question, case))
        out = entry.reference_function(question)(**{k: move(v) for k, v in casefile.build_args(cf).items()})
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        assert all(o.device.type == device for o in outs), (question.id, case.name)
        got = {f"out{i}": o.cpu() for i, o in enumerate(outs)} if isinstance(out, (list, tuple)) else \
            {"out": out.cpu()}
        verdict, message, _ = question.compare.compare(cf.expected, got)
        assert verdict == "passed", (question.id, case.name, message)


def test_references_on_the_cpu_match_the_committed_case_files():
    _references_match_case_files_on("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_references_on_cuda_match_the_committed_case_files():
    _references_match_case_files_on("cuda")
