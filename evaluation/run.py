"""`make bench-quality`: the EVAL.md protocol over the baselines and the BERT click model.

    python -m evaluation.run [--data PATH] [--sample-per-month 200] [--recommenders ...] [--tag NAME]

PATH is the Online Retail II file (default ../shared/data/...) or a folder with items.csv and
events.csv in the documented format. Writes bench/results/quality-TAG.{json,md,png}.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from evaluation.baselines import CoOccurrence, History, Popularity, RepeatPopularity
from evaluation.metrics import auc, hit_recall_ndcg
from evaluation.protocol import EventArrays, add_months_arguments, build_cases, month_start_seconds, months_of, sample_cases
from evaluation.results import results_dir, work_dir

logger = logging.getLogger(__name__)

RESULTS = results_dir()
K = 10


def load_data(path: Path):
    if path.is_dir():
        from shopdata.interactions import read_dataset

        items, events = read_dataset(path)
        events = events[events["event_type"] == "purchase"]
        return items, events
    from shopdata.uci_retail import load_interactions

    return load_interactions(path)


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "device": "cpu", "processor": platform.processor() or platform.machine()}


def evaluate(rec, cases, ev, history, desc: str) -> dict:
    from tqdm import tqdm

    per_month: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    discovery: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    started = time.perf_counter()
    for case in tqdm(cases, desc=f"  {desc:18s}", unit="case", file=sys.stderr, mininterval=2.0):
        bought = {int(ev.item[p]) for p in history.before(case)}
        ranked = rec.ranked(case, K + len(bought))
        per_month[case.month].append(hit_recall_ndcg(ranked[:K], case.target, K))
        new_target = case.target - bought
        if new_target:
            fresh = [i for i in ranked if i not in bought]
            if len(fresh) < K:
                fresh += [i for i in Popularity(ev).ranked(case, K + len(bought) + len(fresh)) if i not in bought and i not in fresh]
            discovery[case.month].append(hit_recall_ndcg(fresh[:K], frozenset(new_target), K))
    seconds = time.perf_counter() - started

    def table(rows: dict[str, list]) -> dict:
        months = {m: dict(zip(("hr", "recall", "ndcg"), np.mean(v, axis=0).round(4).tolist()), cases=len(v)) for m, v in rows.items()}
        every = [r for v in rows.values() for r in v]
        overall = dict(zip(("hr", "recall", "ndcg"), np.mean(every, axis=0).round(4).tolist()), cases=len(every)) if every else {}
        return {"overall": overall, "months": months}

    return {"name": rec.name, "seconds": round(seconds, 1), **table(per_month), "discovery": table(discovery)}


def main() -> None:
    from shopdata.uci_retail import DEFAULT_PATH

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--sample-per-month", type=int, default=200, help="seeded sample of cases per month; 0 = every case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recommenders", default="popularity,repeat,cooccurrence,bert")
    parser.add_argument("--bert-steps", type=int, default=120, help="fine-tuning steps of the frozen model (batch 16)")
    parser.add_argument("--bert-candidates", type=int, default=20)
    parser.add_argument("--bert-max-length", type=int, default=48)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, Markdown and PNG")
    add_months_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    print(f"loading {args.data}", file=sys.stderr)
    try:
        items, events = load_data(args.data)
    except (ValueError, FileNotFoundError) as exc:  # DatasetError included: file and row, no trace
        raise SystemExit(f"error: {exc}") from None
    ev = EventArrays.from_frame(events)
    months = months_of(args, ev)
    all_cases = build_cases(ev, months)
    if not all_cases:
        raise SystemExit(f"no test cases in months {months[0]}..{months[-1]}: no shopper bought in a test month after buying before it")
    per_month = args.sample_per_month or None
    cases = sample_cases(all_cases, per_month, args.seed)
    history = History(ev)
    print(f"{len(ev.user)} events, {len(ev.user_ids)} users, {ev.n_items} items; {len(all_cases)} cases, evaluating {len(cases)}", file=sys.stderr)

    wanted = args.recommenders.split(",")
    results = []
    if "popularity" in wanted:
        results.append(evaluate(Popularity(ev), cases, ev, history, "popularity-30d"))
    if "repeat" in wanted:
        results.append(evaluate(RepeatPopularity(ev, history), cases, ev, history, "repeat+popularity"))
    cooccurrence = CoOccurrence(ev, history)  # shared with BERT's retrieval: fitted once per month
    if "cooccurrence" in wanted:
        results.append(evaluate(cooccurrence, cases, ev, history, "co-occurrence"))
    extra: dict = {}
    if "bert" in wanted:
        from evaluation.bert import BertReranker, train_frozen_model

        first_month = month_start_seconds(months[0])
        out_dir = work_dir("eval")
        print(f"training the click model on purchases before {months[0]} ({args.bert_steps} steps)", file=sys.stderr)
        model_path, train_s = train_frozen_model(ev, items, first_month, out_dir, args.bert_steps, 16, args.seed)
        bert = BertReranker(ev, history, items, model_path, args.bert_candidates, args.bert_max_length, seed=args.seed, cooccurrence=cooccurrence)
        result = evaluate(bert, cases, ev, history, "bert-rerank")
        result["train_seconds"] = round(train_s, 1)
        result["sequences_scored"] = bert.scored
        months = sorted({m for m, _ in bert.retrieval_hits})
        extra["retrieval_recall"] = {
            "candidates": args.bert_candidates,
            "overall": round(float(np.mean([h for _, h in bert.retrieval_hits])), 4),
            "months": {m: round(float(np.mean([h for mm, h in bert.retrieval_hits if mm == m])), 4) for m in months},
        }
        extra["auc"] = {
            "overall": round(auc([s for _, s in bert.auc_positive], [s for _, s in bert.auc_negative]), 4),
            "months": {m: round(auc([s for mm, s in bert.auc_positive if mm == m], [s for mm, s in bert.auc_negative if mm == m]), 4) for m in months},
        }
        extra["bert"] = {"model": model_path.name, "train_steps": args.bert_steps, "max_length": args.bert_max_length,
                         "trained_on": f"purchases before {months[0]}-01 (frozen: never updated)"}
        results.append(result)

    tag = args.tag or (f"sample{per_month}" if per_month else "full")
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": str(args.data),
        "machine": machine(),
        "protocol": "EVAL.md monthly test-then-train, K=10",
        "cases_total": len(all_cases),
        "cases_evaluated": len(cases),
        "sample_per_month": per_month,
        "seed": args.seed,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "recommenders": results,
        **extra,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"quality-{tag}.json").write_text(json.dumps(report, indent=2))
    from evaluation.report import write_markdown, write_plot

    write_plot(report, args.out / f"quality-{tag}.png")
    md = write_markdown(report, args.out / f"quality-{tag}.md", f"quality-{tag}.png")
    print(md)


if __name__ == "__main__":
    main()
