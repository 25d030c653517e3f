"""Train and publish the fusion click model (clickmodel.fusion) from the event log: the bootstrap of
version 1 and each fine-tune. Torch is imported lazily, only in processes that train.

Training data are ranking lists: for each basket (a shopper's interest events at one timestamp) of a
shopper with earlier history, the candidates retrieval would have offered at that moment (their own
items, co-purchase neighbours, popular items), the signals of each, and which were in the basket.
The co-purchase table the lists read is fitted on baskets before the first list (no peeking at the
basket being predicted); after training it is refitted on every basket for serving. Replay lists are
a uniform sample of older baskets rebuilt from the log, which keeps every event, so no separate
buffer is needed. The gate compares listwise NDCG@10 of candidate and serving version on the newest
held-out lists and on replay lists.
"""
from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from clickmodel.co_purchase import RECENT_ITEMS, co_purchase_scores, fit_neighbours
from clickmodel.signals import DAY, Purchase, candidate_signals, merge_candidates
from clickmodel.text import INTEREST_EVENTS, ItemText, history_from_events, item_text, user_text
from clickmodel.training import Event
from services.config import Settings
from services.eventlog import EventLog
from services.model_repository import Lineage, ModelRepository
from services.triton_config import FUSION_MODEL_NAME

logger = logging.getLogger(__name__)

CANDIDATES = 100
GATE_LISTS = 200
ITEM_TABLE = "item_embeddings.pt"  # read by triton_models/fusion_click/model.py at load


@dataclass
class ListSpec:
    """A ranking list before embedding: whose, when, texts, candidate ids, signals, labels."""

    user_id: str
    timestamp: float
    user_text: str
    candidates: list[str]
    signals: np.ndarray
    labels: np.ndarray


def baskets_of(events: Sequence[Event]) -> list[tuple[str, float, list[str]]]:
    """(user, timestamp, items) of each basket of interest events, in time order."""
    grouped: dict[tuple[str, float], list[str]] = defaultdict(list)
    for e in events:
        if e.event_type in INTEREST_EVENTS:
            grouped[(e.user_id, e.timestamp)].append(e.item_id)
    return [(u, t, list(dict.fromkeys(items))) for (u, t), items in sorted(grouped.items(), key=lambda x: (x[0][1], x[0][0]))]


def build_lists(events: Sequence[Event], catalogue: dict[str, ItemText], chosen: set[tuple[str, float]],
                table: dict, size: int = CANDIDATES) -> list[ListSpec]:
    """Ranking lists for the `chosen` baskets (user, timestamp), with the state of the shop just
    before each: the shopper's history, 30/7-day popularity, co-purchase scores from `table`."""
    interest = sorted((e for e in events if e.event_type in INTEREST_EVENTS and e.item_id in catalogue),
                      key=lambda e: (e.timestamp, e.event_id))
    titles = {i: it.title for i, it in catalogue.items()}
    history: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    pop30: Counter = Counter()
    pop7: Counter = Counter()
    lo30 = lo7 = 0
    lists: list[ListSpec] = []
    k = 0
    while k < len(interest):
        t = interest[k].timestamp
        while lo30 < k and interest[lo30].timestamp < t - 31 * DAY:  # windows end just before t
            pop30[interest[lo30].item_id] -= 1
            lo30 += 1
        while lo7 < k and interest[lo7].timestamp < t - 8 * DAY:
            pop7[interest[lo7].item_id] -= 1
            lo7 += 1
        end = k
        while end < len(interest) and interest[end].timestamp == t:
            end += 1
        same_time = interest[k:end]
        for user in dict.fromkeys(e.user_id for e in same_time):
            past = history[user]
            if (user, t) not in chosen or not past:
                continue
            counts = Counter(i for i, _, _ in past)
            own = [i for i, _ in counts.most_common()]
            recent = [i for i, _, _ in reversed(past[-RECENT_ITEMS:])]
            co = co_purchase_scores(recent, table)
            popular = [i for i, n in pop30.most_common(size) if n > 0]
            candidates = merge_candidates(own, [i for i, _ in co.most_common(size)], popular, size)
            bought = {e.item_id for e in same_time if e.user_id == user}
            signals = candidate_signals([Purchase(i, ts, ts) for i, _, ts in past], t, candidates, pop30, pop7, co)
            labels = np.asarray([1.0 if c in bought else 0.0 for c in candidates], dtype=np.float32)
            text = user_text(history_from_events(past[-50:]), titles)
            lists.append(ListSpec(user, t, text, candidates, signals, labels))
        for e in same_time:
            history[e.user_id].append((e.item_id, e.event_type, e.timestamp))
            pop30[e.item_id] += 1
            pop7[e.item_id] += 1
        k = end
    return lists


def embed_lists(encoder, specs: Sequence[ListSpec], catalogue: dict[str, ItemText]):  # type: ignore[no-untyped-def]
    """RankingLists: the shopper texts and every candidate's item text through `encoder`."""
    from clickmodel.fusion import ITEM_TEXT_LENGTH, USER_TEXT_LENGTH, RankingList, embed_texts

    items = sorted({c for s in specs for c in s.candidates})
    vectors = dict(zip(items, embed_texts(encoder, [item_text(catalogue[i]) for i in items], ITEM_TEXT_LENGTH)))
    users = embed_texts(encoder, [s.user_text for s in specs], USER_TEXT_LENGTH)
    return [RankingList(u, np.stack([vectors[c] for c in s.candidates]), s.signals, s.labels) for s, u in zip(specs, users)]


def list_ndcg(model, lists, k: int = 10) -> float:  # type: ignore[no-untyped-def]
    """Mean NDCG@k of a ranker over labelled lists (binary gains, ideal over min(k, bought))."""
    from clickmodel.fusion import score_list

    values = []
    for r in lists:
        if r.labels.sum() == 0:
            continue
        order = np.argsort(-score_list(model, r.user_embedding, r.item_embeddings, r.signals), kind="stable")[:k]
        gains = r.labels[order]
        dcg = float((gains / np.log2(np.arange(2, len(gains) + 2))).sum())
        ideal = float((1 / np.log2(np.arange(2, int(min(k, r.labels.sum())) + 2))).sum())
        values.append(dcg / ideal)
    return float(np.mean(values)) if values else float("nan")


def train_fusion_and_publish(
    settings: Settings, *, parent: int | None, since: float, job_id: str, max_lists: int = 1500, epochs: int = 3,
    seed: int = 0, learning_rate: float = 0.0, stage: Callable[[str], None] = lambda _: None, load_in_triton: bool = True,
    progress: Callable[[int, int, float], None] | None = None, until: float | None = None,
) -> tuple[int, Lineage]:
    """Version 1 (parent None: pretrained text encoder, ranker trained on the newest `max_lists`
    baskets) or a fine-tune of `parent` on the baskets after `since` plus as many replay lists.
    `until` bounds the events read (a replay of history: train as of that moment)."""
    import torch

    from clickmodel.fusion import build_text_encoder, clone_ranker, load_fusion, save_fusion, train_ranker
    from workers.publishing import serve_if_passed

    if threads := int(os.environ.get("RECSYS_TRAIN_THREADS", "0")):
        torch.set_num_threads(threads)
    log = EventLog(settings.eventlog)
    repo = ModelRepository(settings.model_repository, FUSION_MODEL_NAME)
    catalogue = log.catalogue()
    events = log.events(until=until)
    baskets = [b for b in baskets_of(events) if any(i in catalogue for i in b[2])]
    new = [b for b in baskets if b[1] > since]
    if not new:
        raise ValueError(f"no baskets after {since}")
    new = new[-max_lists:]
    rng = random.Random(seed)
    older = [b for b in baskets if b[1] <= since and b[1] < new[0][1]]
    replay = rng.sample(older, min(len(older), len(new))) if parent is not None else []
    first = min([new[0][1]] + [b[1] for b in replay])
    stage(f"building ranking lists: {len(new)} new baskets, {len(replay)} replayed")
    table = fit_neighbours(items for _, t, items in baskets if t < first)
    specs = build_lists(events, catalogue, {(u, t) for u, t, _ in new + replay}, table)
    new_specs = [s for s in specs if s.timestamp > since]
    replay_specs = [s for s in specs if s.timestamp <= since]
    if parent is None:
        encoder, previous = build_text_encoder(), None
    else:
        encoder, previous = load_fusion(repo.model_path(parent))
    stage("encoding shopper and item texts")
    new_lists, replay_lists = embed_lists(encoder, new_specs, catalogue), embed_lists(encoder, replay_specs, catalogue)
    held_new, held_replay = [], []
    if parent is not None:  # the newest lists are held out for the gate, and a slice of replay lists
        cut = len(new_lists) - min(GATE_LISTS, max(1, len(new_lists) // 5))
        new_lists, held_new = new_lists[:cut], new_lists[cut:]
        cut = len(replay_lists) - min(64, len(replay_lists) // 5)
        replay_lists, held_replay = replay_lists[:cut], replay_lists[cut:]
    stage("training the ranker")
    started = time.perf_counter()
    losses: list[float] = []
    candidate = train_ranker(new_lists + replay_lists, epochs=epochs if parent is None else 1, seed=seed, losses=losses, progress=progress,
                             lr=learning_rate or (1e-3 if parent is None else 3e-4), model=clone_ranker(previous) if previous is not None else None)
    seconds = time.perf_counter() - started
    stage("evaluating the candidate against the serving version")
    gate = fusion_gate(candidate, previous, held_new, held_replay)
    lineage = Lineage(
        version="", parent_version="" if parent is None else str(parent), created=time.time(),
        data_from=new[0][1], data_to=new[-1][1], example_count=sum(len(r.labels) for r in new_lists),
        final_loss=float(np.mean(losses[-max(1, len(losses) // 5):])),
        job_id=job_id, train_seconds=seconds,
        notes={"ranker": "fusion", "new_lists": len(new_lists), "replay_lists": len(replay_lists), "held_out_lists": len(held_new),
               "held_out_replay_lists": len(held_replay), "candidates_per_list": CANDIDATES},
        gate=gate,
    )
    stage("embedding the catalogue for Triton's item cache")
    parent_table = repo.model_path(parent).parent / ITEM_TABLE if parent is not None else None
    table_items = item_table(encoder, catalogue, parent_table)

    def write(path: Path) -> None:
        save_fusion(encoder, candidate, path)
        torch.save(table_items, path.parent / ITEM_TABLE)

    stage("publishing the new version")
    version = repo.publish(write, lineage, tag=job_id)
    if gate["passed"]:
        log.replace_co_purchase(fit_neighbours(items for _, _, items in baskets))  # serving reads every basket
    serve_if_passed(settings, repo, version, gate, load_in_triton, stage)
    return version, lineage


def item_table(encoder, catalogue: dict[str, ItemText], previous: Path | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Every catalogue item's embedding keyed the way Triton's model caches them (the item text's token
    ids), so a freshly loaded version starts warm. The text encoder is the same pretrained one in every
    version, so the parent's table is reused and only new or changed texts are encoded."""
    import torch

    from clickmodel.fusion import ITEM_TEXT_LENGTH, embed_texts, item_cache_key

    known: dict[bytes, torch.Tensor] = {}
    if previous is not None and previous.exists():
        old = torch.load(previous)
        known = dict(zip(old["keys"], old["vectors"]))
    texts = sorted({item_text(it) for it in catalogue.values()})
    keys = [item_cache_key(t) for t in texts]
    missing = [k for k, key in enumerate(keys) if key not in known]
    if missing:
        fresh = embed_texts(encoder, [texts[k] for k in missing], ITEM_TEXT_LENGTH)
        known.update({keys[k]: torch.from_numpy(v) for k, v in zip(missing, fresh)})
    return {"keys": keys, "vectors": torch.stack([known[key] for key in keys]) if keys else torch.zeros(0, 384)}


def fusion_gate(candidate, serving, held_new, held_replay) -> dict:  # type: ignore[no-untyped-def]
    """Listwise NDCG@10 of the candidate may not fall below the serving version's by more than
    RECSYS_GATE_NDCG_TOLERANCE on the newest held-out lists nor on the replay lists."""
    if serving is None:
        return {"passed": True, "reason": "first version", "metrics": {}}
    tolerance = float(os.environ.get("RECSYS_GATE_NDCG_TOLERANCE", "0.01"))
    results, reasons, passed = {}, [], True
    for name, lists in (("newest", held_new), ("replay", held_replay)):
        scored = [r for r in lists if r.labels.sum() > 0]
        if not scored:
            continue
        ours, theirs = list_ndcg(candidate, scored), list_ndcg(serving, scored)
        ok = ours >= theirs - tolerance
        passed &= ok
        results[name] = {"candidate_ndcg": round(ours, 5), "serving_ndcg": round(theirs, 5), "lists": len(scored), "passed": ok}
        reasons.append(f"{name}: NDCG@10 {ours:.4f} {'not worse than' if ok else 'worse than'} the serving version's {theirs:.4f} on {len(scored)} lists")
    if not results:
        return {"passed": True, "reason": "too few lists to hold any out; published ungated", "metrics": {}}
    return {"passed": passed, "reason": "; ".join(reasons) + f" (tolerance {tolerance})", "metrics": results}
