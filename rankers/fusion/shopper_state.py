"""The fusion ranker's shopper state: how a shopper's interest history becomes the shopper tower's input.

The shopper vector is the recency-weighted mean of the item-tower embeddings of their newest
`STATE_HISTORY` interest events (weights halve every `HALF_LIFE_DAYS`), L2-normalised: the vector the
research harness validated (docs/quality.md, +0.0023 NDCG@10 on the test months over the shopper's
text through MiniLM), computed without any transformer pass. Because every weight shifts by the same
factor as time passes, the normalised vector does not change between a shopper's events: it is
computed when their events arrive (ranking.shopper_states) and stored in the online store, keyed by
version, and Rank only reads it.

This module is the one source of truth for the history → (items, weights) step, torch-free: the
state writer, Rank's inline fallback and the training lists (rankers.fusion.training) all call it;
the weighted mean itself is rankers.fusion.network.shopper_from_items, inside the served TorchScript
file. A different encoder (a sequence model over the same item embeddings) replaces `StateEncoder`
and the artifact's `shopper` method; the request path reads a vector either way.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from shoptext.text import ITEM_TEXT_LENGTH
from shoptext.tokenizer import encode_catalogue_texts

STATE_HISTORY = 50  # newest interest events that make the shopper vector
HALF_LIFE_DAYS = 30.0
DAY = 86400.0
STATE_DIM = 384  # the item tower's width (rankers.fusion.network.EMBEDDING_DIM)

# How an answer's shopper vector was obtained (RankResponse.shopper_state).
STORED = "stored"  # read from the online store: no shopper-side computation on the request path
INLINE = "inline"  # no current state yet: computed in the same Triton request from the history
COLD_START = "cold_start"  # no usable history: the zero vector (what training uses for such shoppers)


def history_weights(interests: Sequence[tuple[str, float]], known: Mapping[str, object] | None = None) -> tuple[list[str], np.ndarray]:
    """(item ids, weights) of the newest STATE_HISTORY interest events (`interests` newest first, as
    the online store and the list builder hold them). Ages count from the newest event, so the weights
    are the same whenever they are computed (the mean is normalised). Items not in `known` (deleted,
    or never in the catalogue) are left out."""
    picked = [(i, float(t)) for i, t in interests[:STATE_HISTORY] if known is None or i in known]
    if not picked:
        return [], np.zeros(0, dtype=np.float32)
    newest = max(t for _, t in picked)
    ages = np.asarray([(newest - t) / DAY for _, t in picked], dtype=np.float64)
    return [i for i, _ in picked], np.exp2(-ages / HALF_LIFE_DAYS).astype(np.float32)


def fingerprint(interests: Sequence[tuple[str, float]]) -> str:
    """What a stored state was computed from: a hash of the newest STATE_HISTORY (item, time) pairs. Rank
    uses a stored state only when its fingerprint matches the shopper's history as read now."""
    text = "\n".join(f"{i}\t{float(t):.3f}" for i, t in interests[:STATE_HISTORY])
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class History:
    """One shopper's history as the encoder reads it: item ids and their weights."""

    items: list[str]
    weights: np.ndarray


def history_inputs(histories: Sequence[History], item_texts: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The Triton inputs that make `histories`' shopper vectors (one row each): every distinct item's
    text tokens once, and per shopper the rows of their items and the weights (-1 / 0 pad)."""
    distinct = list(dict.fromkeys(i for h in histories for i in h.items))
    row = {item: k for k, item in enumerate(distinct)}
    width = max((len(h.items) for h in histories), default=0) or 1
    index = np.full((len(histories), width), -1, dtype=np.int64)
    weights = np.zeros((len(histories), width), dtype=np.float32)
    for b, h in enumerate(histories):
        index[b, : len(h.items)] = [row[i] for i in h.items]
        weights[b, : len(h.items)] = h.weights
    if distinct:
        tokens = encode_catalogue_texts([item_texts[i] for i in distinct], ITEM_TEXT_LENGTH)
    else:  # no item at all: one padding row, so every tensor has a shape Triton accepts
        tokens = {"input_ids": np.zeros((1, 1), dtype=np.int64), "attention_mask": np.zeros((1, 1), dtype=np.int64)}
    return {"history_input_ids": tokens["input_ids"], "history_attention_mask": tokens["attention_mask"],
            "history_index": index, "history_weights": weights}


class StateEncoder:
    """The serving side of the shopper state (torch-free): which history it reads, its fingerprint, and
    the Triton request that encodes many shoppers at once."""

    name = "item_mean"  # stored with each state, so a different encoder's states are never mixed in

    def history(self, interests: Sequence[tuple[str, float]], known: Mapping[str, object]) -> History:
        items, weights = history_weights(interests, known)
        return History(items, weights)

    def fingerprint(self, interests: Sequence[tuple[str, float]]) -> str:
        return f"{self.name}:{fingerprint(interests)}"

    def needed_items(self, interests: Sequence[tuple[str, float]]) -> list[str]:
        """The items whose texts an encoding of this history needs."""
        return list(dict.fromkeys(i for i, _ in interests[:STATE_HISTORY]))

    def inputs(self, histories: Sequence[History], item_texts: Mapping[str, str]) -> dict[str, np.ndarray]:
        return history_inputs(histories, item_texts)
