"""End to end: 32-D embeddings of held-out digits trained with each reference loss reach Recall@1 >= 0.95.

The same recipe as the assignment's notebook (small ConvNet, class-balanced batches of 8 digits x 10 classes,
Adam, 8 epochs on 1200 digits, Recall@1 on the other 597), with the reference implementation of every loss.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from utils.data import load_digits
from utils.reference import metric_learning as ml

pytestmark = pytest.mark.slow


def _net(out_dim: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, out_dim))


def _batches(labels, per_class, generator):
    pools = [torch.nonzero(labels == c).flatten() for c in labels.unique()]
    pools = [p[torch.randperm(len(p), generator=generator)] for p in pools]
    for b in range(min(len(p) for p in pools) // per_class):
        yield torch.cat([p[b * per_class:(b + 1) * per_class] for p in pools])


def _contrastive(E, labels):
    i, j = torch.triu_indices(len(labels), len(labels), offset=1)
    return ml.contrastive_loss(E[i], E[j], (labels[i] != labels[j]).long(), 1.0)


def _semi_hard_triplet(E, labels):
    with torch.no_grad():
        t = ml.semi_hard_triplets(ml.pairwise_distances(E), labels, 1.0)
    if len(t) == 0:
        return ml.batch_all_triplet_loss(E, labels, 1.0)
    return ml.triplet_loss(E[t[:, 0]], E[t[:, 1]], E[t[:, 2]], 1.0)


LOSSES = {
    "contrastive": (_contrastive, 8),
    "triplet_semi_hard": (_semi_hard_triplet, 8),
    "triplet_batch_all": (lambda E, y: ml.batch_all_triplet_loss(E, y, 1.0), 8),
    "lifted_structured": (lambda E, y: ml.lifted_structured_loss(E, y, 1.0), 8),
    "lifted_hard_triplet": (lambda E, y: ml.lifted_hard_triplet_loss(E, y, 1.0), 8),
    "npair": (lambda E, y: ml.npair_loss(E[0::2], E[1::2], 0.002), 2),
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is as fast and immune to OpenMP spin-waiting on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(size=32, seed=0)
    return x[:1200], y[:1200], x[1200:], y[1200:]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_32d_embedding_recall_at_1(name, digits):
    x_train, y_train, x_test, y_test = digits
    loss_fn, per_class = LOSSES[name]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = _net(32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(8):
        for idx in _batches(y_train, per_class, g):
            loss = loss_fn(net(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        emb = net(x_test)
    r1 = ml.recall_at_k(emb, y_test, 1)
    print(f"{name}: Recall@1 = {r1:.3f}")
    assert r1 >= 0.95, (name, r1)
