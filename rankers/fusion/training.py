"""Training half of the fusion ranker: version 1 (pretrained text towers, fusion network trained on the
newest baskets) or a fine-tune of the serving version on the baskets since its data window plus as
many older baskets replayed from the log (the log keeps every event, so no separate buffer is needed).

The co-purchase table the lists read is fitted on baskets before the first list (no peeking at the
basket being predicted); the version's own serving table is refitted on every basket and written into
its folder with the model, the catalogue's item embeddings and the signal statistics. The gate
compares listwise NDCG@10 of candidate and serving version on the newest held-out lists and on replay
lists. Torch is imported here, only in processes that train.
"""
from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
import torch

from core.domain import GateDecision, Lineage
from rankers.base import Candidate, NothingToLearn, Trainer, TrainingRun
from rankers.fusion import CO_PURCHASE_FILE, ITEM_TABLE, SIGNAL_STATS, SIMILAR_FILE
from rankers.fusion import FusionRanker as FusionServing
from rankers.fusion.co_purchase import fit_neighbours
from rankers.fusion.lists import CANDIDATES, ListSpec, ShownList, baskets_of, build_lists, shown_lists
from rankers.fusion.network import (
    EMBEDDING_DIM,
    FusionRanker,
    RankingList,
    build_text_encoder,
    clone_ranker,
    embed_texts,
    item_cache_key,
    load_fusion,
    save_fusion,
    score_list,
    shopper_from_items,
    train_ranker,
)
from rankers.fusion.shopper_state import history_weights
from rankers.fusion.signals import SIGNAL_NAMES
from rankers.fusion.text_neighbours import text_neighbours
from rankers.fusion.text_tower import TowerSettings, eager_encoder, tune_top_layer
from rankers.metrics import list_ndcg as ndcg_of_list
from shoptext.text import INTEREST_EVENTS, ITEM_TEXT_LENGTH, ItemText, item_text

logger = logging.getLogger(__name__)

GATE_LISTS = 200
VISIT_S = 3600.0  # a shown list's reactions (clicks, carts, purchases) come within this many seconds of the first


def embed_lists(encoder: Any, specs: Sequence[ListSpec], catalogue: dict[str, ItemText]) -> list[RankingList]:
    """RankingLists: every candidate's and history item's text through the item tower `encoder`, and each
    shopper's vector from their history's embeddings (the state serving stores: shopper_state.history_weights
    and network.shopper_from_items, the same two functions)."""
    items = sorted({c for s in specs for c in s.candidates} | {i for s in specs for i, _ in s.history})
    vectors = dict(zip(items, embed_texts(encoder, [item_text(catalogue[i]) for i in items], ITEM_TEXT_LENGTH)))
    users = shopper_vectors([s.history for s in specs], vectors)
    return [RankingList(u, np.stack([vectors[c] for c in s.candidates]), s.signals, s.labels) for s, u in zip(specs, users)]


def shopper_vectors(histories: Sequence[Sequence[tuple[str, float]]], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Shopper vectors [len(histories), EMBEDDING_DIM] from (item, ts) histories (newest first) and item embeddings."""
    if not histories:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    rows = {item: k for k, item in enumerate(vectors)}
    picked = [history_weights(h, rows) for h in histories]
    width = max((len(ids) for ids, _ in picked), default=0) or 1
    index = np.full((len(picked), width), -1, dtype=np.int64)
    weights = np.zeros((len(picked), width), dtype=np.float32)
    for b, (ids, w) in enumerate(picked):
        index[b, : len(ids)] = [rows[i] for i in ids]
        weights[b, : len(ids)] = w
    table = torch.from_numpy(np.stack(list(vectors.values()))) if vectors else torch.zeros(0, EMBEDDING_DIM)
    with torch.inference_mode():
        return shopper_from_items(table, torch.from_numpy(index), torch.from_numpy(weights)).numpy()


def list_ndcgs(model: Any, lists: Sequence[RankingList], k: int = 10) -> np.ndarray:
    """NDCG@k of a ranker on each labelled list (binary gains, ideal over min(k, bought)), in list order."""
    return np.array([ndcg_of_list(score_list(model, r.user_embedding, r.item_embeddings, r.signals), r.labels, k)
                     for r in lists if r.labels.sum() > 0], dtype=np.float64)


def list_ndcg(model: Any, lists: Sequence[RankingList], k: int = 10) -> float:
    """Mean NDCG@k of a ranker over labelled lists."""
    values = list_ndcgs(model, lists, k)
    return float(values.mean()) if len(values) else float("nan")


def item_table(encoder: Any, catalogue: dict[str, ItemText], previous: Path | None = None) -> dict[str, Any]:
    """Every catalogue item's embedding keyed the way Triton's model caches them (the item text's token
    ids), so a freshly loaded version starts warm. The text encoder is the same pretrained one in every
    version, so the parent's table is reused and only new or changed texts are encoded."""
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
    return {"keys": keys, "vectors": torch.stack([known[key] for key in keys]) if keys else torch.zeros(0, EMBEDDING_DIM)}


def similar_table(catalogue: dict[str, ItemText], table: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Each item's nearest items by the item tower (the table's rows are item_table's sorted texts)."""
    texts = {i: item_text(it) for i, it in catalogue.items()}
    row = {t: k for k, t in enumerate(sorted(set(texts.values())))}
    if not texts or len(row) != len(table["keys"]):
        return {}
    ids = list(texts)
    return text_neighbours(ids, table["vectors"].numpy()[[row[texts[i]] for i in ids]])


def fusion_gate(candidate: Any, serving: Any, held_new: Sequence[RankingList], held_replay: Sequence[RankingList],
                tolerance: float, serving_lists: tuple[Sequence[RankingList], Sequence[RankingList]] | None = None,
                confidence: float = 0.0) -> GateDecision:
    """Listwise NDCG@10 of the candidate may not fall below the serving version's by more than
    `tolerance` on the newest held-out lists nor on the replay lists. With `confidence` > 0 a drop beyond
    the tolerance rejects only when it is also beyond the lists' noise: the one-sided `confidence` bound of
    the mean per-list difference (the two versions score the same lists) is below zero. `serving_lists`:
    the same lists embedded by the serving version's own item tower, when the candidate's learned a new one."""
    if serving is None:
        return GateDecision(True, "first version")
    results, reasons, passed = {}, [], True
    theirs_lists = serving_lists or (held_new, held_replay)
    z = NormalDist().inv_cdf(confidence) if confidence > 0 else 0.0
    for name, lists, their_lists in (("newest", held_new, theirs_lists[0]), ("replay", held_replay, theirs_lists[1])):
        ours_each, theirs_each = list_ndcgs(candidate, lists), list_ndcgs(serving, their_lists)
        if not len(ours_each):
            continue
        ours, theirs = float(ours_each.mean()), float(theirs_each.mean())
        difference = ours_each - theirs_each
        spread = float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0
        beyond_noise = confidence <= 0 or float(difference.mean()) + z * spread < 0
        ok = ours >= theirs - tolerance or not beyond_noise
        passed &= ok
        results[name] = {"candidate_ndcg": round(ours, 5), "serving_ndcg": round(theirs, 5), "lists": len(difference), "passed": ok,
                         "difference_se": round(spread, 5)}
        verdict = "not worse than" if ours >= theirs - tolerance else ("worse than" if beyond_noise else "within the noise of")
        reasons.append(f"{name}: NDCG@10 {ours:.4f} {verdict} the serving version's {theirs:.4f} on {len(difference)} lists")
    if not results:
        return GateDecision(True, "too few lists to hold any out; published ungated")
    rule = f"tolerance {tolerance}" + (f", rejected only when worse at {confidence:.0%}" if confidence > 0 else "")
    return GateDecision(passed, "; ".join(reasons) + f" ({rule})", results)


def _split(lists: list[RankingList], at: int) -> tuple[list[RankingList], list[RankingList]]:
    return lists[:at], lists[at:]


def signal_statistics(ranker: FusionRanker) -> dict[str, Any]:
    return {"names": list(SIGNAL_NAMES), "mean": ranker.signal_mean.tolist(), "std": ranker.signal_std.tolist()}


class FusionTrainer(Trainer):
    def __init__(self, ranker: FusionServing) -> None:
        self.ranker = ranker

    def train(self, run: TrainingRun) -> Candidate:
        settings, stage = run.settings, run.stage
        if settings.train_threads:
            torch.set_num_threads(settings.train_threads)
        catalogue = run.log.catalogue.items()
        events = run.log.events.read(until=run.until)
        baskets = [b for b in baskets_of(events) if any(i in catalogue for i in b[2])]
        # A basket is new when any of its events is (arrival order: a late event makes its basket new).
        fresh = {(e.user_id, e.timestamp) for e in events if e.event_type in INTEREST_EVENTS and run.is_new(e)}
        new = [b for b in baskets if (b[0], b[1]) in fresh]
        if not new:
            raise NothingToLearn(f"no new labelled events since version {run.parent}" if run.parent else "no baskets in the log")
        new = new[-run.max_examples:]
        fresh = {(u, t) for u, t, _ in new}
        rng = random.Random(run.seed)
        older = [b for b in baskets if (b[0], b[1]) not in fresh and b[1] < new[-1][1]]
        replay = rng.sample(older, min(len(older), round(settings.replay_ratio * len(new)))) if run.parent is not None else []
        first = min([new[0][1]] + [b[1] for b in replay])
        stage(f"building ranking lists: {len(new)} new baskets, {len(replay)} replayed")
        shown: list[ShownList] = []
        if settings.impression_lists and run.parent is not None:  # what the serving versions showed and drew
            named = [e for e in events if e.request_id and e.event_type in INTEREST_EVENTS and run.is_new(e)]
            served = run.log.served.by_request({e.request_id for e in named})
            shown = shown_lists(named, {r: s.item_ids for r, s in served.items()})
            stage(f"{len(shown)} served lists with a click among {len(served)} named by new events")
        table = fit_neighbours(items for _, t, items in baskets if t < first)
        specs = build_lists(events, catalogue, {(u, t) for u, t, _ in new + replay}, table, shown=shown)
        shown_specs = [s for s in specs if s.shown]
        new_specs = [s for s in specs if not s.shown and (s.user_id, s.timestamp) in fresh]
        replay_specs = [s for s in specs if not s.shown and (s.user_id, s.timestamp) not in fresh]
        if run.parent is None:
            encoder, previous = build_text_encoder(), None
        else:
            encoder, previous = load_fusion(run.repo.model_path(run.parent))
        held_new_specs: list[ListSpec] = []
        held_replay_specs: list[ListSpec] = []
        if run.parent is not None:  # the newest lists are held out for the gate, and a slice of replay lists
            cut = len(new_specs) - min(GATE_LISTS, max(1, len(new_specs) // 5))
            new_specs, held_new_specs = new_specs[:cut], new_specs[cut:]
            # shown lists only train (the gate's lists stay basket lists), and none whose reactions a held-out
            # basket holds: none of a shopper in the hour before one of their held-out baskets
            held: dict[str, list[float]] = {}
            for h in held_new_specs:
                held.setdefault(h.user_id, []).append(h.timestamp)
            shown_specs = [h for h in shown_specs if not any(0 <= t - h.timestamp <= VISIT_S for t in held.get(h.user_id, ()))]
            cut = len(replay_specs) - min(64, len(replay_specs) // 5)
            replay_specs, held_replay_specs = replay_specs[:cut], replay_specs[cut:]
        tower: dict[str, Any] = {"mode": settings.text_tower}
        serving_encoder = encoder  # the parent's tower (the pretrained one for version 1)
        if settings.text_tower == "top_layer":  # the item tower learns, on the training lists only (never the gate's)
            encoder = eager_encoder(encoder) if run.parent is not None else encoder
            stage(f"fine-tuning the item tower's top layer ({settings.text_tower_steps} steps)")
            texts = {i: item_text(it) for i, it in catalogue.items()}
            tower.update(tune_top_layer(encoder, new_specs + replay_specs, texts,
                                        TowerSettings(steps=settings.text_tower_steps, seed=run.seed), progress=run.progress))
        stage("encoding item texts and shopper histories")
        new_specs = sorted(new_specs + shown_specs, key=lambda x: x.timestamp)
        new_lists, held_new = _split(embed_lists(encoder, new_specs + held_new_specs, catalogue), len(new_specs))
        replay_lists, held_replay = _split(embed_lists(encoder, replay_specs + held_replay_specs, catalogue), len(replay_specs))
        serving_lists = None
        if encoder is not serving_encoder and previous is not None:  # the serving version reads its own tower's embeddings
            serving_lists = (embed_lists(serving_encoder, held_new_specs, catalogue), embed_lists(serving_encoder, held_replay_specs, catalogue))
        stage("training the ranker")
        started = time.perf_counter()
        losses: list[float] = []
        candidate = train_ranker(new_lists + replay_lists, epochs=3 if run.parent is None else 1, seed=run.seed, losses=losses,
                                 progress=run.progress, lr=run.learning_rate or (1e-3 if run.parent is None else 3e-4),
                                 model=clone_ranker(previous) if previous is not None else None,
                                 teacher=previous, distilled=replay_lists, distill_weight=settings.distill_weight)
        seconds = time.perf_counter() - started
        stage("evaluating the candidate against the serving version")
        gate = fusion_gate(candidate, previous, held_new, held_replay, settings.gate_ndcg_tolerance, serving_lists,
                           settings.gate_confidence)
        lineage = Lineage(
            version="", parent_version="" if run.parent is None else str(run.parent), created=time.time(),
            data_from=new[0][1], data_to=new[-1][1], example_count=sum(len(r.labels) for r in new_lists),
            final_loss=float(np.mean(losses[-max(1, len(losses) // 5):])),
            job_id=run.job_id, train_seconds=seconds, seq_to=max((e.seq for e in events), default=0),
            notes={"ranker": self.ranker.name, "new_lists": len(new_lists), "replay_lists": len(replay_lists), "shown_lists": len(shown),
                   "held_out_lists": len(held_new), "held_out_replay_lists": len(held_replay), "candidates_per_list": CANDIDATES,
                   "text_tower": tower},
            gate=gate.to_json(),
        )
        stage("embedding the catalogue for Triton's item cache")
        # the parent's table is reused only while the tower is the parent's (a learned one re-embeds every item)
        parent_table = run.repo.version_dir(run.parent) / ITEM_TABLE if run.parent is not None and encoder is serving_encoder else None
        table_items = item_table(encoder, catalogue, parent_table)
        serving_table = fit_neighbours(items for _, _, items in baskets)  # serving reads every basket
        stage("finding each item's nearest items by text (similar items)")
        similar = similar_table(catalogue, table_items)

        def write(folder: Path) -> None:
            save_fusion(encoder, candidate, folder / "model.pt")
            torch.save(table_items, folder / ITEM_TABLE)
            (folder / CO_PURCHASE_FILE).write_text(json.dumps({a: [[b, s] for b, s in nbs] for a, nbs in serving_table.items()}))
            (folder / SIMILAR_FILE).write_text(json.dumps({a: [[b, s] for b, s in nbs] for a, nbs in similar.items()}))
            (folder / SIGNAL_STATS).write_text(json.dumps(signal_statistics(candidate), indent=1))

        return Candidate(lineage, write)

    def serving_quality(self, settings: Any, log: Any, repo: Any, version: int, since: float, until: float,
                        max_lists: int) -> tuple[float, int] | None:
        catalogue = log.catalogue.items()
        events = log.events.read(until=until)
        baskets = [b for b in baskets_of(events) if any(i in catalogue for i in b[2])]
        newest = [b for b in baskets if b[1] >= since][-max_lists:]
        if not newest:
            return 0.0, 0
        table = fit_neighbours(items for _, t, items in baskets if t < newest[0][1])  # as training lists: no peeking
        specs = build_lists(events, catalogue, {(u, t) for u, t, _ in newest}, table)
        encoder, model = load_fusion(repo.model_path(version))
        lists = [r for r in embed_lists(encoder, specs, catalogue) if r.labels.sum() > 0]
        return (list_ndcg(model, lists), len(lists)) if lists else (0.0, 0)
