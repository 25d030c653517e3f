"""The BERT click model in the EVAL harness: retrieval of a few candidates, then re-ranking with the
same TorchScript artifact (`model.pt`) that Triton hosts, built by the same worker code."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.domain import Event
from evaluation.baselines import CoOccurrence, History, Popularity, RepeatPopularity
from evaluation.protocol import Case, EventArrays
from shoptext.text import ItemText, history_from_events, item_text, user_text
from shoptext.tokenizer import encode_pairs

logger = logging.getLogger(__name__)


def train_frozen_model(ev: EventArrays, items: pd.DataFrame, until_ts: int, out_dir: Path, steps: int, batch_size: int, seed: int = 0) -> tuple[Path, float]:
    """Version 1 as the worker makes it (pretrained MiniLM + click head, fine-tuned on the newest
    purchases before `until_ts`), published into a model repository under `out_dir`."""
    from core.model_repository import ModelRepository
    from core.settings import Settings
    from rankers import get_ranker
    from rankers.cross_encoder.fine_tune import build_examples
    from rankers.cross_encoder.training import train_candidate
    from workers.publishing import publish

    started = time.perf_counter()
    catalogue = catalogue_text(items)
    end = int(np.searchsorted(ev.ts, until_ts, side="left"))
    events = [Event(str(p), str(ev.user_ids[u]), str(ev.item_ids[i]), "purchase", float(t))
              for p, (u, i, t) in enumerate(zip(ev.user[:end], ev.item[:end], ev.ts[:end]))]
    positives = max(1, steps * batch_size // 3)
    examples = build_examples(events, catalogue, negatives_per_positive=2, max_positives=positives, seed=seed)
    settings = Settings(data_dir=out_dir, model_repository=out_dir / "triton_models")
    shutil.rmtree(settings.model_repository, ignore_errors=True)  # each run measures its own version 1
    ranker = get_ranker("cross-encoder")
    repo = ModelRepository(settings.model_repository, ranker.model_name)
    candidate = train_candidate(settings, repo, parent=None, examples=examples, data_window=(float(ev.ts[0]), float(until_ts)),
                                max_steps=steps, batch_size=batch_size, job_id=f"eval-{until_ts}", seed=seed)
    version = publish(settings, ranker, repo, candidate, f"eval-{until_ts}", load_in_triton=False)
    return settings.model_repository / "bert_click" / str(version) / "model.pt", time.perf_counter() - started


def catalogue_text(items: pd.DataFrame) -> dict[str, ItemText]:
    return {r.item_id: ItemText(r.title, r.description or "", r.category or "", float(r.price or 0.0)) for r in items.itertuples()}


class BertReranker:
    """Candidates: the shopper's own items, co-occurrence neighbours and popular items (interleaved);
    then the click model's probabilities order them."""

    name = "bert-rerank"

    def __init__(self, ev: EventArrays, history: History, items: pd.DataFrame, model_path: Path, candidates: int = 20,
                 max_length: int = 48, auc_pairs: int = 2, seed: int = 0, cooccurrence: CoOccurrence | None = None,
                 device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.ev = ev
        self.history = history
        self.repeat = RepeatPopularity(ev, history)
        self.cooc = cooccurrence or CoOccurrence(ev, history)
        self.popularity = Popularity(ev)
        catalogue = catalogue_text(items)
        self.item_text = [item_text(catalogue[str(i)]) if str(i) in catalogue else str(i) for i in ev.item_ids]
        self.titles = {str(i): catalogue[str(i)].title for i in ev.item_ids if str(i) in catalogue}
        self.device = device
        self.model = torch.jit.load(str(model_path), map_location=device).eval()
        self.n_candidates = candidates
        self.max_length = max_length
        self.auc_pairs = auc_pairs
        self.rng = np.random.default_rng(seed)
        self.auc_positive: list[tuple[str, float]] = []  # (month, score)
        self.auc_negative: list[tuple[str, float]] = []
        self.retrieval_hits: list[tuple[str, float]] = []  # (month, share of the target among candidates)
        self.scored = 0
        self._cache: dict[tuple[int, int], list[int]] = {}

    def candidates(self, case: Case) -> list[int]:
        lists = [self.repeat.own_items(case)[:10], [i for i, _ in self.cooc.scores(case).most_common(10)], self.popularity.ranked(case, self.n_candidates)]
        merged: list[int] = []
        for rank in range(max(len(source) for source in lists)):
            for source in lists:
                if rank < len(source) and source[rank] not in merged:
                    merged.append(source[rank])
        return merged[: self.n_candidates]

    def user_text(self, case: Case) -> str:
        pos = self.history.before(case)
        past = [(str(self.ev.item_ids[self.ev.item[p]]), "purchase", float(self.ev.ts[p])) for p in pos[-50:]]
        return user_text(history_from_events(past), self.titles)

    def _rank(self, case: Case) -> list[int]:
        key = (case.user, case.ts)
        if key in self._cache:
            return self._cache[key]
        cands = self.candidates(case)
        target = list(case.target)
        positives = [int(i) for i in self.rng.permutation(target)[: self.auc_pairs]]
        seen_items = np.flatnonzero(self.ev.item_first_seen < case.cutoff)
        negatives = [int(i) for i in self.rng.choice(seen_items, self.auc_pairs * 3, replace=False) if i not in case.target][: self.auc_pairs]
        to_score = cands + positives + negatives
        utext = self.user_text(case)
        enc = encode_pairs([utext] * len(to_score), [self.item_text[i] for i in to_score], self.max_length)
        with self.torch.inference_mode():
            probs = self.model(*(self.torch.from_numpy(enc[k]).to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")))[:, 0].cpu().numpy()
        self.scored += len(to_score)
        n = len(cands)
        self.auc_positive += [(case.month, float(p)) for p in probs[n : n + len(positives)]]
        self.auc_negative += [(case.month, float(p)) for p in probs[n + len(positives) :]]
        self.retrieval_hits.append((case.month, len(case.target & set(cands)) / len(case.target)))
        order = np.argsort(-probs[:n], kind="stable")
        ranked = [cands[j] for j in order]
        self._cache = {key: ranked}
        return ranked

    def ranked(self, case: Case, limit: int) -> list[int]:
        ranked = list(self._rank(case))
        if len(ranked) < limit:
            have = set(ranked)
            ranked += [i for i in self.popularity.ranked(case, limit + len(have)) if i not in have][: limit - len(ranked)]
        return ranked[:limit]
