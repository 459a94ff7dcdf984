"""The assignment-06 reference (utils/reference/metric_learning.py) against independent formulations.

Every loss is compared with a float64 loop over all pairs / triplets written from the papers' formulas in plain
Python (``math``, no torch vectorization), on batches with several classes, one class, singleton classes and
duplicated embeddings; gradients are checked to be finite everywhere and against finite differences.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from utils.reference import metric_learning as ml

RTOL = 1e-6


# ----------------------------------------------------------------------------------------------- batches
def _batch(kind: str, seed: int = 0, dim: int = 5, dtype=torch.float64):
    """(embeddings, labels) of a given kind; embeddings scaled so that margins of ~1 leave active and inactive terms."""
    g = torch.Generator().manual_seed(seed)
    if kind == "several":
        labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4])
    elif kind == "single":
        labels = torch.full((6,), 7)
    elif kind == "singletons":
        labels = torch.arange(7) * 3
    elif kind == "mixed":                       # classes of size 1, 2 and 4, non-contiguous label values
        labels = torch.tensor([5, 9, 9, 2, 5, 5, 11, 5, 2])
    elif kind == "duplicates":                  # equal rows inside a class and across classes
        labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3])
    else:
        raise ValueError(kind)
    labels = labels[torch.randperm(len(labels), generator=g)]
    E = 0.6 * torch.randn(len(labels), dim, generator=g, dtype=dtype)
    if kind == "duplicates":
        same = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i] == labels[j]]
        diff = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels)) if labels[i] != labels[j]]
        i, j = same[0]
        E[j] = E[i]
        i, j = diff[len(diff) // 2]
        E[j] = E[i]
    return E, labels


KINDS = ["several", "single", "singletons", "mixed", "duplicates"]


# -------------------------------------------------------------------------------------- loop formulations
def _d(E, i, j) -> float:
    return math.sqrt(sum((float(E[i, c]) - float(E[j, c])) ** 2 for c in range(E.shape[1])))


def loop_distances(E):
    n = E.shape[0]
    return [[_d(E, i, j) for j in range(n)] for i in range(n)]


def loop_contrastive(x1, x2, y, m):
    total = 0.0
    for i in range(x1.shape[0]):
        d = math.sqrt(sum((float(x1[i, c]) - float(x2[i, c])) ** 2 for c in range(x1.shape[1])))
        total += (1 - int(y[i])) * 0.5 * d * d + int(y[i]) * 0.5 * max(0.0, m - d) ** 2
    return total / max(x1.shape[0], 1)


def _triplets(labels):
    lab = [int(v) for v in labels]
    n = len(lab)
    return [(a, p, q) for a in range(n) for p in range(n) for q in range(n)
            if p != a and lab[p] == lab[a] and lab[q] != lab[a]]


def loop_batch_all(E, labels, m):
    D = loop_distances(E)
    ts = _triplets(labels)
    return sum(max(0.0, D[a][p] - D[a][n] + m) for a, p, n in ts) / len(ts) if ts else 0.0


def _pos_pairs(labels):
    lab = [int(v) for v in labels]
    return [(i, j) for i, j in itertools.combinations(range(len(lab)), 2) if lab[i] == lab[j]]


def loop_lifted(E, labels, m):
    """Song et al. 2016, eq. (4): smooth J over unordered positive pairs, 1/(2|P|) sum max(0, J)^2."""
    D = loop_distances(E)
    lab = [int(v) for v in labels]
    P = _pos_pairs(labels)
    if not P:
        return 0.0
    total = 0.0
    for i, j in P:
        s = sum(math.exp(m - D[i][k]) for k in range(len(lab)) if lab[k] != lab[i])
        s += sum(math.exp(m - D[j][l]) for l in range(len(lab)) if lab[l] != lab[j])
        if s == 0.0:
            continue                                    # log 0 = -inf, max(0, -inf) = 0
        total += max(0.0, math.log(s) + D[i][j]) ** 2
    return total / (2 * len(P))


def loop_lifted_hard(E, labels, m):
    D = loop_distances(E)
    lab = [int(v) for v in labels]
    P = _pos_pairs(labels)
    if not P:
        return 0.0
    total = 0.0
    for i, j in P:
        negs = [k for k in range(len(lab)) if lab[k] != lab[i]]
        if not negs:
            continue
        k = min(negs, key=lambda k: min(D[i][k], D[j][k]))
        anchor = i if D[i][k] <= D[j][k] else j
        total += max(0.0, D[i][j] - D[anchor][k] + m)
    return total / len(P)


def loop_npair(a, p, lam):
    n = a.shape[0]
    dot = [[sum(float(a[i, c]) * float(p[j, c]) for c in range(a.shape[1])) for j in range(n)] for i in range(n)]
    ce = sum(math.log(1.0 + sum(math.exp(dot[i][j] - dot[i][i]) for j in range(n) if j != i)) for i in range(n)) / n
    sq_a = sum(float(a[i, c]) ** 2 for i in range(n) for c in range(a.shape[1])) / n
    sq_p = sum(float(p[i, c]) ** 2 for i in range(n) for c in range(a.shape[1])) / n
    return ce + 0.25 * lam * (sq_a + sq_p)


def loop_recall(E, labels, k):
    D = loop_distances(E)
    lab = [int(v) for v in labels]
    n = len(lab)
    hits = 0
    for q in range(n):
        others = sorted((D[q][j], j) for j in range(n) if j != q)
        hits += any(lab[j] == lab[q] for _, j in others[:k])
    return hits / n


def _close(got, want, rtol=RTOL, atol=1e-12):
    got = float(got.detach()) if isinstance(got, torch.Tensor) else float(got)
    assert math.isfinite(got)
    assert abs(got - want) <= atol + rtol * abs(want), (got, want)


def _finite_grad(loss, E):
    (g,) = torch.autograd.grad(loss, E, allow_unused=False)
    assert g is not None and torch.isfinite(g).all(), g
    return g


# ------------------------------------------------------------------------------------------------- distances
@pytest.mark.parametrize("kind", KINDS)
def test_pairwise_distances_match_loop(kind):
    E, _ = _batch(kind)
    got = ml.pairwise_distances(E)
    want = torch.tensor(loop_distances(E), dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=1e-7)
    torch.testing.assert_close(ml.pairwise_distances(E, squared=True), want ** 2, rtol=RTOL, atol=1e-7)
    assert torch.equal(got.diagonal(), torch.zeros(len(E), dtype=E.dtype))
    assert torch.equal(got, got.T) and (got >= 0).all()


def test_pairwise_distances_float32_duplicates_and_grad():
    E, _ = _batch("duplicates", dtype=torch.float32)
    E.requires_grad_(True)
    D = ml.pairwise_distances(E)
    assert D.dtype == torch.float32 and D.shape == (len(E), len(E))
    assert torch.equal(D.diagonal(), torch.zeros(len(E)))
    want = torch.tensor(loop_distances(E.detach()), dtype=torch.float32)
    torch.testing.assert_close(D, want, rtol=1e-4, atol=2e-3)
    _finite_grad(D.sum(), E)
    E2 = E.detach().clone().requires_grad_(True)
    _finite_grad(ml.pairwise_distances(E2, squared=True).sum(), E2)
    # all rows equal: every distance is 0 and so is the gradient
    Z = torch.ones(4, 3, requires_grad=True)
    Dz = ml.pairwise_distances(Z)
    assert torch.equal(Dz, torch.zeros(4, 4))
    assert torch.equal(_finite_grad(Dz.sum(), Z), torch.zeros(4, 3))


def test_pairwise_distances_gradcheck():
    E, _ = _batch("several")
    E.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: ml.pairwise_distances(e), (E,))


# ------------------------------------------------------------------------------------------- contrastive
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrastive_matches_loop(seed):
    g = torch.Generator().manual_seed(seed)
    n, d = 11, 4
    x1 = 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    x2 = 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    x2[3] = x1[3]                                 # a dissimilar pair at distance 0
    x2[4] = x1[4]                                 # a similar pair at distance 0
    y = torch.randint(0, 2, (n,), generator=g)
    y[3], y[4] = 1, 0
    for margin in (1.0, 0.3, 2.5):
        x1r = x1.clone().requires_grad_(True)
        for yy in (y, y.bool(), y.float()):
            loss = ml.contrastive_loss(x1r, x2, yy, margin)
            _close(loss, loop_contrastive(x1, x2, y, margin))
        _finite_grad(ml.contrastive_loss(x1r, x2, y, margin), x1r)
    x1r = x1.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: ml.contrastive_loss(a, x2[:, :] + 0.01, y, 1.0), (x1r,))


def test_contrastive_conventions():
    x1 = torch.zeros(1, 2)
    x2 = torch.tensor([[0.3, 0.4]])               # distance 0.5
    assert ml.contrastive_loss(x1, x2, torch.tensor([0]), 1.0).item() == pytest.approx(0.5 * 0.25)
    assert ml.contrastive_loss(x1, x2, torch.tensor([1]), 1.0).item() == pytest.approx(0.5 * 0.25)
    assert ml.contrastive_loss(x1, x2, torch.tensor([1]), 2.0).item() == pytest.approx(0.5 * 1.5 ** 2)
    assert ml.contrastive_loss(x1, x2, torch.tensor([1]), 0.4).item() == 0.0


# ---------------------------------------------------------------------------------------------- triplet
def test_triplet_loss_matches_loop_and_miner_composition():
    E, labels = _batch("several")
    ts = ml.batch_all_triplets(labels)
    a, p, n = ts.unbind(1)
    for margin in (0.2, 1.0):
        want = loop_batch_all(E, labels, margin)
        _close(ml.triplet_loss(E[a], E[p], E[n], margin), want)
        _close(ml.triplet_loss_from_indices(E, ts, margin), want)
    # plain (not squared) distances, hinge per triplet
    A = torch.zeros(1, 2)
    P = torch.tensor([[3.0, 4.0]])
    N = torch.tensor([[0.0, 6.0]])
    assert ml.triplet_loss(A, P, N, 2.0).item() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_all_triplet_loss_matches_loop(kind):
    E, labels = _batch(kind, seed=3)
    for margin in (0.1, 1.0, 3.0):
        E = E.detach().clone().requires_grad_(True)
        loss = ml.batch_all_triplet_loss(E, labels, margin)
        _close(loss, loop_batch_all(E.detach(), labels, margin))
        _finite_grad(loss, E)
        _close(ml.triplet_loss_from_indices(E, ml.batch_all_triplets(labels), margin),
               loop_batch_all(E.detach(), labels, margin))


def test_batch_all_triplet_loss_gradcheck():
    E, labels = _batch("mixed", seed=4)
    E.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: ml.batch_all_triplet_loss(e, labels, 1.0), (E,))


def _dense(E, labels, margin):
    """The accelerator path of batch_all_triplet_loss (dense hinge, hand-written backward), run on the CPU."""
    return ml._BatchAllDense.apply(E, labels, margin)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_all_triplet_loss_dense_path_matches_loop_and_sorted_gradients(kind):
    """The dense path (used on GPUs) against the loop formulation, and its hand-written gradient against autograd
    through the sorted path (used on CPUs)."""
    E, labels = _batch(kind, seed=3)
    for margin in (0.1, 1.0, 3.0):
        e_dense = E.detach().clone().requires_grad_(True)
        e_sorted = E.detach().clone().requires_grad_(True)
        loss = _dense(e_dense, labels, margin)
        _close(loss, loop_batch_all(E, labels, margin))
        loss.backward()
        ml.batch_all_triplet_loss(e_sorted, labels, margin).backward()
        assert torch.isfinite(e_dense.grad).all()
        torch.testing.assert_close(e_dense.grad, e_sorted.grad, rtol=1e-9, atol=1e-12)


def test_batch_all_triplet_loss_dense_path_gradcheck_and_float32():
    E, labels = _batch("mixed", seed=4)
    E.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: _dense(e, labels, 1.0), (E,))
    E32, labels = _batch("several", seed=5, dtype=torch.float32)
    _close(_dense(E32, labels, 1.0), loop_batch_all(E32.double(), labels, 1.0), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_all_triplet_loss_on_cuda_syncs_nothing():
    """On CUDA the loss takes the dense path, gives the CPU's value, and neither its forward nor its backward pass
    waits for the device (a host sync raises under sync_debug_mode "error")."""
    E, labels = _batch("several", seed=6, dtype=torch.float32)
    Ec, lc = E.cuda().requires_grad_(True), labels.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = ml.batch_all_triplet_loss(Ec, lc, 1.0)
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    _close(loss.detach().cpu(), loop_batch_all(E.double(), labels, 1.0), rtol=1e-5, atol=1e-6)
    e = E.clone().requires_grad_(True)
    ml.batch_all_triplet_loss(e, labels, 1.0).backward()
    torch.testing.assert_close(Ec.grad.cpu(), e.grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------ miners
@pytest.mark.parametrize("kind", KINDS)
def test_batch_all_triplets(kind):
    _, labels = _batch(kind)
    got = ml.batch_all_triplets(labels)
    want = _triplets(labels)
    assert got.dtype == torch.int64 and got.shape == (len(want), 3)
    assert [tuple(r) for r in got.tolist()] == want          # lexicographic order


@pytest.mark.parametrize("kind", KINDS)
def test_batch_hard_triplets(kind):
    E, labels = _batch(kind, seed=5)
    D = torch.tensor(loop_distances(E))
    got = ml.batch_hard_triplets(D, labels)
    lab = labels.tolist()
    n = len(lab)
    want = []
    for a in range(n):
        pos = [p for p in range(n) if p != a and lab[p] == lab[a]]
        neg = [q for q in range(n) if lab[q] != lab[a]]
        if pos and neg:
            hp = max(pos, key=lambda p: (D[a, p].item(), -p))   # ties: smallest index
            hn = min(neg, key=lambda q: (D[a, q].item(), q))
            want.append((a, hp, hn))
    assert got.dtype == torch.int64
    assert [tuple(r) for r in got.tolist()] == want


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_semi_hard_triplets(kind, margin):
    E, labels = _batch(kind, seed=6)
    D = torch.tensor(loop_distances(E))
    got = ml.semi_hard_triplets(D, labels, margin)
    want = [(a, p, n) for a, p, n in _triplets(labels) if D[a, p] < D[a, n] < D[a, p] + margin]
    assert got.dtype == torch.int64 and got.shape == (len(want), 3)
    assert [tuple(r) for r in got.tolist()] == want


# -------------------------------------------------------------------------------------------------- lifted
@pytest.mark.parametrize("kind", KINDS)
def test_lifted_structured_loss_matches_loop(kind):
    E, labels = _batch(kind, seed=7)
    for margin in (0.5, 1.0, 4.0):
        E = E.detach().clone().requires_grad_(True)
        loss = ml.lifted_structured_loss(E, labels, margin)
        _close(loss, loop_lifted(E.detach(), labels, margin))
        _finite_grad(loss, E)


def test_lifted_structured_loss_degenerate_cases():
    # no positive pair: 0 with a (zero) gradient
    E = torch.randn(5, 3, requires_grad=True)
    loss = ml.lifted_structured_loss(E, torch.arange(5))
    assert loss.item() == 0.0 and loss.requires_grad
    assert torch.equal(_finite_grad(loss, E), torch.zeros(5, 3))
    # one class: every positive pair has no negative -> 0, finite gradient
    loss = ml.lifted_structured_loss(E, torch.zeros(5, dtype=torch.long))
    assert loss.item() == 0.0
    _finite_grad(loss, E)
    # large distances: the stable log-sum-exp stays finite where a naive one overflows
    big = (200.0 * torch.randn(8, 3)).requires_grad_(True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = ml.lifted_structured_loss(big, labels, 1.0)
    assert torch.isfinite(loss)
    _finite_grad(loss, big)
    small = (1e-3 * torch.randn(8, 3, dtype=torch.float64))
    _close(ml.lifted_structured_loss(small, labels, 100.0), loop_lifted(small, labels, 100.0))


def test_lifted_structured_loss_gradcheck():
    E, labels = _batch("mixed", seed=8)
    E.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: ml.lifted_structured_loss(e, labels, 1.0), (E,))


@pytest.mark.parametrize("kind", KINDS)
def test_lifted_hard_triplet_loss_matches_loop(kind):
    E, labels = _batch(kind, seed=9)
    for margin in (0.2, 1.0, 3.0):
        E = E.detach().clone().requires_grad_(True)
        loss = ml.lifted_hard_triplet_loss(E, labels, margin)
        _close(loss, loop_lifted_hard(E.detach(), labels, margin))
        _finite_grad(loss, E)


def test_lifted_hard_triplet_loss_no_pairs():
    E = torch.randn(4, 2, requires_grad=True)
    loss = ml.lifted_hard_triplet_loss(E, torch.arange(4))
    assert loss.item() == 0.0
    assert torch.equal(_finite_grad(loss, E), torch.zeros(4, 2))


# -------------------------------------------------------------------------------------------------- N-pair
@pytest.mark.parametrize("n,dim,lam", [(6, 4, 0.002), (1, 3, 0.1), (9, 2, 0.0), (5, 7, 1.0)])
def test_npair_loss_matches_loop(n, dim, lam):
    g = torch.Generator().manual_seed(n)
    a = torch.randn(n, dim, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(n, dim, generator=g, dtype=torch.float64)
    p[0] = a.detach()[0]
    loss = ml.npair_loss(a, p, lam)
    _close(loss, loop_npair(a.detach(), p, lam))
    _finite_grad(loss, a)
    assert torch.autograd.gradcheck(lambda x: ml.npair_loss(x, p, lam), (a,))


# -------------------------------------------------------------------------------------------------- recall
@pytest.mark.parametrize("kind", ["several", "singletons", "mixed", "single"])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_recall_at_k_matches_loop(kind, k):
    E, labels = _batch(kind, seed=10)
    got = ml.recall_at_k(E, labels, k)
    assert isinstance(got, float)
    assert got == pytest.approx(loop_recall(E, labels, k), abs=1e-12)


def test_recall_at_k_excludes_self_and_clips_k():
    E = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    assert ml.recall_at_k(E, torch.tensor([0, 0, 1, 1]), 1) == 1.0
    assert ml.recall_at_k(E, torch.tensor([0, 1, 0, 1]), 1) == 0.0
    assert ml.recall_at_k(E, torch.tensor([0, 1, 0, 1]), 2) == 0.5      # only query 0 finds 2 among its 2 nearest
    assert ml.recall_at_k(E, torch.tensor([0, 1, 0, 1]), 3) == 1.0
    assert ml.recall_at_k(E, torch.tensor([0, 1, 0, 1]), 99) == 1.0
    assert ml.recall_at_k(E, torch.tensor([0, 1, 2, 3]), 3) == 0.0


# -------------------------------------------------------------------------------------------------- general
LOSSES = {
    "batch_all_triplet_loss": ml.batch_all_triplet_loss,
    "lifted_structured_loss": ml.lifted_structured_loss,
    "lifted_hard_triplet_loss": ml.lifted_hard_triplet_loss,
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_float32_and_permutation_invariance(name):
    fn = LOSSES[name]
    E, labels = _batch("several", seed=11)
    ref = float(fn(E, labels, 1.0))
    got32 = fn(E.float(), labels, 1.0)
    assert got32.dtype == torch.float32 and got32.shape == ()
    _close(got32, ref, rtol=1e-5, atol=1e-6)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    _close(fn(E[perm], labels[perm], 1.0), ref, rtol=1e-9)
    _close(fn(E, labels + 100, 1.0), ref, rtol=1e-12)          # label values are only compared


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_agnostic_cuda():
    E, labels = _batch("several", seed=12, dtype=torch.float32)
    Ec, lc = E.cuda().requires_grad_(True), labels.cuda()
    for name, fn in LOSSES.items():
        out = fn(Ec, lc, 1.0)
        assert out.device.type == "cuda"
        _close(out.cpu(), float(fn(E, labels, 1.0)), rtol=1e-4, atol=1e-6)
        _finite_grad(out, Ec)
    assert ml.batch_all_triplets(lc).device.type == "cuda"
    D = ml.pairwise_distances(Ec.detach())
    assert ml.batch_hard_triplets(D, lc).device.type == "cuda"
    assert ml.semi_hard_triplets(D, lc, 0.5).device.type == "cuda"
    assert ml.recall_at_k(Ec.detach(), lc, 1) == ml.recall_at_k(E, labels, 1)


def test_triplet_loss_zero_distances_have_finite_gradients():
    a = torch.randn(4, 3, requires_grad=True)
    p = torch.cat([a[:2].detach(), torch.randn(2, 3)])            # D_ap = 0 for two triplets
    n = torch.cat([torch.randn(2, 3), a[2:].detach()])            # D_an = 0 for the other two
    p.requires_grad_(True)
    n.requires_grad_(True)
    loss = ml.triplet_loss(a, p, n, 1.0)
    grads = torch.autograd.grad(loss, (a, p, n))
    assert all(torch.isfinite(g).all() for g in grads)
    _close(loss, loop_triplet(a.detach(), p.detach(), n.detach(), 1.0))


def loop_triplet(a, p, n, m):
    total = 0.0
    for i in range(a.shape[0]):
        dap = math.sqrt(sum((float(a[i, c]) - float(p[i, c])) ** 2 for c in range(a.shape[1])))
        dan = math.sqrt(sum((float(a[i, c]) - float(n[i, c])) ** 2 for c in range(a.shape[1])))
        total += max(0.0, dap - dan + m)
    return total / a.shape[0]


# ------------------------------------------------------------------------------- pytorch-metric-learning
def _pml_distance():
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import distances
    return pml, distances.LpDistance(normalize_embeddings=False, p=2, power=1)


@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_lifted_equals_pytorch_metric_learning(margin):
    """PML averages 1/2 max(0, J)^2 over ORDERED positive pairs: each unordered pair twice with the same J, so
    the value is Song et al.'s 1/(2|P|) sum over unordered pairs -- the same number, no conversion."""
    _, lp = _pml_distance()
    from pytorch_metric_learning import losses
    E, labels = _batch("mixed", seed=13, dim=8)
    pml = losses.LiftedStructureLoss(neg_margin=margin, pos_margin=0.0, distance=lp)
    _close(ml.lifted_structured_loss(E, labels, margin), float(pml(E, labels)), rtol=1e-9)
    E, labels = _batch("several", seed=14, dim=8)
    _close(ml.lifted_structured_loss(E, labels, margin), float(pml(E, labels)), rtol=1e-9)


def test_batch_all_triplet_equals_pytorch_metric_learning():
    """PML's miner("all") + TripletMarginLoss with a SumReducer = the sum of the hinge over all triplets."""
    _, lp = _pml_distance()
    from pytorch_metric_learning import losses, miners, reducers
    E, labels = _batch("several", seed=15, dim=8)
    for margin in (0.2, 1.0):
        miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="all", distance=lp)
        pml = losses.TripletMarginLoss(margin=margin, distance=lp, reducer=reducers.SumReducer())
        n_triplets = len(ml.batch_all_triplets(labels))
        _close(ml.batch_all_triplet_loss(E, labels, margin) * n_triplets, float(pml(E, labels, miner(E, labels))),
               rtol=1e-9)
