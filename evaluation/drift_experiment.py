"""`make bench-drift`: does lifelong learning recover from a drift that a frozen model cannot follow?

A controlled experiment on the season-change shop (shopdata.synthetic.generate_season_change): on one
day every shopper's favourite categories move to their partners, so what a shopper did before predicts
what they do after only through a mapping that has to be learnt from behaviour after the change.

Every arm trains through the worker's own code (`workers.publishing.train_and_publish` with the
registry's fusion ranker: list building, replay, the gate, a published version in a model repository)
on one event log holding the shop's impressions, clicks and purchases:

- frozen: version 1, trained on the warm-up weeks, never updated;
- lifelong: the serving version fine-tuned at every period boundary on the period just ended plus
  replayed older baskets, promoted only when the gate passes (as the beat schedule does);
- drift-triggered: the same fine-tune, run only when the worker's drift check
  (workers.scheduled.drift_detected, what RECSYS_FINE_TUNE_CADENCE=drift runs on beat) finds the serving
  version's NDCG@10 on the newest baskets since its last check more than `--drift-threshold` below its
  own record (core.drift.performance_drop). The label-free statistic, the Jensen-Shannon
  divergence of the items shoppers interacted with (core.drift.item_divergence), is reported beside it:
  a season change that swaps tastes between shoppers leaves the shop's item mix almost unchanged, so
  it cannot see this drift;
- full retrain: at every boundary a new model from the pretrained encoder on the newest baskets.

Each period's baskets (a seeded sample) are ranked by every arm's serving version with the ranker's
own list building (shopper history, co-purchase and popularity as they were just before each basket);
NDCG@10 over all baskets and over discovery baskets (items the shopper never interacted with before),
plus repeat+popularity on the same lists. Compute per arm: training wall seconds and trainings run.
JSON, Markdown and PNG under bench/results/.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from core.domain import INTEREST_EVENTS
from core.drift import item_divergence, performance_drop
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from evaluation.ranker_data import repeat_then_popular
from evaluation.results import work_dir
from evaluation.run import RESULTS, machine
from rankers import get_ranker
from rankers.base import TrainingRun
from rankers.fusion.co_purchase import fit_neighbours
from rankers.fusion.lists import baskets_of, build_lists
from rankers.fusion.network import RankingList, build_text_encoder, load_fusion, score_list
from rankers.fusion.training import embed_lists
from rankers.metrics import list_ndcg
from shopdata.synthetic import SEASON_SHIFT, generate_season_change
from workers.publishing import train_and_publish
from workers.scheduled import drift_detected, quality_record

DAY = 86400.0
ARMS = ("frozen", "lifelong", "drift-triggered", "full retrain")


class Arm:
    """One way of keeping the model up to date: its own model repository and serving version."""

    def __init__(self, name: str, root: Path, log: EventLog, drift_threshold: float) -> None:
        self.name = name
        self.settings = Settings(data_dir=root / name.replace(" ", "-"), model_repository=root / name.replace(" ", "-") / "models",
                                 ranker="fusion", train_device="cpu", drift_ndcg_drop=max(0.0, drift_threshold))
        self.ranker = get_ranker("fusion")
        self.repo = ModelRepository(self.settings.model_repository, self.ranker.model_name)
        self.log = log
        self.serving: int | None = None
        self.trained_until = float("-inf")  # the end of the data the serving version learnt from
        self.seconds = 0.0  # training, gate and publishing
        self.check_seconds = 0.0  # drift checks (the drift-triggered arm)
        self.trainings = 0
        self.decisions: list[str] = []
        self._models: dict[int, Any] = {}

    def train(self, parent: int | None, since: float, until: float, max_examples: int, seed: int) -> None:
        started = time.perf_counter()
        run = TrainingRun(self.settings, self.log, self.repo, parent=parent, since=since, until=until,
                          job_id=f"{self.name}-{int(until)}", max_examples=max_examples, seed=seed)
        version, lineage = train_and_publish(run, self.ranker, load_in_triton=False)
        self.seconds += time.perf_counter() - started
        self.trainings += 1
        passed = bool(lineage.gate["passed"])
        self.decisions.append(f"{day_of(until):.0f}: {'promoted' if passed else 'rejected'} v{version}: {lineage.gate['reason'][:200]}")
        if passed:
            self.serving = version
            self.trained_until = until

    def adopt(self, other: "Arm") -> None:
        """Start from `other`'s serving version (the same version 1 for every arm)."""
        assert other.serving is not None
        source = other.repo.version_dir(other.serving)
        lineage = other.repo.lineage(other.serving)
        assert lineage is not None
        version = self.repo.publish(lambda folder: _copy_files(source, folder),
                                    lineage, tag=f"{self.name}-adopt")
        self.repo.pin(version)
        self.serving, self.trained_until = version, other.trained_until

    def model(self) -> Any:
        assert self.serving is not None
        if self.serving not in self._models:
            self._models[self.serving] = load_fusion(self.repo.model_path(self.serving))[1]
        return self._models[self.serving]


T0 = 0.0


def day_of(t: float) -> float:
    return (t - T0) / DAY


def discovery_lists(lists: Sequence[RankingList]) -> list[RankingList]:
    """The same lists with only never-interacted items as targets (signal 0 is "bought before")."""
    out = []
    for r in lists:
        labels = r.labels * (r.signals[:, 0] == 0)
        if labels.sum() > 0:
            out.append(RankingList(r.user_embedding, r.item_embeddings, r.signals, labels.astype(np.float32)))
    return out


def mean_ndcg(scores_of, lists: Sequence[RankingList]) -> float:
    values = [list_ndcg(scores_of(r), r.labels) for r in lists if r.labels.sum() > 0]
    return round(float(np.mean(values)), 4) if values else float("nan")


def repeat_popularity(r: RankingList) -> np.ndarray:
    return repeat_then_popular(r.signals)


def main() -> None:
    global T0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=126)
    parser.add_argument("--change-day", type=float, default=63.0)
    parser.add_argument("--period-days", type=float, default=7.0, help="how often the lifelong arm fine-tunes (and the evaluation period)")
    parser.add_argument("--warmup-days", type=float, default=28.0, help="version 1 learns from these first days")
    parser.add_argument("--bootstrap-lists", type=int, default=3000)
    parser.add_argument("--train-lists", type=int, default=800, help="newest baskets a fine-tune learns from (plus as many replayed)")
    parser.add_argument("--retrain-lists", type=int, default=3000, help="newest baskets a full retrain learns from")
    parser.add_argument("--eval-lists", type=int, default=400, help="seeded sample of each period's baskets ranked by every arm")
    parser.add_argument("--drift-threshold", type=float, default=0.03,
                        help="NDCG@10 drop below the serving version's own record that triggers the drift-triggered arm's fine-tune "
                             "(RECSYS_DRIFT_NDCG_DROP; negative: fine-tune at every boundary)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="drift-synthetic")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=work_dir("drift-experiment"), help="event log and model repositories (emptied first)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    shop = generate_season_change(n_users=args.users, n_days=args.days, change_day=args.change_day, seed=11 + args.seed)
    T0 = min(e.timestamp for e in shop.events)
    T0 -= T0 % DAY
    root = args.work_dir
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log = EventLog.open(f"sqlite:///{root / 'eventlog.db'}")
    log.catalogue.upsert(shop.items)
    log.events.append(shop.events)
    interest = [e for e in shop.events if e.event_type in INTEREST_EVENTS]
    arms = {name: Arm(name, root, log, args.drift_threshold) for name in ARMS}
    boundaries = list(np.arange(T0 + args.warmup_days * DAY, T0 + args.days * DAY + 1, args.period_days * DAY))
    print(f"{shop.name}: {len(shop.items)} items, {len(shop.events)} events ({len(interest)} interest events), "
          f"change on day {args.change_day:.0f}; version 1 on days 0..{args.warmup_days:.0f}", file=sys.stderr)
    arms["frozen"].train(None, float("-inf"), boundaries[0], args.bootstrap_lists, args.seed)
    for name in ARMS[1:]:
        arms[name].adopt(arms["frozen"])

    encoder = build_text_encoder()
    rng = random.Random(args.seed)
    periods: list[dict[str, Any]] = []
    for start, end in zip(boundaries, boundaries[1:]):
        t = time.perf_counter()
        events = [e for e in shop.events if e.timestamp < end]
        baskets = [b for b in baskets_of(events) if b[1] >= start]
        chosen = {(u, ts) for u, ts, _ in rng.sample(baskets, min(len(baskets), args.eval_lists))}
        table = fit_neighbours(items for _, ts, items in baskets_of(events) if ts < start)
        lists = embed_lists(encoder, build_lists(events, shop.items, chosen, table, size=len(shop.items)), shop.items)
        new_lists = discovery_lists(lists)
        row: dict[str, Any] = {"start_day": round(day_of(start), 1), "end_day": round(day_of(end), 1), "lists": len(lists),
                               "discovery_lists": len(new_lists), "ndcg": {}, "discovery_ndcg": {}, "serving": {}}
        for name, arm in arms.items():
            model = arm.model()
            score = lambda r, m=model: score_list(m, r.user_embedding, r.item_embeddings, r.signals)  # noqa: E731
            row["ndcg"][name], row["discovery_ndcg"][name] = mean_ndcg(score, lists), mean_ndcg(score, new_lists)
            row["serving"][name] = arm.serving
        row["ndcg"]["repeat+popularity"] = mean_ndcg(repeat_popularity, lists)
        row["discovery_ndcg"]["repeat+popularity"] = mean_ndcg(repeat_popularity, new_lists)
        # What each arm does at the boundary, after the period was served.
        drifted = arms["drift-triggered"]
        row["item_divergence"] = round(item_divergence(interest, (start, end), (start - args.period_days * DAY, start)), 4)
        checked, check_started = drifted.serving, time.perf_counter()
        row["drift_triggered"] = drift_detected(drifted.settings, log, drifted.ranker, now=end) or args.drift_threshold < 0
        drifted.check_seconds += time.perf_counter() - check_started
        assert checked is not None
        row["drift"] = round(performance_drop(quality_record(drifted.settings, drifted.ranker).series(checked)), 4)
        arms["lifelong"].train(arms["lifelong"].serving, start, end, args.train_lists, args.seed)
        if row["drift_triggered"]:
            drifted.train(drifted.serving, drifted.trained_until, end, args.train_lists, args.seed)
        arms["full retrain"].train(None, float("-inf"), end, args.retrain_lists, args.seed)
        periods.append(row)
        print(f"days {row['start_day']:.0f}-{row['end_day']:.0f}: NDCG " + ", ".join(f"{k} {v:.3f}" for k, v in row["ndcg"].items())
              + f"; NDCG drop {row['drift']:.3f}, item JS {row['item_divergence']:.3f}{' (fine-tune)' if row['drift_triggered'] else ''} ({time.perf_counter() - t:.0f}s)", file=sys.stderr)

    after = [p for p in periods if p["start_day"] >= args.change_day]
    before = [p for p in periods if p["end_day"] <= args.change_day]
    summary = {name: {"before_change": mean_of(before, "ndcg", name), "after_change": mean_of(after, "ndcg", name),
                      "discovery_after_change": mean_of(after, "discovery_ndcg", name),
                      "train_seconds": round(arms[name].seconds, 1) if name in arms else 0.0,
                      "check_seconds": round(arms[name].check_seconds, 1) if name in arms else 0.0,
                      "trainings": arms[name].trainings if name in arms else 0}
               for name in (*ARMS, "repeat+popularity")}
    report = {"machine": machine(), "settings": vars(args) | {"out": str(args.out), "work_dir": str(args.work_dir)}, "shop": {"items": len(shop.items), "events": len(shop.events),
              "interest_events": len(interest), "season_shift": SEASON_SHIFT}, "periods": periods, "summary": summary,
              "decisions": {name: arm.decisions for name, arm in arms.items()}, "wall_seconds": round(time.perf_counter() - started, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.tag}.json").write_text(json.dumps(report, indent=2))
    write_outputs(report, args.out / args.tag)


def mean_of(periods: list[dict], key: str, name: str) -> float:
    values = [p[key][name] for p in periods if p[key][name] == p[key][name]]
    return round(float(np.mean(values)), 4) if values else float("nan")


def write_outputs(report: dict, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    periods, s = report["periods"], report["settings"]
    x = [(p["start_day"] + p["end_day"]) / 2 for p in periods]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, title in ((axes[0], "ndcg", "NDCG@10 per week"), (axes[1], "discovery_ndcg", "discovery NDCG@10 per week")):
        for name in (*ARMS, "repeat+popularity"):
            ax.plot(x, [p[key][name] for p in periods], "--" if name == "repeat+popularity" else "-", marker="o", markersize=3, label=name)
        ax.axvline(s["change_day"], color="black", linewidth=0.8, linestyle=":")
        ax.set_title(title)
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[2].bar(x, [p["drift"] for p in periods], width=s["period_days"] * 0.8,
                color=["tab:red" if p["drift_triggered"] else "tab:gray" for p in periods], label="NDCG@10 drop of the serving version")
    axes[2].plot(x, [p["item_divergence"] for p in periods], color="tab:blue", marker="o", markersize=3, label="item JS divergence (bits)")
    axes[2].axhline(s["drift_threshold"], color="black", linewidth=0.8, linestyle="--")
    axes[2].axvline(s["change_day"], color="black", linewidth=0.8, linestyle=":")
    axes[2].set_title("drift statistics; red: the drift-triggered arm fine-tuned")
    axes[2].set_xlabel("day")
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Season change on day {s['change_day']:.0f}: every shopper's favourite categories move to their partners")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    plt.close(fig)
    names = (*ARMS, "repeat+popularity")
    lines = [f"# Lifelong vs frozen on a controlled drift (synthetic season change on day {s['change_day']:.0f})", "",
             f"{report['shop']['items']} items, {s['users']} shoppers, {report['shop']['events']} events "
             f"({report['shop']['interest_events']} clicks and purchases) over {s['days']} days; version 1 trained on days 0-{s['warmup_days']:.0f}; "
             f"{s['eval_lists']} sampled baskets ranked per {s['period_days']:.0f}-day period by every arm (the whole catalogue is the candidate list).", "",
             "| arm | NDCG@10 before the change | NDCG@10 after | discovery NDCG@10 after | trainings | training s | drift checks s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        r = report["summary"][name]
        lines.append(f"| {name} | {r['before_change']:.4f} | {r['after_change']:.4f} | {r['discovery_after_change']:.4f} | {r['trainings']} | {r['train_seconds']:.0f} | {r['check_seconds']:.0f} |")
    lines += ["", "NDCG@10 per period (days):", "", "| arm | " + " | ".join(f"{p['start_day']:.0f}-{p['end_day']:.0f}" for p in periods) + " |",
              "| --- " * (len(periods) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{p['ndcg'][name]:.3f}" for p in periods) + " |" for name in names]
    lines += ["| NDCG@10 drop (drift-triggered) | " + " | ".join(f"{p['drift']:.3f}{'*' if p['drift_triggered'] else ''}" for p in periods) + " |",
              "| item JS divergence (bits) | " + " | ".join(f"{p['item_divergence']:.3f}" for p in periods) + " |", "",
              f"\\* the drift-triggered arm fine-tuned at the end of that period (threshold {s['drift_threshold']}; the drop is the worker's "
              f"drift check: the serving version's NDCG@10 on the newest baskets since its last check, below its own record). "
              f"Wall {report['wall_seconds']:.0f} s.", "",
              "Gate decisions:", ""]
    for name, decisions in report["decisions"].items():
        lines += [f"- {name}: " + ("; ".join(decisions) if decisions else "none")]
    lines += ["", f"![drift experiment]({stem.name}.png)", ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))



def _copy_files(source: Path, folder: Path) -> None:
    for f in source.iterdir():
        if f.is_file():
            shutil.copy2(f, folder / f.name)

if __name__ == "__main__":
    main()
