"""Variants of the graded functions of 06_metric_embeddings, written as a student might.

``WRONG[question_id]`` maps a mutant's name to a function that must lose points on that question (and only
there); ``CORRECT[question_id]`` maps a name to a function written differently from the reference (loops, float64,
library calls, another equivalent formulation) that must get full marks. ``tests/test_mutants_06.py`` grades every
one of them through the engine's comparison API.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from utils.reference.metric_learning import contrastive_squared_distance, contrastive_y_flipped, pairwise_distances_always_squared, triplet_squared_distances


# ------------------------------------------------------------------------------------------------- helpers
def _safe_sqrt(sq):
    zero = sq <= 0
    return torch.sqrt(sq.masked_fill(zero, 1.0)).masked_fill(zero, 0.0)


def _gram_sq(E):
    n2 = (E * E).sum(1)
    sq = (n2[:, None] + n2[None, :] - 2 * E @ E.T).clamp_min(0)
    return sq.masked_fill(torch.eye(len(E), dtype=torch.bool), 0.0)


def _dist(E):
    return _safe_sqrt(_gram_sq(E))


def _masks(labels):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return same & ~eye, ~same


def _d64(E):
    E = E.detach().double()
    return [[math.sqrt(sum((E[i, c] - E[j, c]).item() ** 2 for c in range(E.shape[1]))) for j in range(len(E))]
            for i in range(len(E))]


# ----------------------------------------------------------------------------------------- pairwise_distances
def pd_always_plain(E, squared=False):
    return _dist(E)


def pd_manhattan(E, squared=False):
    d = (E[:, None, :] - E[None, :, :]).abs().sum(-1)
    return d ** 2 if squared else d


def pd_hardcoded_n(E, squared=False):
    n2 = (E * E).sum(1)
    sq = (n2[:, None] + n2[None, :] - 2 * E @ E.T).clamp_min(0) * (1 - torch.eye(6))     # public N = 6
    return sq if squared else _safe_sqrt(sq)


def pd_difference_based(E, squared=False):
    diff = E[:, None, :] - E[None, :, :]
    sq = (diff * diff).sum(-1)
    return sq if squared else _safe_sqrt(sq)


def pd_float64_loop(E, squared=False):
    d = torch.tensor(_d64(E), dtype=torch.float64)
    return d ** 2 if squared else d


def pd_cdist(E, squared=False):
    d = torch.cdist(E, E)
    return d ** 2 if squared else d


def pd_gram_unsymmetrized(E, squared=False):
    sq = (E ** 2).sum(1, keepdim=True) + (E ** 2).sum(1) - 2 * E @ E.t()
    sq = torch.relu(sq)
    sq = sq - torch.diag(torch.diag(sq))
    if squared:
        return sq
    mask = (sq == 0).float()
    return torch.sqrt(sq + mask * 1e-16) * (1 - mask)


# ------------------------------------------------------------------------------------------------ recall_at_k
def recall_self_included(embeddings, labels, k=1):
    nearest = _dist(embeddings).topk(k, dim=1, largest=False).indices
    return (labels[nearest] == labels[:, None]).any(1).float().mean().item()


def recall_ignores_k(embeddings, labels, k=1):
    d = _dist(embeddings)
    d.fill_diagonal_(float("inf"))
    return (labels[d.argmin(1)] == labels).float().mean().item()


def recall_majority_vote(embeddings, labels, k=1):
    d = _dist(embeddings)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, dim=1, largest=False).indices
    return (torch.mode(labels[nearest], dim=1).values == labels).float().mean().item()


def recall_skips_singletons(embeddings, labels, k=1):
    d = _dist(embeddings)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, dim=1, largest=False).indices
    hit = (labels[nearest] == labels[:, None]).any(1)
    has_pos = _masks(labels)[0].any(1)
    return hit[has_pos].float().mean().item()


def recall_loop(embeddings, labels, k=1):
    D = _d64(embeddings)
    n = len(D)
    hits = 0
    for q in range(n):
        order = sorted((D[q][j], j) for j in range(n) if j != q)[:k]
        hits += any(int(labels[j]) == int(labels[q]) for _, j in order)
    return hits / n


def recall_argsort(embeddings, labels, k=1):
    d = torch.cdist(embeddings.double(), embeddings.double())
    order = d.argsort(dim=1)[:, 1:k + 1]           # column 0 is the query itself (distance 0)
    return torch.tensor([bool((labels[o] == labels[i]).any()) for i, o in enumerate(order)]).double().mean()


# ------------------------------------------------------------------------------------------- contrastive_loss
def _pair_d(x1, x2):
    return _safe_sqrt(((x1 - x2) ** 2).sum(1))


def contrastive_margin_outside_square(x1, x2, y, margin=1.0):
    """max(0, m^2 - D^2) instead of max(0, m - D)^2."""
    sq = ((x1 - x2) ** 2).sum(1)
    y = y.float()
    return ((1 - y) * 0.5 * sq + y * 0.5 * F.relu(margin ** 2 - sq)).mean()


def contrastive_hinge_not_squared(x1, x2, y, margin=1.0):
    d = _pair_d(x1, x2)
    y = y.float()
    return ((1 - y) * 0.5 * d ** 2 + y * 0.5 * F.relu(margin - d)).mean()


def contrastive_mean_nonzero(x1, x2, y, margin=1.0):
    d = _pair_d(x1, x2)
    y = y.float()
    per = (1 - y) * 0.5 * d ** 2 + y * 0.5 * F.relu(margin - d) ** 2
    return per.sum() / (per > 0).sum().clamp_min(1)


def contrastive_no_half(x1, x2, y, margin=1.0):
    d = _pair_d(x1, x2)
    y = y.float()
    return ((1 - y) * d ** 2 + y * F.relu(margin - d) ** 2).mean()


def contrastive_hardcoded_batch(x1, x2, y, margin=1.0):
    d = _pair_d(x1, x2)
    y = y.float()
    return ((1 - y) * 0.5 * d ** 2 + y * 0.5 * F.relu(margin - d) ** 2).sum() / 8      # public N = 8


def contrastive_pairwise_distance(x1, x2, y, margin=1.0):
    d = F.pairwise_distance(x1, x2)                                   # adds eps = 1e-6 to the difference
    return torch.mean((1 - y) * 0.5 * d.pow(2) + y * 0.5 * torch.clamp(margin - d, min=0).pow(2))


def contrastive_loop64(x1, x2, y, margin=1.0):
    total = 0.0
    for a, b, yy in zip(x1.detach().double(), x2.detach().double(), y.tolist()):
        d = float(torch.sqrt(((a - b) ** 2).sum()))
        total += 0.5 * d * d if yy == 0 else 0.5 * max(0.0, margin - d) ** 2
    return total / len(y)


# ----------------------------------------------------------------------------------------------- triplet_loss
def triplet_margin_outside_hinge(anchor, positive, negative, margin=1.0):
    ap = _pair_d(anchor, positive)
    an = _pair_d(anchor, negative)
    return (F.relu(ap - an) + margin).mean()


def triplet_mean_nonzero(anchor, positive, negative, margin=1.0):
    per = F.relu(_pair_d(anchor, positive) - _pair_d(anchor, negative) + margin)
    return per.sum() / (per > 0).sum().clamp_min(1)


def triplet_sum(anchor, positive, negative, margin=1.0):
    return F.relu(_pair_d(anchor, positive) - _pair_d(anchor, negative) + margin).sum()


def triplet_hardcoded_batch(anchor, positive, negative, margin=1.0):
    return F.relu(_pair_d(anchor, positive) - _pair_d(anchor, negative) + margin).sum() / 6   # public N = 6


def triplet_torch_builtin(anchor, positive, negative, margin=1.0):
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2)


def triplet_norm(anchor, positive, negative, margin=1.0):
    ap = torch.linalg.vector_norm(anchor.double() - positive.double(), dim=1)
    an = torch.linalg.vector_norm(anchor.double() - negative.double(), dim=1)
    return torch.clamp(ap - an + margin, min=0).mean()


# --------------------------------------------------------------------------------------------------- miners
def ba_self_as_positive(labels):
    same = labels[:, None] == labels[None, :]
    return torch.nonzero(same[:, :, None] & ~same[:, None, :])


def ba_negatives_any_other(labels):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return torch.nonzero((same & ~eye)[:, :, None] & ~eye[:, None, :])


def ba_hardcoded_classes(labels):
    onehot = F.one_hot(labels, num_classes=3).float()                        # public case: 3 classes
    same = (onehot @ onehot.T).bool()
    eye = torch.eye(len(labels), dtype=torch.bool)
    return torch.nonzero((same & ~eye)[:, :, None] & ~same[:, None, :])


def ba_hardcoded_batch(labels):
    idx = torch.arange(8)                                                    # public N = 8
    out = [(a, p, n) for a in idx for p in idx for n in idx
           if a != p and labels[a] == labels[p] and labels[n] != labels[a]]
    return torch.tensor(out, dtype=torch.long)


def ba_loop(labels):
    lab = labels.tolist()
    rows = [(a, p, n) for a, p, n in itertools.product(range(len(lab)), repeat=3)
            if a != p and lab[a] == lab[p] and lab[n] != lab[a]]
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 3)


def ba_shuffled_order(labels):
    pos, neg = _masks(labels)
    t = torch.nonzero(pos[:, :, None] & neg[:, None, :])
    return t.flip(0)                                                         # any order is fine


def bh_easiest_positive(dist, labels):
    pos, neg = _masks(labels)
    valid = pos.any(1) & neg.any(1)
    p = dist.masked_fill(~pos, float("inf")).argmin(1)
    n = dist.masked_fill(~neg, float("inf")).argmin(1)
    return torch.stack([torch.arange(len(labels)), p, n], 1)[valid]


def bh_farthest_negative(dist, labels):
    pos, neg = _masks(labels)
    valid = pos.any(1) & neg.any(1)
    p = dist.masked_fill(~pos, float("-inf")).argmax(1)
    n = dist.masked_fill(~neg, float("-inf")).argmax(1)
    return torch.stack([torch.arange(len(labels)), p, n], 1)[valid]


def bh_self_counts_as_positive(dist, labels):
    same = labels[:, None] == labels[None, :]
    valid = (~same).any(1)
    p = dist.masked_fill(~same, float("-inf")).argmax(1)
    n = dist.masked_fill(same, float("inf")).argmin(1)
    return torch.stack([torch.arange(len(labels)), p, n], 1)[valid]


def bh_loop(dist, labels):
    rows = []
    lab = labels.tolist()
    for a in range(len(lab)):
        pos = [p for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        neg = [q for q in range(len(lab)) if lab[q] != lab[a]]
        if pos and neg:
            rows.append((a, max(reversed(pos), key=lambda p: float(dist[a, p])),
                         min(reversed(neg), key=lambda q: float(dist[a, q]))))     # ties to the largest index
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 3)


def sh_no_upper_bound(dist, labels, margin):
    pos, neg = _masks(labels)
    dap, dan = dist[:, :, None], dist[:, None, :]
    return torch.nonzero(pos[:, :, None] & neg[:, None, :] & (dan > dap))


def sh_hard_instead(dist, labels, margin):
    pos, neg = _masks(labels)
    dap, dan = dist[:, :, None], dist[:, None, :]
    return torch.nonzero(pos[:, :, None] & neg[:, None, :] & (dan < dap + margin))


def sh_hardcoded_margin(dist, labels, margin):
    pos, neg = _masks(labels)
    dap, dan = dist[:, :, None], dist[:, None, :]
    return torch.nonzero(pos[:, :, None] & neg[:, None, :] & (dan > dap) & (dan < dap + 0.5))   # public margin


def sh_loop(dist, labels, margin):
    lab = labels.tolist()
    n = len(lab)
    rows = [(a, p, q) for a in range(n) for p in range(n) for q in range(n)
            if a != p and lab[a] == lab[p] and lab[q] != lab[a]
            and float(dist[a, p]) < float(dist[a, q]) < float(dist[a, p]) + margin]
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 3)


# ------------------------------------------------------------------------------------ batch_all_triplet_loss
def _ba_terms(dist, labels, margin):
    pos, neg = _masks(labels)
    valid = pos[:, :, None] & neg[:, None, :]
    return F.relu(dist[:, :, None] - dist[:, None, :] + margin), valid


def bal_mean_nonzero(embeddings, labels, margin=1.0):
    terms, valid = _ba_terms(_dist(embeddings), labels, margin)
    terms = terms * valid
    return terms.sum() / (terms > 0).sum().clamp_min(1)


def bal_squared(embeddings, labels, margin=1.0):
    terms, valid = _ba_terms(_gram_sq(embeddings), labels, margin)
    return (terms * valid).sum() / valid.sum().clamp_min(1)


def bal_self_positive(embeddings, labels, margin=1.0):
    same = labels[:, None] == labels[None, :]
    valid = same[:, :, None] & ~same[:, None, :]
    terms = F.relu(_dist(embeddings)[:, :, None] - _dist(embeddings)[:, None, :] + margin)
    return (terms * valid).sum() / valid.sum().clamp_min(1)


def bal_hardcoded_classes(embeddings, labels, margin=1.0):
    onehot = F.one_hot(labels, 3).float()
    same = (onehot @ onehot.T).bool()
    eye = torch.eye(len(labels), dtype=torch.bool)
    valid = (same & ~eye)[:, :, None] & ~same[:, None, :]
    terms = F.relu(_dist(embeddings)[:, :, None] - _dist(embeddings)[:, None, :] + margin)
    return (terms * valid).sum() / valid.sum().clamp_min(1)


def bal_dense(embeddings, labels, margin=1.0):
    terms, valid = _ba_terms(_dist(embeddings), labels, margin)
    return torch.where(valid, terms, torch.zeros_like(terms)).sum() / valid.sum().clamp_min(1)


def bal_indices(embeddings, labels, margin=1.0):
    t = ba_loop(labels)
    if len(t) == 0:
        return (embeddings * 0).sum()
    a, p, n = t.unbind(1)
    return F.triplet_margin_loss(embeddings[a], embeddings[p], embeddings[n], margin=margin)


def bal_loop64(embeddings, labels, margin=1.0):
    D = _d64(embeddings)
    t = ba_loop(labels).tolist()
    return sum(max(0.0, D[a][p] - D[a][n] + margin) for a, p, n in t) / len(t) if t else 0.0


# ------------------------------------------------------------------------------------ lifted_structured_loss
def _lifted_J(dist, labels, margin, reduce="lse", both_ends=True):
    pos, neg = _masks(labels)
    x = (margin - dist).masked_fill(~neg, float("-inf"))
    if reduce == "lse":
        xi, xj = x[:, None, :], x[None, :, :]
        both = torch.cat([xi.expand(-1, len(labels), -1), xj.expand(len(labels), -1, -1)], dim=2)
        if not both_ends:
            both = xi.expand(-1, len(labels), -1)
        m = both.amax(2, keepdim=True).clamp_min(-1e30).detach()
        s = torch.exp(both - m).sum(2)
        J = torch.log(s) + m.squeeze(2) + dist
    else:
        mi = x.amax(1)
        J = torch.maximum(mi[:, None], mi[None, :]) + dist
    return J, pos, neg


def lifted_ordered_pairs_twice(embeddings, labels, margin=1.0):
    """Sums over ordered pairs (each unordered pair twice) but divides by 2 |P| with |P| unordered."""
    J, pos, neg = _lifted_J(_dist(embeddings), labels, margin)
    terms = torch.where(pos & neg.any(1)[:, None], F.relu(J) ** 2, torch.zeros_like(J))
    n_unordered = torch.triu(pos, 1).sum().clamp_min(1)
    return terms.sum() / (2 * n_unordered)


def lifted_max_not_lse(embeddings, labels, margin=1.0):
    J, pos, neg = _lifted_J(_dist(embeddings), labels, margin, reduce="max")
    upper = torch.triu(pos, 1) & neg.any(1)[:, None]
    terms = torch.where(upper, F.relu(J) ** 2, torch.zeros_like(J))
    return terms.sum() / (2 * torch.triu(pos, 1).sum().clamp_min(1))


def lifted_mean_nonzero(embeddings, labels, margin=1.0):
    J, pos, neg = _lifted_J(_dist(embeddings), labels, margin)
    upper = torch.triu(pos, 1) & neg.any(1)[:, None]
    terms = torch.where(upper, F.relu(J) ** 2, torch.zeros_like(J))
    return terms.sum() / (2 * (terms > 0).sum().clamp_min(1))


def lifted_squared_distances(embeddings, labels, margin=1.0):
    J, pos, neg = _lifted_J(_gram_sq(embeddings), labels, margin)
    upper = torch.triu(pos, 1) & neg.any(1)[:, None]
    terms = torch.where(upper, F.relu(J) ** 2, torch.zeros_like(J))
    return terms.sum() / (2 * torch.triu(pos, 1).sum().clamp_min(1))


def lifted_one_end_only(embeddings, labels, margin=1.0):
    J, pos, neg = _lifted_J(_dist(embeddings), labels, margin, both_ends=False)
    upper = torch.triu(pos, 1) & neg.any(1)[:, None]
    terms = torch.where(upper, F.relu(J) ** 2, torch.zeros_like(J))
    return terms.sum() / (2 * torch.triu(pos, 1).sum().clamp_min(1))


def lifted_no_half(embeddings, labels, margin=1.0):
    J, pos, neg = _lifted_J(_dist(embeddings), labels, margin)
    upper = torch.triu(pos, 1) & neg.any(1)[:, None]
    terms = torch.where(upper, F.relu(J) ** 2, torch.zeros_like(J))
    return terms.sum() / torch.triu(pos, 1).sum().clamp_min(1)


def lifted_hardcoded_pair_count(embeddings, labels, margin=1.0):
    """|P| from a class count hard-coded to the public case's 3 balanced classes."""
    J, pos, neg = _lifted_J(_dist(embeddings), labels, margin)
    upper = torch.triu(pos, 1) & neg.any(1)[:, None]
    terms = torch.where(upper, F.relu(J) ** 2, torch.zeros_like(J))
    k = len(labels) / 3
    return terms.sum() / (2 * 3 * k * (k - 1) / 2)


def lifted_loop64(embeddings, labels, margin=1.0):
    D = _d64(embeddings)
    lab = labels.tolist()
    P = [(i, j) for i, j in itertools.combinations(range(len(lab)), 2) if lab[i] == lab[j]]
    if not P:
        return 0.0
    total = 0.0
    for i, j in P:
        s = sum(math.exp(margin - D[i][k]) for k in range(len(lab)) if lab[k] != lab[i])
        s += sum(math.exp(margin - D[j][k]) for k in range(len(lab)) if lab[k] != lab[j])
        if s > 0:
            total += max(0.0, math.log(s) + D[i][j]) ** 2
    return total / (2 * len(P))


def lifted_ordered_matching_norm(embeddings, labels, margin=1.0):
    """Ordered pairs (each unordered pair counted twice) with the matching normalization: sum / (2 |P_ordered|)."""
    J, pos, neg = _lifted_J(_pair_dist_diff(embeddings), labels, margin)
    terms = torch.where(pos & neg.any(1)[:, None], F.relu(J) ** 2, torch.zeros_like(J))
    return terms.sum() / (2 * pos.sum().clamp_min(1))


def _pair_dist_diff(E):
    return _safe_sqrt(((E[:, None] - E[None]) ** 2).sum(-1))


# ---------------------------------------------------------------------------------- lifted_hard_triplet_loss
def _hard_terms(dist, labels, margin, pick):
    pos, neg = _masks(labels)
    nn_neg = dist.masked_fill(~neg, float("inf"))
    if pick == "either":
        h = nn_neg.amin(1)
        hard = torch.minimum(h[:, None], h[None, :])
    elif pick == "anchor_only":
        hard = nn_neg.amin(1)[:, None].expand_as(dist)
    elif pick == "farthest":
        f = dist.masked_fill(~neg, float("-inf")).amax(1)
        hard = torch.maximum(f[:, None], f[None, :])
    hinge = F.relu(dist - hard + margin)
    valid = pos & neg.any(1)[:, None]
    return torch.where(valid, hinge, torch.zeros_like(hinge)), pos


def lht_anchor_only(embeddings, labels, margin=1.0):
    terms, pos = _hard_terms(_dist(embeddings), labels, margin, "anchor_only")
    return terms.sum() / pos.sum().clamp_min(1)                  # mean over ordered pairs, i's negatives only


def lht_farthest_negative(embeddings, labels, margin=1.0):
    terms, pos = _hard_terms(_dist(embeddings), labels, margin, "farthest")
    return torch.triu(terms, 1).sum() / torch.triu(pos, 1).sum().clamp_min(1)


def lht_sum(embeddings, labels, margin=1.0):
    terms, pos = _hard_terms(_dist(embeddings), labels, margin, "either")
    return torch.triu(terms, 1).sum()


def lht_squared(embeddings, labels, margin=1.0):
    terms, pos = _hard_terms(_gram_sq(embeddings), labels, margin, "either")
    return torch.triu(terms, 1).sum() / torch.triu(pos, 1).sum().clamp_min(1)


def lht_ordered_pairs(embeddings, labels, margin=1.0):
    terms, pos = _hard_terms(_pair_dist_diff(embeddings), labels, margin, "either")
    return terms.sum() / pos.sum().clamp_min(1)                  # symmetric terms: same mean as unordered


def lht_loop64(embeddings, labels, margin=1.0):
    D = _d64(embeddings)
    lab = labels.tolist()
    P = [(i, j) for i, j in itertools.combinations(range(len(lab)), 2) if lab[i] == lab[j]]
    total = 0.0
    for i, j in P:
        negs = [k for k in range(len(lab)) if lab[k] != lab[i]]
        if negs:
            total += max(0.0, D[i][j] - min(min(D[i][k], D[j][k]) for k in negs) + margin)
    return total / len(P) if P else 0.0


# ----------------------------------------------------------------------------------------------- npair_loss
def npair_no_quarter(anchors, positives, l2_reg=0.002):
    ce = F.cross_entropy(anchors @ positives.T, torch.arange(len(anchors)))
    return ce + l2_reg * ((anchors ** 2).sum(1).mean() + (positives ** 2).sum(1).mean())


def npair_sum_of_norms(anchors, positives, l2_reg=0.002):
    ce = F.cross_entropy(anchors @ positives.T, torch.arange(len(anchors)))
    return ce + 0.25 * l2_reg * ((anchors ** 2).sum() + (positives ** 2).sum())


def npair_transposed(anchors, positives, l2_reg=0.002):
    ce = F.cross_entropy(positives @ anchors.T, torch.arange(len(anchors)))
    return ce + 0.25 * l2_reg * ((anchors ** 2).sum(1).mean() + (positives ** 2).sum(1).mean())


def npair_sum_ce(anchors, positives, l2_reg=0.002):
    ce = F.cross_entropy(anchors @ positives.T, torch.arange(len(anchors)), reduction="sum")
    return ce + 0.25 * l2_reg * ((anchors ** 2).sum(1).mean() + (positives ** 2).sum(1).mean())


def npair_hardcoded_batch(anchors, positives, l2_reg=0.002):
    ce = F.cross_entropy(anchors @ positives.T, torch.arange(5))             # public N = 5
    return ce + 0.25 * l2_reg * ((anchors ** 2).sum(1).mean() + (positives ** 2).sum(1).mean())


def npair_loop64(anchors, positives, l2_reg=0.002):
    a, p = anchors.detach().double(), positives.detach().double()
    n = len(a)
    total = 0.0
    for i in range(n):
        s = sum(math.exp(float(a[i] @ p[j] - a[i] @ p[i])) for j in range(n) if j != i)
        total += math.log1p(s)
    reg = float((a ** 2).sum() + (p ** 2).sum()) / n
    return total / n + 0.25 * l2_reg * reg


def npair_logsumexp(anchors, positives, l2_reg=0.002):
    S = anchors @ positives.T
    ce = (torch.logsumexp(S, dim=1) - S.diagonal()).mean()
    return ce + l2_reg / 4 * (anchors.pow(2).sum() + positives.pow(2).sum()) / anchors.shape[0]


WRONG = {
    "pairwise_distances": {
        "always_squared": pairwise_distances_always_squared,
        "always_plain": pd_always_plain,
        "manhattan": pd_manhattan,
        "hardcoded_n": pd_hardcoded_n,
    },
    "recall_at_k": {
        "self_included": recall_self_included,
        "ignores_k": recall_ignores_k,
        "majority_vote": recall_majority_vote,
        "skips_singletons": recall_skips_singletons,
    },
    "contrastive_loss": {
        "y_flipped": contrastive_y_flipped,
        "squared_distance": contrastive_squared_distance,
        "margin_outside_square": contrastive_margin_outside_square,
        "hinge_not_squared": contrastive_hinge_not_squared,
        "mean_nonzero": contrastive_mean_nonzero,
        "no_half": contrastive_no_half,
        "hardcoded_batch": contrastive_hardcoded_batch,
    },
    "triplet_loss": {
        "squared": triplet_squared_distances,
        "margin_outside_hinge": triplet_margin_outside_hinge,
        "mean_nonzero": triplet_mean_nonzero,
        "sum": triplet_sum,
        "hardcoded_batch": triplet_hardcoded_batch,
    },
    "batch_all_triplets": {
        "self_as_positive": ba_self_as_positive,
        "negatives_any_other": ba_negatives_any_other,
        "hardcoded_classes": ba_hardcoded_classes,
        "hardcoded_batch": ba_hardcoded_batch,
    },
    "batch_hard_triplets": {
        "easiest_positive": bh_easiest_positive,
        "farthest_negative": bh_farthest_negative,
        "self_counts_as_positive": bh_self_counts_as_positive,
    },
    "semi_hard_triplets": {
        "no_upper_bound": sh_no_upper_bound,
        "hard_instead": sh_hard_instead,
        "hardcoded_margin": sh_hardcoded_margin,
    },
    "batch_all_triplet_loss": {
        "mean_nonzero": bal_mean_nonzero,
        "squared": bal_squared,
        "self_positive": bal_self_positive,
        "hardcoded_classes": bal_hardcoded_classes,
    },
    "lifted_structured_loss": {
        "ordered_pairs_twice": lifted_ordered_pairs_twice,
        "max_not_lse": lifted_max_not_lse,
        "mean_nonzero": lifted_mean_nonzero,
        "squared_distances": lifted_squared_distances,
        "one_end_only": lifted_one_end_only,
        "no_half": lifted_no_half,
        "hardcoded_pair_count": lifted_hardcoded_pair_count,
    },
    "lifted_hard_triplet_loss": {
        "anchor_only": lht_anchor_only,
        "farthest_negative": lht_farthest_negative,
        "sum": lht_sum,
        "squared": lht_squared,
    },
    "npair_loss": {
        "no_quarter": npair_no_quarter,
        "sum_of_norms": npair_sum_of_norms,
        "transposed": npair_transposed,
        "sum_ce": npair_sum_ce,
        "hardcoded_batch": npair_hardcoded_batch,
    },
}

CORRECT = {
    "pairwise_distances": {
        "difference_based": pd_difference_based,
        "float64_loop": pd_float64_loop,
        "cdist": pd_cdist,
        "gram_unsymmetrized": pd_gram_unsymmetrized,
    },
    "recall_at_k": {"loop": recall_loop, "argsort": recall_argsort},
    "contrastive_loss": {"pairwise_distance": contrastive_pairwise_distance, "loop64": contrastive_loop64},
    "triplet_loss": {"torch_builtin": triplet_torch_builtin, "norm64": triplet_norm},
    "batch_all_triplets": {"loop": ba_loop, "shuffled_order": ba_shuffled_order},
    "batch_hard_triplets": {"loop_other_ties": bh_loop},
    "semi_hard_triplets": {"loop": sh_loop},
    "batch_all_triplet_loss": {"dense": bal_dense, "indices": bal_indices, "loop64": bal_loop64},
    "lifted_structured_loss": {"loop64": lifted_loop64, "ordered_matching_norm": lifted_ordered_matching_norm},
    "lifted_hard_triplet_loss": {"loop64": lht_loop64, "ordered_pairs": lht_ordered_pairs},
    "npair_loss": {"loop64": npair_loop64, "logsumexp": npair_logsumexp},
}
