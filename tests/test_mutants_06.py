"""Wrong and correct variants of the 06_metric_embeddings functions, graded through the engine.

Each variant replaces one function of an otherwise correct submission (the reference); the whole submission is
graded question by question with the engine's own in-process path (case files -> ``calls.run`` ->
``judge.judge_case`` -> ``judge.question_result``), the one the sandboxed worker's results go through too.
A wrong variant must lose points on its own question and on no other; a correct variant must get full marks.
The harness (tests/mutant_harness.py) uses the committed case files, so the committed references are what is tested.
"""
from __future__ import annotations

import pytest

from tests.mutant_harness import Harness

ASSIGNMENT_ID = "06_metric_embeddings"
H = Harness(ASSIGNMENT_ID, "mutants_06")
M = H.mutants
globals().update(H.standard_tests(max_points=17))


def test_conceptual_mutants_already_fail_a_public_case():
    """Conventions a student can get wrong are visible in the self-check; only hard-coded sizes / counts and the
    edge-case conventions (singletons, separated clusters) need the hidden cases."""
    hidden_only = {("pairwise_distances", "always_plain"), ("pairwise_distances", "hardcoded_n"),
                   ("recall_at_k", "ignores_k"), ("recall_at_k", "majority_vote"),
                   ("recall_at_k", "skips_singletons"), ("contrastive_loss", "hardcoded_batch"),
                   ("triplet_loss", "mean_nonzero"), ("triplet_loss", "hardcoded_batch"),
                   ("batch_all_triplets", "hardcoded_classes"), ("batch_all_triplets", "hardcoded_batch"),
                   ("batch_hard_triplets", "self_counts_as_positive"),
                   ("semi_hard_triplets", "hardcoded_margin"), ("batch_all_triplet_loss", "hardcoded_classes"),
                   ("lifted_structured_loss", "mean_nonzero"), ("lifted_structured_loss", "hardcoded_pair_count"),
                   ("npair_loss", "hardcoded_batch")}
    H.check_public_cases_catch_wrong_variants(hidden_only)
