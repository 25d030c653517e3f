"""Ranking metrics, once, for the promotion gates and the benchmarks: HR@K, Recall@K and NDCG@K with
binary gains (ideal DCG over min(K, |target|)), NDCG@K of a scored list, and AUC."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def hit_recall_ndcg(ranked: Sequence[int], target: frozenset[int] | set[int], k: int = 10) -> tuple[float, float, float]:
    if not target:
        return 0.0, 0.0, 0.0
    top = list(ranked[:k])
    gains = [1.0 if i in target else 0.0 for i in top]
    hits = sum(gains)
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(target))))
    return float(hits > 0), hits / len(target), dcg / idcg


def list_ndcg(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one scored candidate list against its binary labels (ties keep list order)."""
    order = np.argsort(-scores, kind="stable")
    ranked = [int(i) for i in order]
    return hit_recall_ndcg(ranked, {int(i) for i in np.flatnonzero(labels > 0)}, k)[2]


def auc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float:
    """Probability that a positive outscores a negative (ties count half)."""
    pos = np.asarray(positive_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    ranks = _average_ranks(scores)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks
