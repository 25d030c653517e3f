"""`make bench-fusion`: the two-tower + fusion click model (rankers.fusion.network) under the EVAL protocol.

Retrieval (the shopper's items, co-purchase neighbours, 30-day popular items: up to 100 candidates),
then the fusion ranker over the frozen MiniLM embeddings of the shopper's text and each item's text
plus the repeat / recency / popularity signals of rankers.fusion.signals. Arms, all on the same cases:

- fusion (frozen): trained on invoices of the six months before the first test month, never updated;
- fusion (monthly): the same model fine-tuned at each month boundary on the month just ended plus a
  replay sample of older lists (what the worker's lifelong loop does);
- signals only: the monthly arm's recipe with the text embeddings zeroed (what the text adds);
- the EVAL baselines, and "repeat+popularity (popular ties)": the user's items by count with ties broken
  by current popularity instead of first purchase.

Per month NDCG/HR/Recall@10, AUC (2 bought vs 2 sampled never-bought-in-that-invoice items per case),
discovery metrics, retrieval recall, training compute and ranker cost per candidate; JSON, Markdown
and PNG under bench/results/.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from evaluation.baselines import CoOccurrence, History, Popularity, RepeatPopularity
from evaluation.bert import catalogue_text
from evaluation.metrics import auc
from evaluation.protocol import Case, EventArrays, add_months_arguments, build_cases, month_start_seconds, months_of, sample_cases
from evaluation.ranker_data import CaseRows, CountLookup, Retrieval, repeat_then_popular, training_cases
from evaluation.results import work_dir
from evaluation.rules_arm import WithRules, parse_rules
from evaluation.run import RESULTS, evaluate, load_data, machine
from rankers.fusion.network import (
    FusionRanker,
    RankingList,
    build_text_encoder,
    clone_ranker,
    embed_texts,
    score_list,
    train_ranker,
)
from rankers.fusion.sequence import SequenceFusionRanker, pretrain_shopper_tower
from rankers.fusion.signals import Purchase, candidate_signals
from shopdata.uci_retail import DEFAULT_PATH
from shoptext.text import ITEM_TEXT_LENGTH, USER_TEXT_LENGTH, history_from_events, item_text, user_text

CACHE = work_dir("fusion-cache")


def next_month(month: str) -> str:
    return (pd.Timestamp(month + "-01") + pd.offsets.MonthBegin(1)).strftime("%Y-%m")


class Embeddings:
    """Item embeddings (once per item text) and shopper-text embeddings (once per case), cached on
    disk so a rerun re-encodes nothing."""

    def __init__(self, ev: EventArrays, items: pd.DataFrame, history: History, cache: Path = CACHE) -> None:
        self.ev, self.history = ev, history
        catalogue = catalogue_text(items)
        self.titles = {str(i): catalogue[str(i)].title for i in ev.item_ids if str(i) in catalogue}
        texts = [item_text(catalogue[str(i)]) if str(i) in catalogue else str(i) for i in ev.item_ids]
        self.encoder = build_text_encoder()
        cache.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
        path = cache / f"items-{key}.npy"
        if not path.exists():
            print(f"encoding {len(texts)} item texts", file=sys.stderr)
            np.save(path, embed_texts(self.encoder, texts, ITEM_TEXT_LENGTH))
        self.items = np.load(path)
        # shopper texts are keyed by (user index, history cutoff): meaningful within one export only
        data = hashlib.sha1(key.encode() + ev.user.tobytes() + ev.item.tobytes() + ev.ts.tobytes()).hexdigest()[:12]
        self.user_path = cache / f"users-{data}.npz"
        self.users: dict[str, np.ndarray] = dict(np.load(self.user_path)) if self.user_path.exists() else {}
        self.encode_seconds = 0.0

    def text(self, case: Case) -> str:
        pos = self.history.before(case)
        past = [(str(self.ev.item_ids[self.ev.item[p]]), "purchase", float(self.ev.ts[p])) for p in pos[-50:]]
        return user_text(history_from_events(past), self.titles)

    def users_for(self, cases: list[Case]) -> np.ndarray:
        keys = [f"{c.user}-{c.cutoff}" for c in cases]
        missing = [(k, c) for k, c in zip(keys, cases) if k not in self.users]
        if missing:
            started = time.perf_counter()
            from tqdm import tqdm

            for i in tqdm(range(0, len(missing), 256), desc="  shopper texts", unit="x256", file=sys.stderr, mininterval=5):
                chunk = missing[i : i + 256]
                vectors = embed_texts(self.encoder, [self.text(c) for _, c in chunk], USER_TEXT_LENGTH)
                self.users.update({k: v for (k, _), v in zip(chunk, vectors)})
            self.encode_seconds += time.perf_counter() - started
            np.savez(self.user_path, **self.users)
        return np.stack([self.users[k] for k in keys]) if keys else np.zeros((0, self.items.shape[1]), dtype=np.float32)

    def item_means(self, cases: list[Case]) -> np.ndarray:
        """The served shopper tower: the recency-weighted mean of the embeddings of the shopper's last
        STATE_HISTORY purchases, L2-normalised (rankers.fusion.shopper_state and network.shopper_from_items,
        through the training lists' own function)."""
        from rankers.fusion.shopper_state import STATE_HISTORY
        from rankers.fusion.training import shopper_vectors

        histories = [[(int(self.ev.item[p]), float(self.ev.ts[p])) for p in self.history.before(c)[-STATE_HISTORY:][::-1]] for c in cases]
        return shopper_vectors(histories, dict(enumerate(self.items)))

    def histories(self, cases: list[Case]) -> list[tuple[np.ndarray, np.ndarray]]:
        """What a learned shopper tower reads (rankers.fusion.sequence): the rows of the shopper's last
        STATE_HISTORY purchases, newest first, and their ages in days before the newest."""
        from rankers.fusion.shopper_state import DAY, STATE_HISTORY

        out = []
        for c in cases:
            pos = self.history.before(c)[-STATE_HISTORY:][::-1]
            ts = self.ev.ts[pos].astype(np.float64)
            ages = ((ts.max() - ts) / DAY if len(ts) else ts).astype(np.float32)
            out.append((self.ev.item[pos].astype(np.int64), ages))
        return out

    def shoppers(self, cases: list[Case], kind: str = "items") -> np.ndarray:
        """Shopper vectors: `items` (item_means, as served; also what `sequence` starts from), `text` (the MiniLM
        embedding of their text, the shopper tower served before issue 26) or `text+items` (the normalised sum
        of both, one 384-d vector)."""
        if kind in ("items", "sequence"):
            return self.item_means(cases)
        text = self.users_for(cases)
        if kind == "text":
            return text
        both = text + self.item_means(cases)
        return (both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def ranking_lists(rows: list[CaseRows], users: np.ndarray, items: np.ndarray, text: bool = True,
                  histories: list[tuple[np.ndarray, np.ndarray]] | None = None) -> list[RankingList]:
    out = []
    for k, (r, u) in enumerate(zip(rows, users)):
        emb = items[r.candidates]
        out.append(RankingList(u if text else np.zeros_like(u), emb if text else np.zeros_like(emb), r.signals, r.labels,
                               histories[k] if histories is not None else None))
    return out


class FusionRecommender:
    """Ranks a case's candidates with one ranker per month (then popularity for the rest)."""

    def __init__(self, name: str, ev: EventArrays, rows: dict, users: dict, items: np.ndarray, models: dict, text: bool = True,
                 histories: dict | None = None) -> None:
        self.name, self.ev, self.rows, self.users, self.items, self.models, self.text = name, ev, rows, users, items, models, text
        self.histories = histories  # given: each month's model computes the shopper's vector (a learned tower)
        self.table = torch.from_numpy(items)
        self.popularity = Popularity(ev)
        self.auc_scores: dict[str, tuple[list[float], list[float]]] = {}

    def user(self, case: Case) -> np.ndarray:
        if self.histories is None:
            return self.users[(case.user, case.ts)]
        index, ages = self.histories[(case.user, case.ts)]
        with torch.inference_mode():
            return self.models[case.month].shoppers(self.table, index[None, :], ages[None, :])[0].numpy()

    def scores(self, case: Case, signals: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        u, emb = self.user(case), self.items[candidates]
        if not self.text:
            u, emb = np.zeros_like(u), np.zeros_like(emb)
        return score_list(self.models[case.month], u, emb, signals)

    def ranked(self, case: Case, limit: int) -> list[int]:
        r = self.rows[(case.user, case.ts)]
        probs = self.scores(case, r.signals, r.candidates)
        out = [int(r.candidates[j]) for j in np.argsort(-probs, kind="stable")]
        have = set(out)
        return (out + [i for i in self.popularity.ranked(case, limit + len(have)) if i not in have])[:limit]


class PopularTies:
    """Repeat + popularity with ties among the shopper's items broken by current popularity."""

    name = "repeat+popularity (popular ties)"

    def __init__(self, rows: dict, ev: EventArrays) -> None:
        self.rows, self.popularity = rows, Popularity(ev)

    def ranked(self, case: Case, limit: int) -> list[int]:
        r = self.rows[(case.user, case.ts)]
        key = repeat_then_popular(r.signals)
        own = [int(r.candidates[j]) for j in np.argsort(-key, kind="stable") if r.signals[j, 0] > 0]
        have = set(own)
        return (own + [i for i in self.popularity.ranked(case, limit + len(have)) if i not in have])[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--sample-per-month", type=int, default=0, help="seeded sample of test cases per month; 0 = every case")
    parser.add_argument("--train-per-month", type=int, default=800, help="training invoices sampled per month")
    parser.add_argument("--train-months", type=int, default=6, help="months before the first test month the frozen model learns from")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--own-limit", type=int, default=60, help="at most this many of the candidates are the shopper's own items (as served)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--text-candidates", type=int, default=0,
                        help="also retrieve the N items whose text embedding is nearest the shopper's (an experiment; 0 = off)")
    parser.add_argument("--shopper-vector", choices=("text", "items", "text+items", "sequence"), default="items",
                        help="the shopper tower: the recency-weighted mean of their items' embeddings (served), their text "
                             "through MiniLM (served before issue 26), both summed, or self-attention over their items' "
                             "embeddings and ages trained with the ranker (rankers.fusion.sequence)")
    parser.add_argument("--tower-pretrain-epochs", type=int, default=0,
                        help="with --shopper-vector sequence: first train the tower on next-basket prediction over every "
                             "basket before the test months for this many epochs (one more per month for the monthly arm)")
    parser.add_argument("--rules", default="", help="also score the monthly ranker with Recommend's rules applied, e.g. "
                        "exclude-purchased,distinct-titles (core.rules; one arm per ';'-separated set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    add_months_arguments(parser)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, Markdown and PNG")
    parser.add_argument("--cache", type=Path, default=CACHE, help="text embeddings kept between runs (per export)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    items, events = load_data(args.data)
    ev = EventArrays.from_frame(events)
    months = months_of(args, ev)
    all_cases = build_cases(ev, months)
    if not all_cases:
        raise SystemExit(f"error: no test cases in {months[0]}..{months[-1]}: no shopper bought in a test month after buying before it")
    history = History(ev)
    retrieval = Retrieval(ev, history, size=args.candidates, own=args.own_limit)
    emb = Embeddings(ev, items, history, args.cache)
    rng = np.random.default_rng(args.seed)
    if args.text_candidates:
        def text_neighbours(case: Case) -> list[int]:
            sims = emb.items @ emb.users[f"{case.user}-{case.cutoff}"]
            sims[ev.item_first_seen >= case.cutoff] = -np.inf  # only items the shop had sold before
            top = np.argpartition(-sims, args.text_candidates)[: args.text_candidates]
            return [int(i) for i in top[np.argsort(-sims[top])]]

        retrieval.text_neighbours = text_neighbours

    def month_lists(month: str, text: bool = True) -> list[RankingList]:
        cases = training_cases(ev, month_start_seconds(month), month_start_seconds(next_month(month)), month)
        if len(cases) > args.train_per_month:
            cases = [cases[k] for k in sorted(rng.choice(len(cases), args.train_per_month, replace=False))]
        users = emb.shoppers(cases, args.shopper_vector)  # before the rows: text retrieval reads them
        rows = [retrieval.rows(c) for c in cases]
        return ranking_lists(rows, users, emb.items, text, emb.histories(cases) if sequence else None)

    first = pd.Timestamp(months[0] + "-01")
    pre_months = [(first - pd.offsets.MonthBegin(k)).strftime("%Y-%m") for k in range(args.train_months, 0, -1)]
    all_months = pre_months + months[:-1]
    print(f"training lists for {all_months[0]}..{all_months[-1]}", file=sys.stderr)
    sequence = args.shopper_vector == "sequence"
    tower: dict[str, Any] = {"item_table": emb.items, "new_model": SequenceFusionRanker} if sequence else {}
    lists = {m: month_lists(m) for m in all_months}

    compute: dict[str, float] = {}
    if not any(r.labels.sum() for m in pre_months for r in lists[m]):
        raise SystemExit(f"error: nothing to train on in {pre_months[0]}..{pre_months[-1]} (the --train-months before {months[0]}); "
                         "choose later test months or fewer --train-months")
    def basket_examples(month_list: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        cases = [c for m in month_list for c in training_cases(ev, month_start_seconds(m), month_start_seconds(next_month(m)), m)]
        return [(index, ages, np.fromiter(c.target, dtype=np.int64)) for c, (index, ages) in zip(cases, emb.histories(cases))]

    def pretrained(training: list[RankingList]) -> dict[str, Any]:
        """The first model of a sequence arm: its tower trained on next-basket prediction first (if asked)."""
        if not (sequence and args.tower_pretrain_epochs):
            return {}
        model = SequenceFusionRanker(signals=training[0].signals.shape[1])
        model.set_normalisation(np.concatenate([r.signals for r in training]))
        examples = basket_examples(pre_months)
        losses = pretrain_shopper_tower(model, examples, emb.items, epochs=args.tower_pretrain_epochs, seed=args.seed)
        print(f"  tower: {len(examples)} baskets, loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}", file=sys.stderr)
        return {"model": model}

    t = time.perf_counter()
    first_lists = [r for m in pre_months for r in lists[m]]
    frozen = train_ranker(first_lists, epochs=args.epochs, seed=args.seed, **tower, **pretrained(first_lists))
    compute["fusion (frozen)"] = time.perf_counter() - t

    def monthly(text: bool) -> tuple[dict[str, FusionRanker], float]:
        t = time.perf_counter()
        strip = (lambda r: r) if text else (lambda r: RankingList(np.zeros_like(r.user_embedding), np.zeros_like(r.item_embeddings), r.signals, r.labels))
        learned = tower if text else {}
        older = [strip(r) for m in pre_months for r in lists[m]]
        model = train_ranker(older, epochs=args.epochs, seed=args.seed, **learned, **(pretrained(older) if text else {}))
        models = {months[0]: model}
        for prev, month in zip(months, months[1:]):
            new = [strip(r) for r in lists[prev]]
            if text and isinstance(model, SequenceFusionRanker) and args.tower_pretrain_epochs:
                model = clone_ranker(model)
                pretrain_shopper_tower(model, basket_examples([prev]), emb.items, epochs=1, lr=3e-4, seed=args.seed)
            replay = [older[k] for k in np.random.default_rng(args.seed).choice(len(older), min(len(older), len(new)), replace=False)]
            model = train_ranker(new + replay, epochs=1, lr=3e-4, seed=args.seed, model=clone_ranker(model), **learned)
            models[month] = model
            older += new
        return models, time.perf_counter() - t

    monthly_models, compute["fusion (monthly)"] = monthly(text=True)
    signal_models, compute["signals only (monthly)"] = monthly(text=False)

    cases = sample_cases(all_cases, args.sample_per_month or None, args.seed)
    print(f"{len(cases)} test cases: candidates and signals", file=sys.stderr)
    user_vectors = emb.shoppers(cases, args.shopper_vector)
    t = time.perf_counter()
    rows = {(c.user, c.ts): retrieval.rows(c) for c in cases}
    retrieval_seconds = time.perf_counter() - t
    users = {(c.user, c.ts): u for c, u in zip(cases, user_vectors)}
    histories = {(c.user, c.ts): h for c, h in zip(cases, emb.histories(cases))} if sequence else None
    recommenders: list[Any] = [
        Popularity(ev), RepeatPopularity(ev, history), CoOccurrence(ev, history), PopularTies(rows, ev),
        FusionRecommender("fusion (frozen)", ev, rows, users, emb.items, {m: frozen for m in months}, histories=histories),
        FusionRecommender("fusion (monthly)", ev, rows, users, emb.items, monthly_models, histories=histories),
        FusionRecommender("signals only (monthly)", ev, rows, users, emb.items, signal_models, text=False),
    ]
    catalogue = catalogue_text(items)
    by_index = {k: catalogue[str(i)] for k, i in enumerate(ev.item_ids) if str(i) in catalogue}
    served_like = recommenders[-2]  # fusion (monthly)
    for label in filter(None, (x.strip() for x in args.rules.split(";"))):
        recommenders.append(WithRules(served_like, parse_rules(label), by_index, history, ev, label))
    results: dict[str, dict] = {}
    for rec in recommenders:
        results[rec.name] = evaluate(rec, cases, ev, history, rec.name[:18])
        results[rec.name]["train_seconds"] = round(compute.get(rec.name, 0.0), 1)
        if isinstance(rec, FusionRecommender):
            results[rec.name]["auc"] = auc_per_month(rec, cases, ev, history, retrieval, args.seed)
    recall: dict[str, list[float]] = {}
    for c in cases:
        recall.setdefault(c.month, []).append(rows[(c.user, c.ts)].labels.sum() / len(c.target))
    report = {
        "machine": machine(), "cases": len(cases), "sample_per_month": args.sample_per_month or "all", "settings": vars(args) | {"data": str(args.data)},
        "results": results, "retrieval_recall": {m: round(float(np.mean(v)), 4) for m, v in recall.items()},
        "retrieval_recall_overall": round(float(np.mean([x for v in recall.values() for x in v])), 4),
        "cost": ranker_cost(monthly_models[months[-1]], emb), "text_encode_seconds": round(emb.encode_seconds, 1),
        "retrieval_seconds": round(retrieval_seconds, 1), "wall_seconds": round(time.perf_counter() - started, 1),
    }
    name = "fusion-full" if not args.sample_per_month else f"fusion-sample{args.sample_per_month}"
    name += f"-{args.tag}" if args.tag else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    write_outputs(report, name, args.out)


def auc_per_month(rec: FusionRecommender, cases: list[Case], ev: EventArrays, history: History, retrieval: Retrieval, seed: int) -> dict[str, float]:
    """2 bought items vs 2 items seen in the shop but not bought in that invoice, per case."""
    rng = np.random.default_rng(seed)
    pos: dict[str, list[float]] = {}
    neg: dict[str, list[float]] = {}
    for c in cases:
        target = [int(i) for i in rng.permutation(sorted(c.target))[:2]]
        seen = np.flatnonzero(ev.item_first_seen < c.cutoff)
        negatives = [int(i) for i in rng.choice(seen, 6, replace=False) if int(i) not in c.target][:2]
        lo = int(np.searchsorted(ev.ts, c.ts - 31 * 86400, side="right"))
        pop30 = np.bincount(ev.item[lo : c.cutoff], minlength=ev.n_items)
        lo7 = int(np.searchsorted(ev.ts, c.ts - 8 * 86400, side="right"))
        pop7 = np.bincount(ev.item[lo7 : c.cutoff], minlength=ev.n_items)
        past = [Purchase(int(ev.item[p]), float(ev.ts[p]), int(ev.basket[p])) for p in history.before(c)]
        candidates = target + negatives
        signals = candidate_signals(past, float(c.ts), candidates, CountLookup(pop30), CountLookup(pop7), retrieval.cooc.scores(c))
        probs = rec.scores(c, signals, np.asarray(candidates))
        pos.setdefault(c.month, []).extend(probs[: len(target)].tolist())
        neg.setdefault(c.month, []).extend(probs[len(target) :].tolist())
    return {m: round(auc(pos[m], neg[m]), 4) for m in pos}


def ranker_cost(model: FusionRanker, emb: Embeddings) -> dict[str, float]:
    """Wall ms of the TorchScript ranker for 100 candidates and of one shopper-text encoding (CPU)."""
    import tempfile

    from rankers.fusion.network import save_scripted

    with tempfile.TemporaryDirectory() as tmp:
        save_scripted(model, Path(tmp) / "r.pt")
        scripted = torch.jit.load(str(Path(tmp) / "r.pt"))
    u, items, sig = np.zeros(384, np.float32), emb.items[:100], np.random.default_rng(0).random((100, int(model.signal_mean.numel())), dtype=np.float32)
    for _ in range(5):
        score_list(scripted, u, items, sig)
    t = time.perf_counter()
    for _ in range(50):
        score_list(scripted, u, items, sig)
    ranker_ms = (time.perf_counter() - t) / 50 * 1000
    text = "bought: " + "; ".join(["white hanging heart t-light holder"] * 8)
    embed_texts(emb.encoder, [text], USER_TEXT_LENGTH)
    t = time.perf_counter()
    for _ in range(10):
        embed_texts(emb.encoder, [text], USER_TEXT_LENGTH)
    return {"ranker_ms_per_100": round(ranker_ms, 3), "ranker_us_per_candidate": round(ranker_ms * 10, 2),
            "user_text_encode_ms": round((time.perf_counter() - t) / 10 * 1000, 1)}


def write_outputs(report: dict, name: str, out: Path = RESULTS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    months = list(next(iter(results.values()))["months"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for rec, r in results.items():
        style = "-" if rec.startswith(("fusion", "signals")) else "--"
        ax.plot(months, [r["months"][m]["ndcg"] for m in months], style, marker="o", markersize=3, label=rec)
    ax.axhline(0.30, color="black", linewidth=0.6, linestyle=":")
    ax.set_title(f"NDCG@10 per month ({report['cases']} cases)")
    ax.tick_params(axis="x", labelrotation=45)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)
    lines = [f"# Fusion ranker under the EVAL protocol ({report['cases']} cases, sample per month: {report['sample_per_month']})", "",
             "| recommender | HR@10 | Recall@10 | NDCG@10 | discovery HR@10 | discovery NDCG@10 | mean AUC | train s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rec, r in results.items():
        o, d = r["overall"], r["discovery"]["overall"]
        mean_auc = f"{np.mean(list(r['auc'].values())):.3f}" if "auc" in r else "-"
        lines.append(f"| {rec} | {o['hr']:.4f} | {o['recall']:.4f} | {o['ndcg']:.4f} | {d.get('hr', 0):.4f} | {d.get('ndcg', 0):.4f} | {mean_auc} | {r['train_seconds']:.0f} |")
    for title, pick in (("NDCG@10", lambda r, m: r["months"][m]["ndcg"]), ("HR@10", lambda r, m: r["months"][m]["hr"]),
                        ("Recall@10", lambda r, m: r["months"][m]["recall"]),
                        ("discovery NDCG@10", lambda r, m: r["discovery"]["months"].get(m, {}).get("ndcg", float("nan"))),
                        ("AUC (2 bought vs 2 sampled items per case)", lambda r, m: r["auc"][m] if "auc" in r else None)):
        lines += ["", f"{title} per month:", "", "| recommender | " + " | ".join(months) + " |", "| --- " * (len(months) + 1) + "|"]
        for rec, r in results.items():
            if pick(r, months[0]) is not None:
                lines.append(f"| {rec} | " + " | ".join(f"{pick(r, m):.4f}" for m in months) + " |")
    lines += ["", f"Retrieval recall (share of the target among the candidates): {report['retrieval_recall_overall']}", "",
              f"Cost (this machine, CPU): {report['cost']}; shopper-text encoding {report['text_encode_seconds']} s in all; "
              f"candidates+signals {report['retrieval_seconds']} s; wall {report['wall_seconds']} s.", "", f"![NDCG per month]({name}.png)", ""]
    (out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
