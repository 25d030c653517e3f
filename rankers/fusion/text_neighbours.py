"""Each catalogue item's nearest items by text embedding (the item tower's cosine similarity): the
serving version's "similar items" table, written into its folder at publish and pushed to the online
store, so the request path reads neighbours instead of searching embeddings. Numpy only."""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

NEIGHBOURS = 50
MAX_ITEMS = 200_000  # an exact all-pairs search costs n² · 384 multiply-adds; beyond this it needs an ANN index
CHUNK = 2048


def text_neighbours(item_ids: Sequence[str], vectors: np.ndarray, neighbours: int = NEIGHBOURS) -> dict[str, list[tuple[str, float]]]:
    """{item: [(other item, cosine), ...] best first} for L2-normalised `vectors` (one row per item);
    an item never lists itself, nor another item with the same embedding (the same text)."""
    n = len(item_ids)
    if n < 2:
        return {}
    if n > MAX_ITEMS:
        logger.warning("similar items skipped: %d items is more than the exact search's %d", n, MAX_ITEMS)
        return {}
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    top = min(neighbours, n - 1)
    out: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, n, CHUNK):
        sims = matrix[start : start + CHUNK] @ matrix.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        sims[sims > 0.9999] = -np.inf  # identical texts are the same product listed twice, not a suggestion
        best = np.argpartition(-sims, top - 1, axis=1)[:, :top]
        for r, cols in enumerate(best):
            order = cols[np.argsort(-sims[r, cols], kind="stable")]
            out[item_ids[start + r]] = [(item_ids[c], round(float(sims[r, c]), 5)) for c in order if np.isfinite(sims[r, c])]
    return out
