"""`make bench-fusion-served`: the fusion ranker under the EVAL protocol through the production path
end to end, as a replay of the shop's history:

- the purchases go into a real event log (SQLite) with the catalogue: the training log;
- at the first test month the worker's training and publishing (`workers.publishing.train_and_publish`
  with the registry's fusion ranker) trains version 1 on events before it; at every later month boundary
  the same function fine-tunes the serving version on the month just ended plus replayed older baskets,
  gates it, publishes it into a Triton model repository with its own co-purchase table, materialises
  that table into Feast, and a real tritonserver loads it (a rejected candidate is not served);
- a second event log is replayed in time order up to each test case through the feedback service's
  own feature sync (core.feature_sync): shopper history and interests and the batch items' popularity
  pushed to a real Feast store after every batch, every item's popularity and the shop's clock and
  popular list refreshed once per replayed day (production refreshes every 30 s of wall time);
- each case is answered by the scoring service's own pipeline (ranking.pipeline, in process; the
  router picks the primary version Triton serves): the ranker reads the shopper, shop and candidates
  from Feast, retrieves up to 100 candidates, and one request to the tritonserver scores them with the
  serving version. Nothing reads the event log per case.

Three arms on the same cases (`--arm`): `lifelong` (version 1, then a gated fine-tune of the serving version
at every month boundary), `frozen` (version 1 serves every month) and `retrain` (at every month boundary a
new version from the pretrained towers, not from the serving one, on every basket so far, or the newest
`--retrain-lists`: what a shop that retrains in full each month would serve; its versions replace the
serving one ungated, as a bootstrap does).

Writes bench/results/fusion-served.{json,md,png} (fusion-served-frozen.*, fusion-served-retrain.* for the other
arms) and, once the arms exist for the same cases, fusion-served-ablation.md. Compare with `make bench-fusion`
(the research harness).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.domain import Event, ItemText
from core.feature_sync import FeatureSync
from core.features import FeatureClient, apply
from core.model_repository import ModelRepository
from core.security import triton_control_key
from core.settings import Settings
from core.store import EventLog
from core.triton_client import triton_client
from devtools import triton_launcher
from evaluation.baselines import History, Popularity, RepeatPopularity
from evaluation.bert import catalogue_text
from evaluation.protocol import Case, EventArrays, add_months_arguments, build_cases, month_start_seconds, months_of, sample_cases
from evaluation.results import work_dir
from evaluation.run import RESULTS, evaluate, load_data, machine
from rankers import get_ranker
from rankers.base import TrainingRun
from ranking.pipeline import RankingPipeline
from ranking.routing import Router
from shopdata.uci_retail import DEFAULT_PATH
from workers.publishing import serve, train_and_publish

DAY = 86400.0
ARMS = {"lifelong": "fusion-served", "frozen": "fusion-served-frozen", "retrain": "fusion-served-retrain"}  # arm -> its results file


class ServedFusion:
    """Ranks each case through the scoring service's pipeline with features replayed into Feast."""

    name = "fusion (served: Feast + Triton)"

    def __init__(self, ev: EventArrays, events: list[Event], live: EventLog, features: FeatureClient, pipeline: RankingPipeline) -> None:
        self.ev = ev
        self.events = events
        self.live = live
        self.pipeline = pipeline
        self.router = Router(pipeline.triton)
        self.features = features
        self.replayed_until = float("-inf")
        self.sync = FeatureSync(live, features, refresh_s=DAY, timer=lambda: self.replayed_until)
        self.next_event = 0
        self.popularity = Popularity(ev)
        self.ranked_by_case: dict[tuple[int, int], list[int]] = {}
        self.index = {str(i): k for k, i in enumerate(ev.item_ids)}
        self.degraded = 0
        self.candidates = 0

    def replay_until(self, t: float) -> None:
        """Append every event strictly before `t` to the live log and sync the online store, as the
        feedback service does after a batch."""
        end = int(np.searchsorted(self.ev.ts, t, side="left"))
        if end <= self.next_event:
            return
        batch = self.events[self.next_event:end]
        self.next_event = end
        self.live.events.append(batch)
        self.replayed_until = float(self.ev.ts[end - 1])
        self.sync.after_batch({e.user_id for e in batch}, {e.item_id for e in batch})

    def score_month(self, cases: list[Case], month: str) -> None:
        self.pipeline.triton.forget_version()
        for c in tqdm(sorted(cases, key=lambda c: (c.ts, c.user)), desc=f"  {month} served", unit="case", file=sys.stderr, mininterval=5):
            self.replay_until(float(c.ts))
            version = self.router.route("").version  # the primary version (no experiment runs here)
            shopper = self.pipeline.shopper(str(self.ev.user_ids[c.user]), version)
            candidates = self.pipeline.ranker.retrieve(shopper, 100)  # EVAL.md: the ranker's 100, no top-up
            if not candidates:
                continue
            reply = self.pipeline.rank(shopper, candidates, f"case-{c.user}-{c.ts}", version, allow_unknown=True)
            self.degraded += int(reply.degraded)
            self.candidates += len(reply.items)
            self.ranked_by_case[(c.user, c.ts)] = [self.index[i.item_id] for i in reply.items]

    def ranked(self, case: Case, limit: int) -> list[int]:
        out = list(self.ranked_by_case.get((case.user, case.ts), []))
        have = set(out)
        return (out + [i for i in self.popularity.ranked(case, limit + len(have)) if i not in have])[:limit]


class Replay:
    """The shop's history replayed month by month through the worker (training, gate, publishing) and
    the request path (Feast + tritonserver + the scoring servicer)."""

    def __init__(self, args: argparse.Namespace, settings: Settings, log: EventLog, ev: EventArrays, events: list[Event],
                 catalogue: dict[str, ItemText]) -> None:
        self.args, self.settings, self.log, self.ev, self.events = args, settings, log, ev, events
        self.ranker = get_ranker("fusion")
        self.repo = ModelRepository(settings.model_repository, self.ranker.model_name)
        apply(settings)
        self.features = FeatureClient(settings)
        self.features.push_items(catalogue)
        self.live = EventLog.open(f"sqlite:///{settings.data_dir / 'live-eventlog.db'}")  # what the feedback service saw
        self.live.catalogue.upsert(catalogue)
        self.triton: triton_launcher.TritonServer | None = None
        self.served: ServedFusion | None = None
        self.serving: int | None = None
        self.since = float("-inf")
        self.decisions: dict[str, str] = {}
        self.train_seconds = 0.0

    def month(self, month: str, cases: list[Case]) -> None:
        """Train (or fine-tune) at the month boundary, serve the result if it passed, answer the month's cases."""
        boundary = float(month_start_seconds(month))
        if self.args.arm == "frozen" and self.serving is not None:  # the frozen arm: version 1 serves every month
            self.decisions[month] = f"frozen: v{self.serving} kept (no fine-tune)"
            assert self.served is not None
            self.served.score_month([c for c in cases if c.month == month], month)
            return
        t = time.perf_counter()
        if self.args.arm == "retrain":  # from the pretrained towers on everything so far (or the newest retrain_lists)
            parent, since, size = None, float("-inf"), self.args.retrain_lists or len(self.events)
        else:
            parent, since = self.serving, self.since
            size = self.args.bootstrap_lists if self.serving is None else self.args.monthly_lists
        run = TrainingRun(self.settings, self.log, self.repo, parent=parent, since=since, until=boundary, job_id=f"replay-{month}",
                          max_examples=size, stage=lambda text: print(f"  {month}: {text}", file=sys.stderr))
        version, lineage = train_and_publish(run, self.ranker, features=self.features, load_in_triton=self.triton is not None)
        self.train_seconds += time.perf_counter() - t
        self.decisions[month] = ("promoted" if lineage.gate["passed"] else "rejected") + f" v{version}: {lineage.gate['reason'][:160]}"
        print(f"{month}: {self.decisions[month]} ({time.perf_counter() - t:.0f}s)", file=sys.stderr)
        if lineage.gate["passed"]:
            self.serving = version
        self.since = boundary
        if self.served is None:  # version 1 is on disk: start the real server on the repository
            assert self.serving is not None
            self.triton = triton_launcher.start(self.settings.model_repository, self.settings.data_dir / "tritonserver.log",
                                                models=(self.ranker.model_name,), control_key=triton_control_key(self.settings))
            self.settings = self.settings.model_copy(update={"triton_grpc_url": self.triton.grpc_url})
            serve(self.settings, self.repo, self.serving, load_in_triton=True)
            client = triton_client(self.settings, self.ranker.model_name, timeout_s=30.0)
            # cases are answered by the scoring pipeline with the replay's own ids: no pseudonyms needed
            pipeline = RankingPipeline(self.settings, self.features, client, self.ranker)
            self.served = ServedFusion(self.ev, self.events, self.live, self.features, pipeline)
            if self.args.arm != "lifelong":
                self.served.name = f"fusion {self.args.arm} (served: Feast + Triton)"
        self.served.score_month([c for c in cases if c.month == month], month)

    def close(self) -> None:
        if self.triton is not None:
            self.triton.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--sample-per-month", type=int, default=0, help="0 = every case")
    parser.add_argument("--bootstrap-lists", type=int, default=4000)
    parser.add_argument("--monthly-lists", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arm", choices=ARMS, default="lifelong", help="see above")
    parser.add_argument("--frozen", action="store_true", help="the same as --arm frozen")
    parser.add_argument("--retrain-lists", type=int, default=0,
                        help="--arm retrain: train each month on the newest this many baskets so far (0: every basket so far)")
    parser.add_argument("--text-tower", choices=["frozen", "top_layer"], default=None,
                        help="the item tower of every trained version (RECSYS_TEXT_TOWER; default: the setting's)")
    parser.add_argument("--text-tower-steps", type=int, default=None, help="RECSYS_TEXT_TOWER_STEPS")
    parser.add_argument("--distill-weight", type=float, default=None,
                        help="RECSYS_DISTILL_WEIGHT: a fine-tune's distillation from its parent on replayed lists")
    parser.add_argument("--tables", action="store_true", help="only rewrite the ablation and validation tables from the files there")
    parser.add_argument("--tag", default="", help="results file name under bench/results/ (default fusion-served, or fusion-served-ARM)")
    add_months_arguments(parser)
    args = parser.parse_args()
    if args.frozen:
        args.arm = "frozen"
    args.tag = args.tag or ARMS[args.arm]
    if args.tables:
        write_ablation(RESULTS)
        write_validation_table(RESULTS)
        return
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    items, events_frame = load_data(args.data)
    ev = EventArrays.from_frame(events_frame)
    months = months_of(args, ev)
    history = History(ev)
    catalogue = catalogue_text(items)
    events = [Event(f"e{p}", str(ev.user_ids[u]), str(ev.item_ids[i]), "purchase", float(t))
              for p, (u, i, t) in enumerate(zip(ev.user, ev.item, ev.ts))]
    root = work_dir("fusion-served")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    tower = {k: v for k, v in (("text_tower", args.text_tower), ("text_tower_steps", args.text_tower_steps),
                               ("distill_weight", args.distill_weight)) if v is not None}
    settings = Settings(data_dir=root, model_repository=root / "triton_models", ranker="fusion", train_device="cpu", **tower)
    log = EventLog.open(settings.eventlog)
    log.catalogue.upsert(catalogue)
    print(f"replaying {len(events)} purchases into the event log", file=sys.stderr)
    log.events.append(events)
    cases = sample_cases(build_cases(ev, months), args.sample_per_month or None, 0)
    replay = Replay(args, settings, log, ev, events, catalogue)
    try:
        for month in months:
            replay.month(month, cases)
    finally:
        replay.close()
    served = replay.served
    assert served is not None
    results = {r.name: evaluate(r, cases, ev, history, r.name[:18]) for r in (RepeatPopularity(ev, history), served)}
    report = {"machine": machine(), "cases": len(cases), "settings": vars(args) | {"data": str(args.data), "text_tower": settings.text_tower,
                                                                             "text_tower_steps": settings.text_tower_steps,
                                                                             "distill_weight": settings.distill_weight,
                                                                             "gate_ndcg_tolerance": settings.gate_ndcg_tolerance,
                                                                             "gate_confidence": settings.gate_confidence,
                                                                             "replay_ratio": settings.replay_ratio},
              "decisions": replay.decisions,
              "train_seconds": round(replay.train_seconds, 1), "results": results, "wall_seconds": round(time.perf_counter() - started, 1),
              "months": months, "ranked_cases": len(served.ranked_by_case), "degraded_answers": served.degraded,
              "mean_candidates": round(served.candidates / max(1, len(served.ranked_by_case)), 1)}
    write_report(report, cases)
    write_ablation(RESULTS)
    write_validation_table(RESULTS)


LABELS = {"lifelong": "lifelong (monthly fine-tunes)", "frozen": "frozen (version 1 only)",
          "retrain": "full retrain (every month, every basket so far)"}  # arm -> its row in the ablation table


def _served(report: dict) -> dict:
    """The served ranker's results in a report (the one beside repeat+popularity)."""
    return next(r for n, r in report["results"].items() if n != "repeat+popularity")


def write_ablation(folder: Path) -> None:
    """fusion-served-ablation.md: lifelong (fusion-served.json) vs frozen (fusion-served-frozen.json), and the
    full retrain (fusion-served-retrain.json) when it was run on the same cases, overall, over the last six
    months and on discovery, with the compute of each; written once lifelong and frozen exist for the same
    months and cases."""
    reports = {arm: json.loads(path.read_text()) for arm, tag in ARMS.items() if (path := folder / f"{tag}.json").exists()}
    if "lifelong" not in reports or "frozen" not in reports:
        return

    def cases_of(r: dict) -> tuple:
        return r["cases"], tuple(r["results"]["repeat+popularity"]["months"])

    reports = {arm: r for arm, r in reports.items() if cases_of(r) == cases_of(reports["lifelong"])}
    if "frozen" not in reports:
        return
    first = reports["lifelong"]
    months = list(first["results"]["repeat+popularity"]["months"])
    last6 = months[-6:]
    baseline = first["results"]["repeat+popularity"]
    lines = [f"# Served fusion ranker: {' vs '.join(LABELS[a].split(' (')[0] for a in reports)} on the same {first['cases']} cases", "",
             f"| arm | NDCG@10 | NDCG@10, last six months ({last6[0]}..{last6[-1]}) | discovery NDCG@10 | discovery NDCG@10, last six | training s |",
             "| --- | --- | --- | --- | --- | --- |"]

    def last_six(r: dict) -> float:
        return float(np.mean([r["months"][m]["ndcg"] for m in last6]))

    def row(name: str, r: dict, seconds: str) -> str:
        disc = r["discovery"]["months"]
        six_d = np.mean([disc[m]["ndcg"] for m in last6 if m in disc])
        return (f"| {name} | {r['overall']['ndcg']:.4f} | {last_six(r):.4f} | {r['discovery']['overall'].get('ndcg', 0):.4f} | {six_d:.4f} | {seconds} |")

    for arm, rep in reports.items():
        retrain_lists = rep["settings"].get("retrain_lists") if arm == "retrain" else 0
        name = LABELS[arm].replace("every basket so far", f"the newest {retrain_lists} baskets") if retrain_lists else LABELS[arm]
        lines.append(row(name, _served(rep), f"{rep['train_seconds']:.0f}"))
    lines.append(row("repeat+popularity", baseline, "0"))
    lines += ["", "| NDCG@10 | " + " | ".join(months) + " |", "| --- " * (len(months) + 1) + "|"]
    for arm, rep in reports.items():
        lines.append(f"| {LABELS[arm]} | " + " | ".join(f"{_served(rep)['months'][m]['ndcg']:.4f}" for m in months) + " |")
    lines += ["", "Every arm through the worker, Feast and a real tritonserver (evaluation/fusion_served.py `--arm lifelong|frozen|retrain`). "
              "Training seconds include list building, text encoding, gates and publishing.", ""]
    if "retrain" in reports:
        lifelong, retrain = reports["lifelong"], reports["retrain"]
        lines += [f"Lifelong against the full retrain over the last six months: {last_six(_served(lifelong)) - last_six(_served(retrain)):+.4f} "
                  f"NDCG@10 (goal: no worse than -0.003), at {lifelong['train_seconds'] / max(retrain['train_seconds'], 1e-9):.0%} of its "
                  "training seconds (goal: at most 25%).", ""]
    (folder / "fusion-served-ablation.md").write_text("\n".join(lines))
    print("\n".join(lines))


def _arm(report: dict) -> str:
    settings = report["settings"]
    return settings.get("arm") or ("frozen" if settings.get("frozen") else "lifelong")


def _choice(report: dict) -> str:
    """What a validation run changed, from its recorded settings (older files: their tag says it)."""
    settings, changed = report["settings"], []
    if settings.get("text_tower") not in (None, "frozen"):
        changed.append(f"item tower {settings['text_tower']}")
    if settings.get("distill_weight"):
        changed.append(f"distillation {settings['distill_weight']}")
    if settings.get("gate_ndcg_tolerance") not in (None, 0.01):
        changed.append(f"gate tolerance {settings['gate_ndcg_tolerance']}")
    if settings.get("gate_confidence"):
        changed.append(f"gate confidence {settings['gate_confidence']}")
    if settings.get("replay_ratio") not in (None, 1.0):
        changed.append(f"replay {settings['replay_ratio']}x the new baskets")
    return f"{_arm(report)}: " + (", ".join(changed) or "defaults of its day")


def write_validation_table(folder: Path) -> None:
    """fusion-served-validation.md: every served run on the validation months (fusion-served-validation-*.json)
    in one table, so each choice made on them is read against the others on the same cases."""
    reports = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("fusion-served-validation-*.json"))}
    if not reports:
        return
    months = list(Counter(tuple(r["results"]["repeat+popularity"]["months"]) for r in reports.values()).most_common(1)[0][0])
    reports = {stem: r for stem, r in reports.items() if list(r["results"]["repeat+popularity"]["months"]) == months}
    lines = ["# Every served run on the validation months (choices are made here; test months are reported once per choice)", "",
             "| file | arm: what it changed | NDCG@10 | discovery NDCG@10 | " + " | ".join(months) + " | fine-tunes promoted | training s |",
             "| --- " * (len(months) + 6) + "|"]
    for stem, rep in reports.items():
        served = _served(rep)
        promoted = {"frozen": "none (version 1 serves)", "retrain": "each retrain, ungated"}.get(
            _arm(rep), f"{sum(str(d).startswith('promoted') for d in list(rep['decisions'].values())[1:])} of {len(months) - 1}")
        lines.append(f"| [{stem}]({stem}.md) | {_choice(rep)} | {served['overall']['ndcg']:.4f} | "
                     f"{served['discovery']['overall'].get('ndcg', 0):.4f} | " + " | ".join(f"{served['months'][m]['ndcg']:.4f}" for m in months)
                     + f" | {promoted} | {rep['train_seconds']:.0f} |")
    first = next(iter(reports.values()))
    lines += ["", f"repeat+popularity on the same {first['cases']} cases: {first['results']['repeat+popularity']['overall']['ndcg']:.4f} NDCG@10. "
              "Written by every `python -m evaluation.fusion_served` run (or `--tables`); older files predate the recorded "
              "settings, so their tag names the choice (tol0: gate tolerance 0; toplayer: the item tower's top layer "
              "fine-tuned). Training seconds depend on the day's machine and on what shared it.", ""]
    (folder / "fusion-served-validation.md").write_text("\n".join(lines))


def write_report(report: dict[str, Any], cases: list[Case]) -> None:
    results, decisions, train_seconds = report["results"], report["decisions"], report["train_seconds"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{report['settings']['tag']}.json").write_text(json.dumps(report, indent=2, default=str))
    months = list(next(iter(results.values()))["months"])
    lines = [f"# Fusion ranker through the worker and the served artifact ({len(cases)} cases, replay of the shop's history)", "",
             "| recommender | HR@10 | Recall@10 | NDCG@10 | discovery HR@10 | discovery NDCG@10 |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        o, d = r["overall"], r["discovery"]["overall"]
        lines.append(f"| {name} | {o['hr']:.4f} | {o['recall']:.4f} | {o['ndcg']:.4f} | {d.get('hr', 0):.4f} | {d.get('ndcg', 0):.4f} |")
    lines += ["", "| NDCG@10 | " + " | ".join(months) + " |", "| --- " * (len(months) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{r['months'][m]['ndcg']:.4f}" for m in months) + " |" for name, r in results.items()]
    arm = _arm(report)
    trainings = {"frozen": "version 1 only (frozen)", "lifelong": f"bootstrap + {len(months) - 1} monthly fine-tunes",
                 "retrain": f"{len(months)} trainings from the pretrained towers, each on "
                            + (f"the newest {report['settings'].get('retrain_lists')} baskets" if report["settings"].get("retrain_lists") else "every basket")
                            + " before its month"}[arm]
    lines += ["", f"Training ({trainings}, with list building, text encoding and gates): {train_seconds:.0f} s; "
              f"wall {report['wall_seconds']:.0f} s; cases answered by the scoring path: {report['ranked_cases']} of {len(cases)} "
              f"(degraded answers: {report['degraded_answers']}; mean candidates {report['mean_candidates']}).", "",
              "Features: read from a real Feast store replayed through core.feature_sync (per batch: shoppers, batch items' "
              "popularity; once per replayed day: every item's popularity, the shop's clock and popular list); "
              "scores: a real tritonserver serving the month's version.", "", "Gate decisions:", ""]
    lines += [f"- {m}: {d}" for m, d in decisions.items()]
    lines += ["", f"![NDCG per month]({report['settings']['tag']}.png)"]
    (RESULTS / f"{report['settings']['tag']}.md").write_text("\n".join(lines) + "\n")
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
    fig.savefig(RESULTS / f"{report['settings']['tag']}.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
