"""`make bench-lifelong`: frozen vs lifelong vs full monthly retrain under the EVAL protocol, through
the worker's own training and publishing code (`rankers.cross_encoder.training.train_candidate` + `workers.publishing.publish`, the replay
reservoir and the promotion gate), each arm scored with its published `model.pt`.

- frozen: trained once on purchases before the first test month, never updated;
- lifelong: at each month boundary, the serving version fine-tuned on that month's purchases plus a
  replay sample of older examples, gated against the serving version (a rejected candidate is not used);
- full retrain: at each evaluated month boundary, trained from the pretrained encoder on a budgeted
  uniform sample of all purchases so far.

CPU-sized defaults (a seeded sample of cases in the last six test months); `--help` for the knobs.
Full-scale configuration for a machine with a GPU (every case of the last six months, training sized
like EVAL.md's full retrain):

    python -m evaluation.lifelong --device cuda --sample-per-month 0 --initial-steps 4000 \
        --monthly-steps 600 --candidates 50 --max-length 64 --strategies distill,top-layers,lora,full
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

from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog, ReplayBuffer
from evaluation.baselines import CoOccurrence, History, RepeatPopularity
from evaluation.bert import BertReranker, catalogue_text
from evaluation.metrics import auc
from evaluation.protocol import EventArrays, add_months_arguments, build_cases, month_start_seconds, months_of, sample_cases
from evaluation.results import work_dir
from evaluation.run import RESULTS, evaluate, load_data, machine
from rankers.cross_encoder.continual import STRATEGIES
from rankers.cross_encoder.fine_tune import Event, build_examples
from shopdata.uci_retail import DEFAULT_PATH


def events_between(ev: EventArrays, lo_ts: float, hi_ts: float) -> list[Event]:
    lo, hi = np.searchsorted(ev.ts, [lo_ts, hi_ts], side="left")
    return [Event(str(p), str(ev.user_ids[ev.user[p]]), str(ev.item_ids[ev.item[p]]), "purchase", float(ev.ts[p])) for p in range(lo, hi)]


def main() -> None:
    from rankers import get_ranker
    from rankers.cross_encoder.training import train_candidate
    from workers.publishing import publish

    ranker = get_ranker("cross-encoder")

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--sample-per-month", type=int, default=40, help="0 = every case")
    parser.add_argument("--eval-months", type=int, default=6, help="the last N test months are evaluated")
    parser.add_argument("--initial-steps", type=int, default=100, help="frozen model and each full retrain (batch 16)")
    parser.add_argument("--monthly-steps", type=int, default=25, help="lifelong fine-tune per month boundary")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", type=lambda text: text.split(","), default=list(STRATEGIES),
                        help=f"comma-separated continual-learning options, each a lifelong arm ({','.join(STRATEGIES)})")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="training and scoring device: cpu, cuda, auto")
    add_months_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    items, events = load_data(args.data)
    ev = EventArrays.from_frame(events)
    months = months_of(args, ev)
    catalogue = catalogue_text(items)
    history = History(ev)
    eval_months = months[-args.eval_months:]
    cases = sample_cases(build_cases(ev, eval_months), args.sample_per_month or None, args.seed)
    root = work_dir("lifelong")
    shutil.rmtree(root, ignore_errors=True)
    batch = 16
    positives_budget = args.initial_steps * batch // 3

    def train(arm: str, parent_repo: Path, parent: int | None, examples, window, steps, replay=(), replay_eval=(), strategy="full"):
        settings = Settings(data_dir=root / arm, model_repository=parent_repo, max_length=args.max_length, train_device=args.device)
        repo = ModelRepository(parent_repo, ranker.model_name)
        t = time.perf_counter()
        job_id = f"{arm}-{int(window[1])}"
        candidate = train_candidate(settings, repo, parent=parent, examples=examples, data_window=window, max_steps=steps,
                                    batch_size=batch, job_id=job_id, seed=args.seed, replay=replay, replay_eval=replay_eval, strategy=strategy)
        version = publish(settings, ranker, repo, candidate, job_id, load_in_triton=False)
        return version, candidate.lineage, time.perf_counter() - t

    compute: dict[str, float] = {}
    window_compute: dict[str, float] = {"frozen": 0.0, "full-retrain": 0.0}  # training spent on the evaluated months' models
    window_steps: dict[str, int] = {"frozen": 0, "full-retrain": 0}
    first = month_start_seconds(months[0])
    print(f"frozen/initial model: {args.initial_steps} steps on purchases before {months[0]}", file=sys.stderr)
    before_first = events_between(ev, float(ev.ts[0]), first)
    initial_examples = build_examples(before_first, catalogue, negatives_per_positive=2, max_positives=positives_budget, seed=args.seed)
    frozen_repo = root / "frozen" / "triton_models"
    v, _, secs = train("frozen", frozen_repo, None, initial_examples, (float(ev.ts[0]), first), args.initial_steps)
    compute["frozen"] = secs
    frozen_path = ModelRepository(frozen_repo, ranker.model_name).model_path(v)

    # each lifelong arm starts from the frozen model (same version 1), then follows every month boundary
    life_arms: dict[str, dict[str, Path]] = {}
    decisions: dict[str, dict[str, str]] = {}
    for strategy in args.strategies:
        arm = f"lifelong-{strategy}"
        life_repo = root / arm / "triton_models"
        shutil.copytree(frozen_repo, life_repo)
        buffer = ReplayBuffer(EventLog.open(f"sqlite:///{root / arm / 'replay.db'}").engine, 5000)
        buffer.add(initial_examples, seed=args.seed)
        compute[arm], window_compute[arm] = secs, 0.0  # it shares the initial training
        # in the first test month every lifelong arm still serves version 1 (no boundary has passed)
        serving, life_paths, decisions[arm] = v, {months[0]: frozen_path}, {}
        for prev, month in zip(months, months[1:]):
            lo, hi = month_start_seconds(prev), month_start_seconds(month)
            context = events_between(ev, lo - 120 * 86400, hi)  # histories for the month's positives
            new = build_examples(context, catalogue, since=lo, negatives_per_positive=2, max_positives=args.monthly_steps * batch // 3, seed=args.seed)
            sampled = buffer.sample(len(new) + 64, seed=args.seed)
            version, lineage, took = train(arm, life_repo, serving, new, (lo, hi), args.monthly_steps, sampled[64:], sampled[:64], strategy)
            compute[arm] += took
            if month in eval_months:
                window_compute[arm] += took
                window_steps[arm] = window_steps.get(arm, 0) + int(lineage.notes["steps"])
            decisions[arm][month] = ("promoted" if lineage.gate["passed"] else "rejected") + f" v{version}: {lineage.gate['reason'][:140]}"
            if lineage.gate["passed"]:
                serving = version
                buffer.add(new, seed=args.seed)
            print(f"{arm} {month}: {decisions[arm][month]} ({took:.0f}s)", file=sys.stderr)
            life_paths[month] = ModelRepository(life_repo, ranker.model_name).model_path(serving)
        life_arms[arm] = life_paths

    retrain_paths: dict[str, Path] = {}
    for month in eval_months:
        hi = month_start_seconds(month)
        so_far = events_between(ev, float(ev.ts[0]), hi)
        examples = build_examples(so_far, catalogue, negatives_per_positive=2, max_positives=positives_budget, seed=args.seed, sample="uniform")
        repo = root / f"retrain-{month}" / "triton_models"
        version, _, secs = train(f"retrain-{month}", repo, None, examples, (float(ev.ts[0]), hi), args.initial_steps)
        compute["full-retrain"] = compute.get("full-retrain", 0.0) + secs
        window_compute["full-retrain"] += secs
        window_steps["full-retrain"] += args.initial_steps
        retrain_paths[month] = ModelRepository(repo, ranker.model_name).model_path(version)
        print(f"full retrain {month}: {secs:.0f}s", file=sys.stderr)

    cooc = CoOccurrence(ev, history)
    arms = {"frozen": {m: frozen_path for m in eval_months}, **life_arms, "full-retrain": retrain_paths}
    results: dict[str, dict] = {}
    baseline = evaluate(RepeatPopularity(ev, history), cases, ev, history, "repeat+popularity")
    for arm, paths in arms.items():
        per_month, aucs, scoring = {}, {}, 0.0
        for month in eval_months:
            month_cases = [c for c in cases if c.month == month]
            reranker = BertReranker(ev, history, items, paths[month], args.candidates, args.max_length, seed=args.seed, cooccurrence=cooc,
                                    device=args.device)
            r = evaluate(reranker, month_cases, ev, history, f"{arm} {month}")
            per_month[month] = r["overall"]
            per_month[month]["discovery_ndcg"] = r["discovery"]["overall"].get("ndcg")
            aucs[month] = round(auc([s for _, s in reranker.auc_positive], [s for _, s in reranker.auc_negative]), 4)
            scoring += r["seconds"]
        results[arm] = {"months": per_month, "auc": aucs, "train_seconds": round(compute[arm], 1), "scoring_seconds": round(scoring, 1),
                        "window_train_seconds": round(window_compute[arm], 1), "window_steps": window_steps.get(arm, 0),
                        "strategy": arm.removeprefix("lifelong-") if arm.startswith("lifelong-") else "full",
                        "ndcg_mean": round(float(np.mean([per_month[m]["ndcg"] for m in eval_months])), 4)}
    report = {"machine": machine(), "cases": len(cases), "sample_per_month": args.sample_per_month, "months": eval_months,
              "settings": vars(args) | {"data": str(args.data)}, "lifelong_decisions": decisions, "arms": results,
              "repeat_popularity": {m: baseline["months"][m]["ndcg"] for m in eval_months}, "wall_seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lifelong.json").write_text(json.dumps(report, indent=2, default=str))
    write_outputs(report)


def write_outputs(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = report["months"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for arm, r in report["arms"].items():
        ax.plot(months, [r["months"][m]["ndcg"] for m in months], marker="o", label=f"{arm} (train {r['train_seconds']:.0f}s)")
    ax.plot(months, [report["repeat_popularity"][m] for m in months], linestyle="--", color="grey", label="repeat+popularity")
    ax.set_title(f"NDCG@10 per month: frozen vs lifelong vs full retrain ({report['cases']} cases)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "lifelong.png", dpi=110)
    plt.close(fig)
    retrain = report["arms"]["full-retrain"]
    lines = [f"# Lifelong learning under the EVAL protocol ({report['cases']} cases: {report['sample_per_month']} per month, {months[0]}..{months[-1]})", "",
             "Train s: all training, the initial model included. Window train s: training that produced the models serving the "
             "evaluated months (lifelong: the six monthly fine-tunes; full retrain: the six retrains), and its ratio to full retrain's.", "",
             "| arm | mean NDCG@10 | vs retrain | train s | window train s | window ratio | scoring s | " + " | ".join(months) + " |",
             "| --- " * (7 + len(months)) + "|"]
    for arm, r in report["arms"].items():
        ratio = r["window_train_seconds"] / retrain["window_train_seconds"] if retrain["window_train_seconds"] else float("nan")
        lines.append(f"| {arm} | {r['ndcg_mean']:.4f} | {r['ndcg_mean'] / retrain['ndcg_mean'] - 1:+.1%} | {r['train_seconds']:.0f} | "
                     f"{r['window_train_seconds']:.0f} | {ratio:.2f} | {r['scoring_seconds']:.0f} | "
                     + " | ".join(f"{r['months'][m]['ndcg']:.4f}" for m in months) + " |")
    lines.append("| repeat+popularity | " + f"{np.mean([report['repeat_popularity'][m] for m in months]):.4f} | | - | - | | - | "
                 + " | ".join(f"{report['repeat_popularity'][m]:.4f}" for m in months) + " |")
    step_cost = RESULTS / "step-cost.json"
    if step_cost.exists() and all("window_steps" in r for r in report["arms"].values()):
        per_step = json.loads(step_cost.read_text())["seconds_per_step"]
        cost = {arm: r["window_steps"] * per_step[r["strategy"]] for arm, r in report["arms"].items()}
        lines += ["", "Compute without the noise of a shared machine: training steps behind the evaluated months' models × seconds per "
                  f"step of each option measured back to back (`make bench-step-cost`: {', '.join(f'{k} {v:.3f}' for k, v in per_step.items())} s/step); "
                  "validation, gate and tracing time excluded (they are in the wall-second columns).", "",
                  "| arm | window steps | step-cost seconds | ratio to full retrain |", "| --- | --- | --- | --- |"]
        lines += [f"| {arm} | {r['window_steps']} | {cost[arm]:.0f} | {cost[arm] / cost['full-retrain']:.2f} |" for arm, r in report["arms"].items()]
    lines += ["", "AUC per month:", ""] + [f"- {arm}: " + ", ".join(f"{v:.3f}" for v in r["auc"].values()) for arm, r in report["arms"].items()]
    lines += ["", "Lifelong gate decisions:"]
    for arm, per_month in report["lifelong_decisions"].items():
        lines += ["", f"{arm}:", ""] + [f"- {m}: {d}" for m, d in per_month.items()]
    lines += ["", "![NDCG per month](lifelong.png)", ""]
    (RESULTS / "lifelong.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
