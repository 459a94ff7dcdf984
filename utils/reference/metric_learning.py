"""Reference: learning embeddings with Siamese / triplet / lifted-structure / N-pair losses (assignment 06).

Three kinds of parts, kept separate so they compose (pytorch-metric-learning's habit):

* **distances**: :func:`pairwise_distances`;
* **miners** (which tuples of a batch to train on; they return index tensors and never a loss):
  :func:`batch_all_triplets`, :func:`batch_hard_triplets`, :func:`semi_hard_triplets`;
* **losses**: :func:`contrastive_loss`, :func:`triplet_loss` (on explicit triplets; compose it with a miner through
  :func:`triplet_loss_from_indices`), :func:`batch_all_triplet_loss`, :func:`lifted_structured_loss`,
  :func:`lifted_hard_triplet_loss`, :func:`npair_loss`;
* **evaluation**: :func:`recall_at_k`.

Conventions shared by every function here:

* Distances are plain (not squared) Euclidean distances unless a function says otherwise.
* "Positive" pairs are two *different* samples with the same label, "negative" pairs have different labels.
* Everything is vectorized, loop-free and device-agnostic: results live on the device of the inputs.
* Every loss is a 0-d tensor connected to the graph, also in degenerate batches (no valid pair / triplet:
  the loss is 0 and its gradient is 0), and its gradient is finite when embeddings coincide.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "pairwise_distances",
    "contrastive_loss",
    "triplet_loss",
    "batch_all_triplets",
    "batch_hard_triplets",
    "semi_hard_triplets",
    "batch_all_triplet_loss",
    "lifted_structured_loss",
    "lifted_hard_triplet_loss",
    "npair_loss",
    "recall_at_k",
]


# --------------------------------------------------------------------------------------------------- distances
def _safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    """``sqrt`` of a non-negative tensor whose gradient is 0 (not inf / nan) where the input is exactly 0."""
    zero = sq <= 0
    return torch.sqrt(sq.masked_fill(zero, 1.0)).masked_fill(zero, 0.0)


def _row_norms(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row of ``(N, D)`` ``x`` with a finite gradient at zero rows."""
    return _safe_sqrt((x * x).sum(dim=1))


def pairwise_distances(E: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """All pairwise Euclidean distances between the rows of ``E``.

    Args:
        E: ``(N, D)`` embeddings.
        squared: return squared distances ``||e_i - e_j||^2`` instead of ``||e_i - e_j||``.

    Returns:
        ``(N, N)`` exactly symmetric, non-negative, exactly 0 on the diagonal, same dtype and device as ``E``.

    Computed from the Gram matrix, ``||a||^2 + ||b||^2 - 2 a.b`` (O(N^2) memory, one matmul), clamped at 0
    against round-off. The square root is "safe": where the squared distance is exactly 0 (the diagonal,
    duplicated rows) its gradient is 0 instead of ``inf`` -- plain ``sqrt`` would put ``nan`` in every gradient.
    """
    sq_norms = (E * E).sum(dim=1)
    gram = E @ E.T
    gram = 0.5 * (gram + gram.T)                       # a matmul is not exactly symmetric in floating point
    sq = sq_norms[:, None] + sq_norms[None, :] - 2.0 * gram
    eye = torch.eye(E.shape[0], dtype=torch.bool, device=E.device)
    sq = sq.clamp_min(0.0).masked_fill(eye, 0.0)
    if squared:
        return sq
    return _safe_sqrt(sq)


def _label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos, neg)`` boolean ``(N, N)`` masks: same label and not the same sample / different label."""
    labels = labels.reshape(-1)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _zero_loss(x: torch.Tensor) -> torch.Tensor:
    """A 0-d zero that is still part of the graph of ``x`` (so ``.backward()`` works and gives zero gradients)."""
    return (x * 0.0).sum()


# ------------------------------------------------------------------------------------------------------ losses
def contrastive_loss(x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss of Hadsell, Chopra & LeCun (CVPR 2006), averaged over the pairs.

    ``L = mean_i [ (1 - Y_i) * 1/2 * D_i^2 + Y_i * 1/2 * max(0, m - D_i)^2 ]`` with ``D_i = ||x1_i - x2_i||``
    (plain Euclidean distance) and **Y = 0 for a similar pair, Y = 1 for a dissimilar pair** (the paper's and the
    lecture's convention; note that many libraries use the opposite one).

    Args:
        x1, x2: ``(N, D)`` embeddings of the two sides of each pair.
        y: ``(N,)`` 0 / 1 (int, bool or float).
        margin: ``m``; dissimilar pairs farther apart than ``m`` cost nothing.

    Returns:
        0-d tensor (0 for an empty batch).
    """
    diff = x1 - x2
    sq = (diff * diff).sum(dim=1)
    d = _safe_sqrt(sq)
    y = y.reshape(-1).to(sq.dtype)
    per_pair = (1.0 - y) * 0.5 * sq + y * 0.5 * torch.clamp(margin - d, min=0.0) ** 2
    return per_pair.sum() / max(per_pair.numel(), 1)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 1.0) -> torch.Tensor:
    """Triplet loss as in the lecture, averaged over the triplets.

    ``L = mean_i max(0, ||a_i - p_i|| - ||a_i - n_i|| + alpha)`` with plain (not squared) Euclidean distances.

    Args:
        anchor, positive, negative: ``(N, D)``; row ``i`` of each forms triplet ``i``.
        margin: ``alpha``.

    Returns:
        0-d tensor (0 for an empty batch).
    """
    d_ap = _row_norms(anchor - positive)
    d_an = _row_norms(anchor - negative)
    losses = F.relu(d_ap - d_an + margin)
    return losses.sum() / max(losses.numel(), 1)


def triplet_loss_from_indices(embeddings: torch.Tensor, triplets: torch.Tensor, margin: float = 1.0,
                              dist: torch.Tensor | None = None) -> torch.Tensor:
    """Compose a miner with the triplet loss: the mean triplet hinge over the ``(T, 3)`` index rows ``(a, p, n)``.

    Equals ``triplet_loss(E[a], E[p], E[n], margin)`` but reads the distances from one ``(N, N)`` distance matrix
    (pass ``dist`` to reuse one) instead of gathering ``3T`` embedding rows.
    """
    if dist is None:
        dist = pairwise_distances(embeddings)
    if triplets.numel() == 0:
        return _zero_loss(dist)
    a, p, n = triplets.unbind(dim=1)
    losses = F.relu(dist[a, p] - dist[a, n] + margin)
    return losses.mean()


#: Largest ``N**3`` for which :func:`batch_all_triplet_loss` builds the dense ``(N, N, N)`` hinge on an accelerator
#: (2**27 entries: N <= 512, 512 MB per float32 copy, three copies at the peak); larger batches, and every batch
#: on the CPU, use the sorted prefix sums.
DENSE_TRIPLETS_MAX = 1 << 27


def batch_all_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Triplet loss over **every** valid triplet of the batch, averaged over all of them (zeros included).

    ``L = 1/|T| sum_{(a,p,n) in T} max(0, D_ap - D_an + alpha)``, ``T`` = all (anchor, positive, negative) with
    ``label[a] == label[p]``, ``a != p``, ``label[n] != label[a]``; plain Euclidean ``D``. 0 when ``T`` is empty.

    Args:
        embeddings: ``(N, D)``.  labels: ``(N,)`` integers.  margin: ``alpha``.

    Returns:
        0-d tensor; the same value as ``triplet_loss_from_indices(E, batch_all_triplets(labels), margin)``.

    Two implementations of the same value, both free of host synchronisation (no ``.item()``, no boolean
    indexing, no shape that depends on the labels' values), chosen by device and size only:

    * on an accelerator, for ``N**3 <= DENSE_TRIPLETS_MAX``: the dense ``(N, N, N)`` hinge with a hand-written
      backward, 34 operators for forward + backward (:class:`_BatchAllDense`): at these sizes kernel launches,
      not arithmetic, bound a GPU;
    * otherwise (every CPU batch): ``O(N^2 log N)`` sorted prefix sums that never build the triplets
      (:func:`_batch_all_sorted`): arithmetic bounds a CPU.
    """
    n = embeddings.shape[0]
    if embeddings.device.type != "cpu" and n ** 3 <= DENSE_TRIPLETS_MAX:
        return _BatchAllDense.apply(embeddings, labels.reshape(-1), float(margin))
    dist = pairwise_distances(embeddings)
    pos, neg = _label_masks(labels)
    n_triplets = (pos.sum(dim=1) * neg.sum(dim=1)).sum()                 # a tensor: no sync, no branch on it
    return _batch_all_sorted(dist, pos, neg, margin) / n_triplets.clamp_min(1).to(dist.dtype)


class _BatchAllDense(torch.autograd.Function):
    """:func:`batch_all_triplet_loss` from the dense ``(N, N, N)`` hinge, forward and backward written out.

    Forward: distances from the Gram matrix (as :func:`pairwise_distances`), then ``H[a, p, n] = T[a, p] - U[a, n]``
    with ``T = D + alpha`` on positive pairs and ``-big`` elsewhere, ``U = D`` on negative pairs and ``+big``
    elsewhere (``big`` = a quarter of the dtype's largest finite value: every difference stays finite), so the
    validity mask is folded into the operands and every invalid triplet's hinge is exactly 0. The loss is
    ``sum(max(H, 0)) / max(|T|, 1)``, ``|T|`` a tensor (no branch on its value).

    Backward: the hinge's derivative is the indicator ``H > 0``; summed over negatives it is ``dL/dD_ap`` (the
    number of active triplets of the pair), over positives ``-dL/dD_an``, both ``(N, N)`` and reduced in the
    forward pass. ``dD_ab / de_a = (e_a - e_b) / D_ab`` (0 where ``D_ab = 0``, the "safe" square root of
    :func:`pairwise_distances`), so with ``W = dL/dD``, ``S = W / D + (W / D)^T``:
    ``dL/dE = rowsum(S) * E - S @ E``. No ``(N, N, N)`` tensor is kept for the backward pass."""

    @staticmethod
    def forward(ctx, E: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
        gram = E @ E.T
        sq = gram.diagonal()
        dist = (sq[:, None] + sq[None, :]).sub_(gram, alpha=2.0).clamp_min_(0.0).sqrt_()    # (N, N)
        n = E.shape[0]
        neg = labels[:, None] != labels[None, :]                          # (N, N) negative pairs
        big = torch.finfo(dist.dtype).max / 4
        # D_ap + alpha on positive pairs (same label, a != p), -big elsewhere; D_an on negative pairs, +big elsewhere
        thresh = (dist + margin).masked_fill_(neg, -big).fill_diagonal_(-big)
        negd = torch.where(neg, dist, big)
        hinge = thresh[:, :, None] - negd[:, None, :]                     # (N, N, N)
        active = hinge > 0                                                # (N, N, N) bool
        # active triplets per (a, p) minus per (a, n): dL/dD up to the 1 / |T| factor, (N, N)
        w = active.sum(dim=2, dtype=dist.dtype) - active.sum(dim=1, dtype=dist.dtype)
        k = neg.sum(dim=1, dtype=dist.dtype)                              # negatives per anchor; positives: N-1-k
        count = (k * (n - 1 - k)).sum().clamp_min_(1.0)                  # |T|, a tensor: no branch on its value
        loss = hinge.clamp_min_(0.0).sum() / count
        ctx.save_for_backward(E, dist, w, count)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        E, dist, w, count = ctx.saved_tensors
        w = w * (grad / count)                                            # (N, N): dL/dD per anchor row
        m = torch.where(dist > 0, w / dist, 0.0)                          # dD/dD^2 chain, 0 at D = 0
        s = m + m.T
        return s.sum(dim=1, keepdim=True) * E - s @ E, None, None


def _batch_all_sorted(dist: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """Sum of the hinge over all valid triplets in ``O(N^2 log N)`` time and ``O(N^2)`` memory.

    For a fixed anchor ``a`` and positive ``p`` the inner sum over negatives is ``sum_n max(0, t - D_an)`` with
    ``t = D_ap + alpha``, i.e. ``c * t - (sum of the c negative distances below t)``. With each anchor's negative
    distances sorted once and prefix-summed, ``c`` comes from a binary search and the partial sum from the prefix
    sums; gradients flow through the sort and the prefix sums exactly as through the direct formula."""
    inf = torch.finfo(dist.dtype).max
    neg_sorted, _ = torch.sort(dist.masked_fill(~neg, inf), dim=1)         # each row: negatives first, ascending
    prefix = torch.cumsum(neg_sorted.masked_fill(neg_sorted == inf, 0.0), dim=1)
    prefix = F.pad(prefix, (1, 0))                                        # prefix[a, c] = sum of the c smallest
    thresh = (dist + margin).masked_fill(~pos, -1.0)                      # only positive (a, p) entries matter
    count = torch.searchsorted(neg_sorted.detach().contiguous(), thresh.detach().contiguous())   # D_an < t
    per_pair = count.to(dist.dtype) * thresh - torch.gather(prefix, 1, count)
    return torch.where(pos, per_pair, torch.zeros_like(per_pair)).sum()


def _masked_logsumexp_rows(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise ``log sum_{mask} exp(x)`` (stable) and whether each row has any masked-in entry.

    Rows with no entry get a finite placeholder (their value is meaningless and must be masked by the caller);
    keeping it finite keeps every gradient finite."""
    has_any = mask.any(dim=1)
    x = x.masked_fill(~mask, float("-inf")).masked_fill(~has_any[:, None], 0.0)
    return torch.logsumexp(x, dim=1), has_any


def lifted_structured_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Smooth lifted structured embedding loss of Song, Xiang, Jegelka & Savarese (CVPR 2016).

    For each **unordered** positive pair ``{i, j}`` (same label, ``i != j``)::

        J_ij = log( sum_{k in Neg(i)} exp(alpha - D_ik) + sum_{l in Neg(j)} exp(alpha - D_jl) ) + D_ij
        L    = 1 / (2 |P|) * sum_{{i,j} in P} max(0, J_ij)^2

    with plain Euclidean ``D`` and ``|P|`` the number of unordered positive pairs.

    The log-sum-exp is stable: each sample's ``lse_i = log sum_{k in Neg(i)} exp(alpha - D_ik)`` is computed once
    (O(N^2) in all) and ``J_ij = logaddexp(lse_i, lse_j) + D_ij``.

    Degenerate batches: with no positive pair the loss is a zero that still has a (zero) gradient. A positive
    pair with no negative at all (a batch with a single class) has an empty sum, ``log 0 = -inf`` and
    ``max(0, -inf) = 0``: it contributes 0 but is still counted in ``|P|``.

    Args:
        embeddings: ``(N, D)``.  labels: ``(N,)`` integers.  margin: ``alpha``.

    Returns:
        0-d tensor.
    """
    dist = pairwise_distances(embeddings)
    pos, neg = _label_masks(labels)
    lse, has_neg = _masked_logsumexp_rows(margin - dist, neg)
    J = torch.logaddexp(lse[:, None], lse[None, :]) + dist
    upper = torch.triu(pos, diagonal=1)
    active = upper & has_neg[:, None]                     # for a positive pair has_neg[i] == has_neg[j]
    terms = torch.where(active, F.relu(J) ** 2, torch.zeros_like(J))
    n_pos = upper.sum().clamp_min(1).to(dist.dtype)
    return terms.sum() / (2.0 * n_pos)


def lifted_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The hardest-negative triplet version of the lifted loss (the lecture's "triplet version").

    For each unordered positive pair ``{i, j}`` pick the negative ``k`` closest to *either* end, i.e. minimizing
    ``min(D_ik, D_jk)``; with the nearer end as the anchor this is the usual triplet hinge::

        L = 1/|P| * sum_{{i,j} in P} max(0, D_ij - min_k min(D_ik, D_jk) + alpha)

    (plain Euclidean ``D``, mean over the unordered positive pairs). A pair with no negative contributes 0 and is
    still counted; with no positive pair the loss is a zero with a zero gradient.
    """
    dist = pairwise_distances(embeddings)
    pos, neg = _label_masks(labels)
    has_neg = neg.any(dim=1)
    nearest_neg = dist.masked_fill(~neg, float("inf")).min(dim=1).values
    nearest_neg = torch.where(has_neg, nearest_neg, torch.zeros_like(nearest_neg))
    hardest = torch.minimum(nearest_neg[:, None], nearest_neg[None, :])
    hinge = F.relu(dist - hardest + margin)
    upper = torch.triu(pos, diagonal=1)
    terms = torch.where(upper & has_neg[:, None], hinge, torch.zeros_like(hinge))
    return terms.sum() / upper.sum().clamp_min(1).to(dist.dtype)


def npair_loss(anchors: torch.Tensor, positives: torch.Tensor, l2_reg: float = 0.002) -> torch.Tensor:
    """Multi-class N-pair loss of Sohn (NeurIPS 2016) with its L2 regularizer on the embeddings.

    Row ``i`` of ``anchors`` and row ``i`` of ``positives`` come from class ``i`` (N different classes). With the
    similarity matrix ``S = anchors @ positives.T`` (``S_ij = f_i . f_j^+``, no normalization, no temperature)::

        L = 1/N sum_i -log softmax(S_i)_i  +  l2_reg / 4 * ( mean_i ||f_i||^2 + mean_i ||f_i^+||^2 )

    The first term is ``1/N sum_i log(1 + sum_{j != i} exp(f_i.f_j^+ - f_i.f_i^+))`` of the paper, i.e. softmax
    cross-entropy with the diagonal as the targets. The regularizer's normalization (``l2_reg / 4`` times the sum
    of the two mean squared norms) is the one of TensorFlow's ``npairs_loss`` used with the paper.

    Args:
        anchors, positives: ``(N, D)``.  l2_reg: the regularization weight ``lambda``.

    Returns:
        0-d tensor.
    """
    logits = anchors @ positives.T
    targets = torch.arange(anchors.shape[0], device=anchors.device)
    ce = F.cross_entropy(logits, targets)
    reg = (anchors * anchors).sum(dim=1).mean() + (positives * positives).sum(dim=1).mean()
    return ce + 0.25 * l2_reg * reg


# ------------------------------------------------------------------------------------------------------ miners
def batch_all_triplets(labels: torch.Tensor) -> torch.Tensor:
    """Every valid triplet of a batch: ``(T, 3)`` int64 rows ``(anchor, positive, negative)``.

    Valid: ``labels[a] == labels[p]``, ``a != p``, ``labels[n] != labels[a]``. Rows in lexicographic order (what
    ``torch.nonzero`` of an ``(N, N, N)`` mask gives); ``(0, 3)`` when there is none.
    """
    pos, neg = _label_masks(labels)
    return torch.nonzero(pos[:, :, None] & neg[:, None, :])


def batch_hard_triplets(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Batch-hard mining (Hermans, Beyer & Leibe 2017): for each anchor its farthest positive and nearest negative.

    Args:
        dist: ``(N, N)`` distances.  labels: ``(N,)``.

    Returns:
        ``(M, 3)`` int64 rows ``(a, hardest positive, hardest negative)``, one per anchor that has at least one
        positive and one negative, in increasing anchor order. Ties go to the smallest index.
    """
    pos, neg = _label_masks(labels)
    valid = pos.any(dim=1) & neg.any(dim=1)
    with torch.no_grad():
        hardest_pos = dist.masked_fill(~pos, float("-inf")).argmax(dim=1)
        hardest_neg = dist.masked_fill(~neg, float("inf")).argmin(dim=1)
    anchors = torch.arange(dist.shape[0], device=dist.device)
    return torch.stack([anchors, hardest_pos, hardest_neg], dim=1)[valid]


def semi_hard_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Semi-hard triplets (Schroff et al., FaceNet 2015): negatives farther than the positive but inside the margin.

    All valid triplets with ``D_ap < D_an < D_ap + margin`` (strict), as ``(T, 3)`` int64 rows in lexicographic
    order. They have a positive loss but do not pull towards the collapsed solution hard negatives can cause.
    """
    pos, neg = _label_masks(labels)
    d_ap = dist[:, :, None]
    d_an = dist[:, None, :]
    mask = pos[:, :, None] & neg[:, None, :] & (d_an > d_ap) & (d_an < d_ap + margin)
    return torch.nonzero(mask)


# -------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def recall_at_k(embeddings: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Recall@k for retrieval: the fraction of queries whose ``k`` nearest *other* samples contain one of its class.

    Every sample is a query against all the others (itself excluded), Euclidean distance. Queries whose class has
    no other member can never succeed and still count in the denominator. ``k`` larger than ``N - 1`` is
    clipped to ``N - 1``.

    Returns:
        A Python float in ``[0, 1]``.
    """
    n = embeddings.shape[0]
    k = min(int(k), n - 1)
    if k <= 0:
        return 0.0
    dist = pairwise_distances(embeddings)
    dist.fill_diagonal_(float("inf"))
    nearest = dist.topk(k, dim=1, largest=False).indices
    labels = labels.reshape(-1)
    hit = (labels[nearest] == labels[:, None]).any(dim=1)
    return int(hit.sum().item()) / n


# ------------------------------------------------------------------------------------------------ known mistakes
# Typical wrong answers with the graded functions' signatures (not in ``__all__``). The grader runs them on a
# wrong answer's inputs to name the mistake (``Question.mistakes``); the mutant corpus grades them too.


def pairwise_distances_always_squared(E, squared=False):
    """Squared distances whatever ``squared`` says."""
    sq = (E.unsqueeze(1) - E.unsqueeze(0)).pow(2).sum(-1)
    return sq


def contrastive_y_flipped(x1, x2, y, margin=1.0):
    """y = 1 read as 'similar' (Hadsell et al.: y = 0 similar, 1 dissimilar)."""
    d = (x1 - x2).pow(2).sum(1).sqrt()
    y = y.float()
    return (y * 0.5 * d ** 2 + (1 - y) * 0.5 * F.relu(margin - d) ** 2).mean()


def contrastive_squared_distance(x1, x2, y, margin=1.0):
    """The squared distance used where the distance D belongs (also inside the hinge)."""
    sq = (x1 - x2).pow(2).sum(1)
    y = y.float()
    return ((1 - y) * 0.5 * sq + y * 0.5 * F.relu(margin - sq) ** 2).mean()


def triplet_squared_distances(anchor, positive, negative, margin=1.0):
    """Squared distances in the hinge; the lecture's triplet loss uses plain Euclidean distances."""
    ap = (anchor - positive).pow(2).sum(1)
    an = (anchor - negative).pow(2).sum(1)
    return F.relu(ap - an + margin).mean()
