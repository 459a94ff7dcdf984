"""06_metric_embeddings: distances, Siamese / triplet / lifted-structure / N-pair losses, in-batch miners, Recall@k.

Inputs are small random embeddings drawn around class centres (so losses mix active and inactive terms), with
labels that are not always ``0..C-1``. Hidden cases change the seed, the batch size, the dimension, the number of
classes and the margin, and cover the edge cases every loss must define: one class only, singleton classes, no
positive pair at all, and duplicated embeddings (distance exactly 0, where a naive square root has no gradient).

Miners return sets of triplets in an order that is not unique, so they are graded by properties (same set of
triplets; the hardest positive / negative really is the hardest) instead of tensor equality.
"""
from __future__ import annotations

import torch

from autograder.core.spec import Assignment, Case, Mistake, Property, PropertyCheck, Question, TensorMatch

from ._inputs import gen

#: Losses are sums of a few hundred float32 terms: a relative error of 1e-4 leaves room for any correct
#: formulation (Gram-matrix or difference-based distances, float64, loops, F.pairwise_distance's eps=1e-6) and
#: still rejects every wrong convention, which changes values by far more (tests/test_mutants_06.py).
LOSS_MATCH = TensorMatch(rtol=1e-4, atol=1e-5)
#: Distances from the Gram matrix lose ~sqrt(eps) * ||e|| to cancellation where two rows (nearly) coincide.
DIST_MATCH = TensorMatch(rtol=1e-4, atol=2e-3)


def _labels(g: torch.Generator, n: int, classes: int, spread_ids: bool) -> torch.Tensor:
    """``n`` labels over ``classes`` classes, every class present when ``n >= classes``, shuffled. With
    ``spread_ids`` the class ids are distinct random values in 0..29 instead of 0..classes-1."""
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g)]
    if spread_ids:
        ids = torch.randperm(30, generator=g)[:classes]
        labels = ids[labels]
    return labels.to(torch.int64)


def _embeddings(g: torch.Generator, labels: torch.Tensor, dim: int, separation: float,
                duplicates: bool) -> torch.Tensor:
    """Points around one random centre per class; typical distances ~1 (times ``separation`` between classes).
    With ``duplicates`` one same-class pair and one different-class pair of rows are made exactly equal."""
    n = labels.shape[0]
    ids = torch.unique(labels)
    centres = torch.randn(len(ids), dim, generator=g)
    idx = torch.searchsorted(ids, labels)
    E = (separation * 0.6 * centres[idx] + 0.6 * torch.randn(n, dim, generator=g)) / dim ** 0.5
    if duplicates:
        _make_duplicates(E, labels)
    return E


def _make_duplicates(E: torch.Tensor, labels: torch.Tensor) -> None:
    n = labels.shape[0]
    same = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]]
    diff = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] != labels[j]]
    if same:
        i, j = same[len(same) // 2]
        E[j] = E[i]
    if diff:
        i, j = diff[len(diff) // 3]
        E[j] = E[i]


def _distance_matrix(E: torch.Tensor) -> torch.Tensor:
    """Accurate distances (float64, no Gram-matrix cancellation) rounded to float32; the diagonal is exactly 0."""
    E64 = E.detach().to(torch.float64)
    return torch.cdist(E64, E64, compute_mode="donot_use_mm_for_euclid_dist").to(torch.float32)


# ------------------------------------------------------------------------------------------------- builders


def build_pairwise_distances(seed: int, n: int, dim: int, squared: bool, scale: float = 1.0,
                             duplicates: bool = False) -> dict:
    g = gen(seed)
    labels = _labels(g, n, max(1, n // 3), False)
    E = scale * _embeddings(g, labels, dim, 1.0, duplicates)
    return {"E": E.requires_grad_(True), "squared": squared}


def build_recall_at_k(seed: int, n: int, dim: int, classes: int, k: int, separation: float = 1.5) -> dict:
    g = gen(seed)
    labels = _labels(g, n, classes, True)
    return {"embeddings": _embeddings(g, labels, dim, separation, False), "labels": labels, "k": k}


def build_contrastive(seed: int, n: int, dim: int, margin: float, duplicates: bool = False) -> dict:
    g = gen(seed)
    x1 = torch.randn(n, dim, generator=g) * 0.7 / dim ** 0.5
    x2 = torch.randn(n, dim, generator=g) * 0.7 / dim ** 0.5
    y = (torch.arange(n) % 2)[torch.randperm(n, generator=g)]
    x2 = torch.where((y == 0)[:, None], x1 + 0.5 * (x2 - x1), x2)         # similar pairs a bit closer
    if duplicates:                                                          # distance exactly 0, both kinds
        x2[0], y[0] = x1[0], 1
        x2[1], y[1] = x1[1], 0
    return {"x1": x1.requires_grad_(True), "x2": x2.requires_grad_(True), "y": y.to(torch.int64),
            "margin": margin}


def build_triplet(seed: int, n: int, dim: int, margin: float, duplicates: bool = False) -> dict:
    g = gen(seed)
    s = 0.7 / dim ** 0.5
    anchor = torch.randn(n, dim, generator=g) * s
    positive = anchor + 0.8 * torch.randn(n, dim, generator=g) * s
    negative = torch.randn(n, dim, generator=g) * s
    if duplicates:
        positive[0] = anchor[0]
        negative[1] = anchor[1]
        positive[2] = anchor[2]
        negative[2] = anchor[2]
    return {"anchor": anchor.requires_grad_(True), "positive": positive.requires_grad_(True),
            "negative": negative.requires_grad_(True), "margin": margin}


def build_labels(seed: int, n: int, classes: int, spread_ids: bool = False) -> dict:
    g = gen(seed)
    return {"labels": _labels(g, n, classes, spread_ids)}


def build_dist_labels(seed: int, n: int, dim: int, classes: int, spread_ids: bool = False,
                      duplicates: bool = False) -> dict:
    g = gen(seed)
    labels = _labels(g, n, classes, spread_ids)
    E = _embeddings(g, labels, dim, 1.0, duplicates)
    return {"dist": _distance_matrix(E), "labels": labels}


def build_dist_labels_margin(seed: int, n: int, dim: int, classes: int, margin: float,
                             spread_ids: bool = False) -> dict:
    out = build_dist_labels(seed, n, dim, classes, spread_ids)
    out["margin"] = margin
    return out


def build_batch_loss(seed: int, n: int, dim: int, classes: int, margin: float, separation: float = 1.0,
                     spread_ids: bool = False, duplicates: bool = False) -> dict:
    g = gen(seed)
    labels = _labels(g, n, classes, spread_ids)
    E = _embeddings(g, labels, dim, separation, duplicates)
    return {"embeddings": E.requires_grad_(True), "labels": labels, "margin": margin}


def build_npair(seed: int, n: int, dim: int, l2_reg: float) -> dict:
    g = gen(seed)
    anchors = torch.randn(n, dim, generator=g)
    positives = 0.7 * anchors + 0.7 * torch.randn(n, dim, generator=g)
    return {"anchors": anchors.requires_grad_(True), "positives": positives.requires_grad_(True),
            "l2_reg": l2_reg}


# ------------------------------------------------------------------------------------------- property checks


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _rows(t: torch.Tensor) -> list[tuple[int, ...]]:
    rows = t.reshape(-1, 3).tolist()
    if _is_integer(t):
        return sorted(map(tuple, rows))  # tolist() gives ints already
    return sorted(tuple(int(v) for v in r) for r in rows)


def _integer_indices(inputs, got, expected):
    out = got["out"]
    if not _is_integer(out):
        return False, f"indices must be an integer tensor (e.g. int64), got {out.dtype}"
    if out.dim() != 2 or out.shape[1] != 3:
        return False, f"expected a (T, 3) tensor of (anchor, positive, negative) rows, got {tuple(out.shape)}"
    return True, ""


def _same_triplets(inputs, got, expected):
    mine, ref = _rows(got["out"]), _rows(expected["out"])
    if len(set(mine)) != len(mine):
        return False, "some triplets appear more than once"
    missing = sorted(set(ref) - set(mine))
    extra = sorted(set(mine) - set(ref))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} valid triplet(s) missing, e.g. {missing[0]}")
        if extra:
            parts.append(f"{len(extra)} triplet(s) that should not be there, e.g. {extra[0]}")
        return False, "; ".join(parts)
    return True, ""


def _lists(inputs):
    """Labels as a list and distances as a list of float lists (the checks below are plain Python loops)."""
    return [int(v) for v in inputs["labels"].reshape(-1).tolist()], inputs["dist"].to(torch.float64).tolist()


def _semi_hard_band(inputs, got, expected):
    """Every triplet strictly inside ``D_ap < D_an < D_ap + margin`` is there and nothing outside it (within
    1e-6 of either bound both answers are accepted)."""
    lab, dist = _lists(inputs)
    margin = float(inputs["margin"])
    tol = 1e-6
    n = len(lab)
    mine = set(_rows(got["out"]))
    for a, p, q in mine:
        if not (0 <= a < n and 0 <= p < n and 0 <= q < n):
            return False, f"index out of range in triplet {(a, p, q)}"
        if a == p or lab[a] != lab[p] or lab[q] == lab[a]:
            return False, f"{(a, p, q)} is not a valid (anchor, positive, negative) triplet"
        dap, dan = dist[a][p], dist[a][q]
        if not (dap - tol < dan < dap + margin + tol):
            return False, f"{(a, p, q)} has D_ap={dap:.4g}, D_an={dan:.4g}: not semi-hard for margin {margin:g}"
    for a in range(n):
        for p in range(n):
            if p == a or lab[p] != lab[a]:
                continue
            for q in range(n):
                if lab[q] != lab[a] and dist[a][p] + tol < dist[a][q] < dist[a][p] + margin - tol \
                        and (a, p, q) not in mine:
                    return False, f"semi-hard triplet {(a, p, q)} is missing"
    return True, ""


def _batch_hard_rows(inputs, got, expected):
    lab, dist = _lists(inputs)
    n = len(lab)
    rows = [tuple(int(v) for v in r) for r in got["out"].reshape(-1, 3).tolist()]
    anchors = sorted(r[0] for r in rows)
    valid = [a for a in range(n)
             if any(p != a and lab[p] == lab[a] for p in range(n)) and any(lab[q] != lab[a] for q in range(n))]
    if anchors != valid:
        return False, (f"expected one row per anchor that has a positive and a negative ({len(valid)} anchors), "
                       f"got anchors {anchors[:8]}{'...' if len(anchors) > 8 else ''}")
    tol = 1e-6
    for a, p, q in rows:
        if not (0 <= p < n and 0 <= q < n) or p == a or lab[p] != lab[a] or lab[q] == lab[a]:
            return False, f"row {(a, p, q)} is not a valid (anchor, positive, negative) triplet"
        far_pos = max(dist[a][j] for j in range(n) if j != a and lab[j] == lab[a])
        if dist[a][p] < far_pos - tol:
            return False, (f"anchor {a}: positive {p} at distance {dist[a][p]:.4g} is not the hardest "
                           f"(farthest) positive, which is at {far_pos:.4g}")
        near_neg = min(dist[a][j] for j in range(n) if lab[j] != lab[a])
        if dist[a][q] > near_neg + tol:
            return False, (f"anchor {a}: negative {q} at distance {dist[a][q]:.4g} is not the hardest "
                           f"(nearest) negative, which is at {near_neg:.4g}")
    return True, ""


TRIPLET_SET = PropertyCheck(properties=[Property("integer (T, 3) indices", _integer_indices),
                                        Property("same set of triplets", _same_triplets)])
BATCH_HARD = PropertyCheck(properties=[Property("integer (T, 3) indices", _integer_indices),
                                       Property("hardest positive and negative per anchor", _batch_hard_rows)])
SEMI_HARD = PropertyCheck(properties=[Property("integer (T, 3) indices", _integer_indices),
                                      Property("exactly the semi-hard triplets", _semi_hard_band)])


# ------------------------------------------------------------------------------------------------ questions

PAIRWISE = Question(
    id="pairwise_distances", points=2, build=build_pairwise_distances,
    mistakes=[Mistake("always squared", "you return squared distances even when squared=False; take the square root (with a clamp so duplicate rows keep a finite gradient)",
                      "utils.reference.metric_learning:pairwise_distances_always_squared")],
    description="(N, N) Euclidean (or squared) distances, exact zero diagonal, safe sqrt",
    cases=[Case("public_n6_d4", seed=0, public=True, params={"n": 6, "dim": 4, "squared": False}),
           Case("public_n1", seed=601, params={"n": 1, "dim": 3, "squared": False}, weight=0.5, public=True),
           Case("hidden_squared_n9_d3", seed=602, params={"n": 9, "dim": 3, "squared": True}),
           Case("hidden_n15_d16_duplicates", seed=603,
                params={"n": 15, "dim": 16, "squared": False, "duplicates": True}),
           Case("hidden_n7_d2_large", seed=604, params={"n": 7, "dim": 2, "squared": False, "scale": 6.0}),
           Case("hidden_squared_n12_d8_duplicates", seed=605,
                params={"n": 12, "dim": 8, "squared": True, "duplicates": True}, weight=0.5)],
    compare=DIST_MATCH)

RECALL = Question(
    id="recall_at_k", points=2, build=build_recall_at_k,
    description="fraction of queries with a same-label sample among their k nearest other samples",
    cases=[Case("public_n20_k1", seed=0, public=True, params={"n": 20, "dim": 4, "classes": 4, "k": 1}),
           Case("public_n31_k1", seed=611, params={"n": 31, "dim": 6, "classes": 7, "k": 1, "separation": 1.0}, public=True),
           Case("hidden_n40_k3", seed=612, params={"n": 40, "dim": 3, "classes": 10, "k": 3}),
           Case("hidden_n25_k5_singletons", seed=613,
                params={"n": 25, "dim": 5, "classes": 18, "k": 5, "separation": 0.7}),
           Case("hidden_n12_k2", seed=614, params={"n": 12, "dim": 2, "classes": 3, "k": 2, "separation": 0.5})],
    compare=TensorMatch(rtol=0.0, atol=1e-6, check_dtype=False))

CONTRASTIVE = Question(
    id="contrastive_loss", points=2, build=build_contrastive,
    mistakes=[Mistake("y flipped", "you read y = 1 as similar; in Hadsell et al.'s loss y = 0 means similar and y = 1 dissimilar",
                      "utils.reference.metric_learning:contrastive_y_flipped"),
              Mistake("squared distance", "you used the squared distance where D belongs; D is the plain Euclidean distance (also inside the hinge)",
                      "utils.reference.metric_learning:contrastive_squared_distance")],
    description="Hadsell et al.: Y=0 similar, Y=1 dissimilar, plain Euclidean D, mean over pairs",
    cases=[Case("public_n8_d4", seed=0, public=True, params={"n": 8, "dim": 4, "margin": 1.0}),
           Case("public_n13_d6_m05", seed=621, params={"n": 13, "dim": 6, "margin": 0.5}, public=True),
           Case("hidden_n5_d2_m2_zero_distance", seed=622,
                params={"n": 5, "dim": 2, "margin": 2.0, "duplicates": True}),
           Case("hidden_n24_d16", seed=623, params={"n": 24, "dim": 16, "margin": 1.0}),
           Case("hidden_n10_d3_m08", seed=624, params={"n": 10, "dim": 3, "margin": 0.8})],
    compare=LOSS_MATCH)

TRIPLET = Question(
    id="triplet_loss", points=1, build=build_triplet,
    mistakes=[Mistake("squared distances", "you used squared distances; the lecture's triplet loss uses plain Euclidean distances",
                      "utils.reference.metric_learning:triplet_squared_distances")],
    description="mean of max(0, ||a-p|| - ||a-n|| + margin), plain Euclidean distances",
    cases=[Case("public_n6_d4", seed=0, public=True, params={"n": 6, "dim": 4, "margin": 1.0}),
           Case("public_n11_d8_m03", seed=631, params={"n": 11, "dim": 8, "margin": 0.3}, public=True),
           Case("hidden_n3_d2_m2", seed=632, params={"n": 3, "dim": 2, "margin": 2.0}),
           Case("hidden_n25_d16_duplicates", seed=633,
                params={"n": 25, "dim": 16, "margin": 0.5, "duplicates": True})],
    compare=LOSS_MATCH)

BATCH_ALL = Question(
    id="batch_all_triplets", points=1, build=build_labels,
    description="every (anchor, positive, negative) index triple of the batch",
    cases=[Case("public_n8_c3", seed=0, public=True, params={"n": 8, "classes": 3}),
           Case("public_n13_c5_ids", seed=641, params={"n": 13, "classes": 5, "spread_ids": True}, public=True),
           Case("hidden_n16_c4", seed=642, params={"n": 16, "classes": 4}),
           Case("hidden_n6_singletons", seed=643, params={"n": 6, "classes": 6}, weight=0.5),
           Case("hidden_n5_one_class", seed=644, params={"n": 5, "classes": 1}, weight=0.5)],
    compare=TRIPLET_SET)

BATCH_HARD = Question(
    id="batch_hard_triplets", points=1, build=build_dist_labels,
    description="per anchor with a positive and a negative: farthest positive, nearest negative",
    cases=[Case("public_n8_c3", seed=0, public=True, params={"n": 8, "dim": 4, "classes": 3}),
           Case("public_n14_c4_ids", seed=651, params={"n": 14, "dim": 6, "classes": 4, "spread_ids": True}, public=True),
           Case("hidden_n9_c7_singletons", seed=652, params={"n": 9, "dim": 3, "classes": 7}),
           Case("hidden_n20_c5_duplicates", seed=653,
                params={"n": 20, "dim": 8, "classes": 5, "duplicates": True}),
           Case("hidden_n5_one_class", seed=654, params={"n": 5, "dim": 2, "classes": 1}, weight=0.5)],
    compare=BATCH_HARD)

SEMI_HARD = Question(
    id="semi_hard_triplets", points=1, build=build_dist_labels_margin,
    description="all valid triplets with D_ap < D_an < D_ap + margin",
    cases=[Case("public_n8_c3", seed=0, public=True, params={"n": 8, "dim": 4, "classes": 3, "margin": 0.5}),
           Case("public_n14_c4_m03", seed=661,
                params={"n": 14, "dim": 6, "classes": 4, "margin": 0.3, "spread_ids": True}, public=True),
           Case("hidden_n11_c3_m1", seed=662, params={"n": 11, "dim": 3, "classes": 3, "margin": 1.0}),
           Case("hidden_n18_c6_m02", seed=663, params={"n": 18, "dim": 8, "classes": 6, "margin": 0.2})],
    compare=SEMI_HARD)

BATCH_ALL_LOSS = Question(
    id="batch_all_triplet_loss", calls=("pairwise_distances",), points=1, build=build_batch_loss,
    description="triplet hinge averaged over ALL valid triplets of the batch (zeros included)",
    cases=[Case("public_n8_c3", seed=0, public=True, params={"n": 8, "dim": 4, "classes": 3, "margin": 1.0}),
           Case("public_n13_c5_ids", seed=671,
                params={"n": 13, "dim": 6, "classes": 5, "margin": 0.5, "spread_ids": True}, public=True),
           Case("hidden_n20_c4_separated", seed=672,
                params={"n": 20, "dim": 8, "classes": 4, "margin": 0.3, "separation": 3.0}),
           Case("hidden_n12_c4_duplicates", seed=673,
                params={"n": 12, "dim": 5, "classes": 4, "margin": 1.0, "duplicates": True}),
           Case("hidden_n6_singletons", seed=674, params={"n": 6, "dim": 3, "classes": 6, "margin": 1.0},
                weight=0.5)],
    compare=LOSS_MATCH)

LIFTED = Question(
    id="lifted_structured_loss", calls=("pairwise_distances",), points=3, build=build_batch_loss,
    description="Song et al. 2016 smooth loss, log-sum-exp over both ends' negatives, 1/(2|P|) over unordered pairs",
    cases=[Case("public_n10_c3", seed=0, public=True, params={"n": 10, "dim": 4, "classes": 3, "margin": 1.0}),
           Case("public_n16_c4_d8", seed=681, params={"n": 16, "dim": 8, "classes": 4, "margin": 1.0}, public=True),
           Case("hidden_n7_c5_singletons_m05", seed=682,
                params={"n": 7, "dim": 3, "classes": 5, "margin": 0.5, "spread_ids": True}),
           Case("hidden_n12_c4_duplicates", seed=683,
                params={"n": 12, "dim": 5, "classes": 4, "margin": 1.0, "duplicates": True}),
           Case("hidden_n24_c6_separated", seed=684,
                params={"n": 24, "dim": 6, "classes": 6, "margin": 0.5, "separation": 8.0}),
           Case("hidden_n32_c8_m2", seed=685, params={"n": 32, "dim": 16, "classes": 8, "margin": 2.0}),
           Case("hidden_n6_one_class", seed=686, params={"n": 6, "dim": 4, "classes": 1, "margin": 1.0},
                weight=0.5),
           Case("hidden_n5_no_positive_pair", seed=687, params={"n": 5, "dim": 4, "classes": 5, "margin": 1.0},
                weight=0.5)],
    compare=LOSS_MATCH)

LIFTED_HARD = Question(
    id="lifted_hard_triplet_loss", calls=("pairwise_distances",), points=1, build=build_batch_loss,
    description="per unordered positive pair, the negative nearest to either end, triplet hinge, mean over pairs",
    cases=[Case("public_n10_c3", seed=0, public=True, params={"n": 10, "dim": 4, "classes": 3, "margin": 1.0}),
           Case("public_n16_c4_m03", seed=691, params={"n": 16, "dim": 8, "classes": 4, "margin": 0.3}, public=True),
           Case("hidden_n12_c4_duplicates", seed=692,
                params={"n": 12, "dim": 5, "classes": 4, "margin": 0.5, "duplicates": True}),
           Case("hidden_n9_c6_ids", seed=693,
                params={"n": 9, "dim": 3, "classes": 6, "margin": 1.0, "spread_ids": True}),
           Case("hidden_n6_one_class", seed=694, params={"n": 6, "dim": 4, "classes": 1, "margin": 1.0},
                weight=0.5)],
    compare=LOSS_MATCH)

NPAIR = Question(
    id="npair_loss", points=2, build=build_npair,
    description="softmax cross-entropy on anchors @ positives.T with diagonal targets + l2_reg/4 (mean |a|^2 + mean |p|^2)",
    cases=[Case("public_n5_d4", seed=0, public=True, params={"n": 5, "dim": 4, "l2_reg": 0.05}),
           Case("public_n9_d8", seed=701, params={"n": 9, "dim": 8, "l2_reg": 0.002}, public=True),
           Case("hidden_n2_d3_no_reg", seed=702, params={"n": 2, "dim": 3, "l2_reg": 0.0}),
           Case("hidden_n16_d6_strong", seed=703, params={"n": 16, "dim": 6, "l2_reg": 0.5}),
           Case("hidden_n1_d5", seed=704, params={"n": 1, "dim": 5, "l2_reg": 0.1}, weight=0.5)],
    compare=LOSS_MATCH)

QUESTIONS = [PAIRWISE, RECALL, CONTRASTIVE, TRIPLET, BATCH_ALL, BATCH_HARD, SEMI_HARD, BATCH_ALL_LOSS, LIFTED,
             LIFTED_HARD, NPAIR]
ASSIGNMENT = Assignment(id="06_metric_embeddings", questions=QUESTIONS)
