"""`make bench-fusion-served`: the fusion ranker under the EVAL protocol through the production code
path end to end, as a replay of the shop's history:

- the purchases go into a real event log (SQLite) with the catalogue;
- at the first test month the worker's training and publishing (`workers.publishing.train_and_publish` with
  the registry's fusion ranker) trains version 1 on events before it; at every later month boundary the same function fine-tunes the
  serving version on the month just ended plus replayed older baskets, gates it and publishes it into a
  Triton model repository with its own co-purchase table (a rejected candidate is not used);
- each test case is ranked as Triton's `fusion_click/model.py` would: candidates and signals built by the
  worker's list builder (the shop as it was just before the invoice, the co-purchase table the version
  was published with), texts encoded by the published TorchScript `model.pt` (items from its catalogue
  table), probabilities from that same file.

Writes bench/results/fusion-served.{json,md}. Compare with `make bench-fusion` (the research harness).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clickmodel.fusion import item_cache_key
from clickmodel.text import USER_TEXT_LENGTH, item_text
from clickmodel.tokenizer import encode_texts
from core.domain import Event
from core.model_repository import ModelRepository
from core.settings import PROJECT_ROOT, Settings
from core.store import EventLog
from evaluation.baselines import History, Popularity, RepeatPopularity
from evaluation.bert import catalogue_text
from evaluation.protocol import TEST_MONTHS, Case, EventArrays, build_cases, month_start_seconds, sample_cases
from evaluation.run import RESULTS, evaluate, load_data, machine
from rankers import get_ranker
from rankers.base import TrainingRun
from rankers.fusion import CO_PURCHASE_FILE, ITEM_TABLE
from rankers.fusion.lists import build_lists
from shopdata.uci_retail import DEFAULT_PATH
from workers.publishing import train_and_publish


class ServedFusion:
    """Ranks each month's cases with the version serving that month, as the Triton model does."""

    name = "fusion (served, worker-trained)"

    def __init__(self, ev: EventArrays) -> None:
        self.ev = ev
        self.popularity = Popularity(ev)
        self.ranked_by_case: dict[tuple[int, int], list[int]] = {}
        self.index = {str(i): k for k, i in enumerate(ev.item_ids)}
        self._keys: dict[str, bytes] = {}

    def score_month(self, model_path: Path, events: list[Event], catalogue, cases: list[Case], table: dict) -> None:  # type: ignore[no-untyped-def]
        model = torch.jit.load(str(model_path)).eval()
        data = torch.load(model_path.parent / ITEM_TABLE)
        items = dict(zip(data["keys"], data["vectors"]))
        chosen = {(str(self.ev.user_ids[c.user]), float(c.ts)) for c in cases}
        specs = {(s.user_id, s.timestamp): s for s in build_lists(events, catalogue, chosen, table)}
        with torch.inference_mode():
            for c in cases:
                s = specs.get((str(self.ev.user_ids[c.user]), float(c.ts)))
                if s is None:
                    continue
                enc = encode_texts([s.user_text], USER_TEXT_LENGTH)
                user = model.encode(torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"]))
                vectors = torch.stack([items[self.key_of(catalogue, i)] for i in s.candidates])
                probs = model(user.expand(len(s.candidates), -1), vectors, torch.from_numpy(s.signals))[:, 0].numpy()
                self.ranked_by_case[(c.user, c.ts)] = [self.index[s.candidates[j]] for j in np.argsort(-probs, kind="stable")]

    def key_of(self, catalogue, item_id: str) -> bytes:  # type: ignore[no-untyped-def]
        """The item's cache key in the version's table: its text's token ids (as model.py keys them)."""
        if item_id not in self._keys:
            self._keys[item_id] = item_cache_key(item_text(catalogue[item_id]))
        return self._keys[item_id]

    def ranked(self, case: Case, limit: int) -> list[int]:
        out = list(self.ranked_by_case.get((case.user, case.ts), []))
        have = set(out)
        return (out + [i for i in self.popularity.ranked(case, limit + len(have)) if i not in have])[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--sample-per-month", type=int, default=0, help="0 = every case")
    parser.add_argument("--bootstrap-lists", type=int, default=4000)
    parser.add_argument("--monthly-lists", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    items, events_frame = load_data(args.data)
    ev = EventArrays.from_frame(events_frame)
    history = History(ev)
    catalogue = catalogue_text(items)
    events = [Event(f"e{p}", str(ev.user_ids[u]), str(ev.item_ids[i]), "purchase", float(t))
              for p, (u, i, t) in enumerate(zip(ev.user, ev.item, ev.ts))]
    root = PROJECT_ROOT / "var" / "fusion-served"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    settings = Settings(data_dir=root, model_repository=root / "triton_models", ranker="fusion", train_device="cpu")
    log = EventLog.open(settings.eventlog)
    log.catalogue.upsert(catalogue)
    print(f"replaying {len(events)} purchases into the event log", file=sys.stderr)
    log.events.append(events)
    ranker = get_ranker("fusion")
    repo = ModelRepository(settings.model_repository, ranker.model_name)
    cases = sample_cases(build_cases(ev), args.sample_per_month or None, 0)
    served = ServedFusion(ev)
    decisions, train_seconds, serving, since = {}, 0.0, None, float("-inf")
    for month in TEST_MONTHS:
        boundary = float(month_start_seconds(month))
        t = time.perf_counter()
        run = TrainingRun(settings, log, repo, parent=serving, since=since, until=boundary, job_id=f"replay-{month}",
                          max_examples=args.bootstrap_lists if serving is None else args.monthly_lists,
                          stage=lambda text, month=month: print(f"  {month}: {text}", file=sys.stderr))
        version, lineage = train_and_publish(run, ranker, load_in_triton=False)
        train_seconds += time.perf_counter() - t
        decisions[month] = ("promoted" if lineage.gate["passed"] else "rejected") + f" v{version}: {lineage.gate['reason'][:160]}"
        print(f"{month}: {decisions[month]} ({time.perf_counter() - t:.0f}s)", file=sys.stderr)
        if lineage.gate["passed"]:
            serving = version
        since = boundary
        month_cases = [c for c in cases if c.month == month]
        next_boundary = float(month_start_seconds(TEST_MONTHS[TEST_MONTHS.index(month) + 1])) if month != TEST_MONTHS[-1] else float(ev.ts[-1]) + 1
        table = {a: [(b, float(w)) for b, w in nbs] for a, nbs in json.loads((repo.version_dir(serving) / CO_PURCHASE_FILE).read_text()).items()}  # type: ignore[arg-type]
        month_events = [e for e in events if e.timestamp < next_boundary]
        served.score_month(repo.model_path(serving), month_events, catalogue, month_cases, table)  # type: ignore[arg-type]
    results = {r.name: evaluate(r, cases, ev, history, r.name[:18]) for r in (RepeatPopularity(ev, history), served)}
    report = {"machine": machine(), "cases": len(cases), "settings": vars(args) | {"data": str(args.data)}, "decisions": decisions,
              "train_seconds": round(train_seconds, 1), "results": results, "wall_seconds": round(time.perf_counter() - started, 1),
              "ranked_cases": len(served.ranked_by_case)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fusion-served.json").write_text(json.dumps(report, indent=2, default=str))
    months = TEST_MONTHS
    lines = [f"# Fusion ranker through the worker and the served artifact ({len(cases)} cases, replay of the shop's history)", "",
             "| recommender | HR@10 | Recall@10 | NDCG@10 | discovery HR@10 | discovery NDCG@10 |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        o, d = r["overall"], r["discovery"]["overall"]
        lines.append(f"| {name} | {o['hr']:.4f} | {o['recall']:.4f} | {o['ndcg']:.4f} | {d.get('hr', 0):.4f} | {d.get('ndcg', 0):.4f} |")
    lines += ["", "| NDCG@10 | " + " | ".join(months) + " |", "| --- " * (len(months) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{r['months'][m]['ndcg']:.4f}" for m in months) + " |" for name, r in results.items()]
    lines += ["", f"Training (bootstrap + 11 monthly fine-tunes, with list building, text encoding and gates): {train_seconds:.0f} s; "
              f"wall {report['wall_seconds']:.0f} s; cases ranked by the model: {report['ranked_cases']} of {len(cases)}.", "", "Gate decisions:", ""]
    lines += [f"- {m}: {d}" for m, d in decisions.items()]
    lines += ["", "![NDCG per month](fusion-served.png)"]
    (RESULTS / "fusion-served.md").write_text("\n".join(lines) + "\n")
    write_plot(report)
    print("\n".join(lines))


def write_plot(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (title, key) in zip(axes, (("NDCG@10", None), ("discovery NDCG@10", "discovery"))):
        for name, r in report["results"].items():
            months = r["months"] if key is None else r[key]["months"]
            ax.plot(list(months), [v["ndcg"] for v in months.values()], marker="o", markersize=3, label=name)
        ax.set_title(f"{title} per month ({report['cases']} cases)")
        ax.tick_params(axis="x", labelrotation=45)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "fusion-served.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
