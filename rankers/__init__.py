"""The ranker registry: one `Ranker` (rankers.base) per click model, found by the name in
RECSYS_RANKER. Scoring, the fine-tune task, the gate, publishing, rollback and the benchmarks call the
interface; only the table (core.ranker_names.RANKERS) knows which models exist. A new model is a new
folder plus one line there.

Entries are import paths, resolved on first use (Feast's online-store table works the same way), so
reading the names costs nothing and a serving process imports only its ranker's serving half.
"""
from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from core.ranker_names import RANKERS

if TYPE_CHECKING:
    from rankers.base import Ranker

__all__ = ["RANKERS", "get_ranker", "names", "ranker_for_model"]


def names() -> list[str]:
    return list(RANKERS)


@functools.cache
def get_ranker(name: str) -> "Ranker":
    """The ranker registered under `name` (or a `module:Class` path of one outside this package)."""
    path = RANKERS.get(name, name if ":" in name else "")
    if not path:
        raise KeyError(f"unknown ranker {name!r}; known: {', '.join(RANKERS)}")
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)()


def ranker_for_model(model_name: str) -> "Ranker":
    """The ranker whose Triton model is `model_name` (the model repository's folders are named so)."""
    for name in RANKERS:
        ranker = get_ranker(name)
        if ranker.model_name == model_name:
            return ranker
    raise KeyError(f"no ranker serves Triton model {model_name!r}")
