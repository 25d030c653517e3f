"""Seconds per training step of each continual-learning option, measured back to back in one quiet
process (same batch, same length), so the lifelong comparison's compute can be stated as
steps × cost per step as well as in wall seconds, which other work on a shared machine inflates.

    python -m evaluation.step_cost [--steps 8] [--batch 16] [--max-length 48]
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from evaluation.run import RESULTS, machine
from rankers.cross_encoder.continual import STRATEGIES
from rankers.cross_encoder.fine_tune import Example, fine_tune
from rankers.cross_encoder.network import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    user = "bought: white hanging heart t-light holder; regency cakestand 3 tier; jumbo bag red retrospot; party bunting"
    examples = [Example(user, f"lunch bag pink polkadot {i}. price low", float(i % 3 == 0)) for i in range(args.batch * args.steps)]
    base = build_model(seed=0)
    costs = {}
    for strategy in STRATEGIES:
        model = copy.deepcopy(base)
        teacher = copy.deepcopy(base) if strategy == "distill" else None
        fine_tune(model, examples[: args.batch], max_steps=1, batch_size=args.batch, strategy=strategy, teacher=teacher,
                  max_length=args.max_length)  # warm-up
        model = copy.deepcopy(base)
        started = time.perf_counter()
        report = fine_tune(model, examples, max_steps=args.steps, batch_size=args.batch, strategy=strategy, teacher=teacher,
                           max_length=args.max_length)
        costs[strategy] = round((time.perf_counter() - started) / report.steps, 3)
        print(f"{strategy}: {costs[strategy]:.3f} s/step", flush=True)
    out = {"machine": machine(), "settings": vars(args), "seconds_per_step": costs,
           "relative_to_full": {k: round(v / costs["full"], 3) for k, v in costs.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "step-cost.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out["relative_to_full"]))


if __name__ == "__main__":
    main()
