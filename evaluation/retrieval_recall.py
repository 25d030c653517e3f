"""`make bench-retrieval`: how much of what shoppers bought the ranker can see at all. For each EVAL case,
the share of the target invoice's items among the candidates that retrieval hands the ranker (the
shopper's own items, co-purchase neighbours of their recent items and 30-day popular items,
interleaved: rankers.fusion.signals.merge_candidates, as served), at several candidate-list sizes, and
each source's own recall at that size; overall and for discovery (items the shopper never bought).
Also the shop's trending items (core.feature_sync.trending, what Trending serves: 7-day interest against
the 30-day rate) as a source of their own and interleaved into the merge as a fourth source.

Cheap (no model): run it on the validation months first, e.g.
    python -m evaluation.retrieval_recall --months 2010-06..2010-11 --tag validation
Writes bench/results/retrieval-recall-TAG.{json,md,png}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.feature_sync import trending
from evaluation.baselines import CoOccurrence, History
from evaluation.protocol import DAY, Case, EventArrays, add_months_arguments, build_cases, months_of, sample_cases
from evaluation.run import RESULTS, load_data, machine
from rankers.fusion.signals import merge_candidates
from shopdata.uci_retail import DEFAULT_PATH

SOURCES = ("merged", "merged+trending", "own", "co-purchase", "popular-30d", "trending-7d")


def sources(case: Case, ev: EventArrays, history: History, cooc: CoOccurrence, size: int) -> dict[str, list[int]]:
    """Each retrieval source's best `size` items for the case, and their merge as served."""
    own = [i for i, _, _ in sorted(history.counts(case), key=lambda x: (-x[1], x[2]))]
    co = [int(i) for i, _ in cooc.scores(case).most_common(size)]
    lo = int(np.searchsorted(ev.ts, case.ts - 31 * DAY, side="right"))
    pop30 = np.bincount(ev.item[lo : case.cutoff], minlength=ev.n_items)
    nz = np.flatnonzero(pop30)
    popular = nz[np.lexsort((ev.item_first_seen[nz], -pop30[nz]))][:size].tolist()
    lo7 = int(np.searchsorted(ev.ts, case.ts - 8 * DAY, side="right"))
    pop7 = np.bincount(ev.item[lo7 : case.cutoff], minlength=ev.n_items)
    rising = [int(i) for i, _ in trending({int(i): int(pop30[i]) for i in nz}, {int(i): int(pop7[i]) for i in np.flatnonzero(pop7)}, limit=size)]
    merged = merge_candidates(own, co, popular, size, own_limit=int(0.6 * size))
    with_trending = merge_candidates(own, co, popular, size, own_limit=int(0.6 * size), also=[rising])
    return {"merged": merged, "merged+trending": with_trending, "own": own[:size], "co-purchase": co, "popular-30d": popular,
            "trending-7d": rising}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    add_months_arguments(parser)
    parser.add_argument("--sizes", default="100,200,300,500", help="candidate-list sizes, comma separated")
    parser.add_argument("--sample-per-month", type=int, default=0, help="0 = every case")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    items, events = load_data(args.data)
    ev = EventArrays.from_frame(events)
    months = months_of(args, ev)
    cases = sample_cases(build_cases(ev, months), args.sample_per_month or None, 0)
    if not cases:
        raise SystemExit(f"error: no test cases in {months[0]}..{months[-1]}")
    sizes = [int(s) for s in args.sizes.split(",")]
    history = History(ev)
    # at 100 the neighbour lists the harness and serving use (50 per item); longer lists for more candidates
    coocs = {n: CoOccurrence(ev, history, neighbours=50 if n <= 100 else n // 2) for n in sizes}
    hits: dict[tuple[int, str, bool], list[float]] = {(n, s, d): [] for n in sizes for s in SOURCES for d in (False, True)}  # (size, source, discovery) -> recalls
    from tqdm import tqdm

    for case in tqdm(cases, desc="  cases", unit="case", file=sys.stderr, mininterval=2.0):
        bought = {i for i, _, _ in history.counts(case)}
        new = case.target - bought
        for n in sizes:
            for source, candidates in sources(case, ev, history, coocs[n], n).items():
                seen = set(candidates)
                hits[(n, source, False)].append(len(case.target & seen) / len(case.target))
                if new:
                    hits[(n, source, True)].append(len(new & seen) / len(new))
    table = {str(n): {s: {"recall": round(float(np.mean(hits[(n, s, False)])), 4),
                          "discovery_recall": round(float(np.mean(hits[(n, s, True)])), 4) if hits[(n, s, True)] else None}
                      for s in SOURCES} for n in sizes}
    report = {"machine": machine(), "months": months, "cases": len(cases), "settings": vars(args) | {"data": str(args.data)},
              "recall": table, "wall_seconds": round(time.perf_counter() - started, 1)}
    name = "retrieval-recall" + (f"-{args.tag}" if args.tag else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    lines = [f"# Retrieval recall ({len(cases)} cases, {months[0]}..{months[-1]})", "",
             "Share of the target invoice's items among the candidates (discovery: items the shopper never bought before).", "",
             "| candidates | " + " | ".join(f"{s} recall | {s} discovery" for s in SOURCES) + " |", "| --- " * (1 + 2 * len(SOURCES)) + "|"]
    for n in sizes:
        row = table[str(n)]
        lines.append(f"| {n} | " + " | ".join(f"{row[s]['recall']:.4f} | {row[s]['discovery_recall'] or 0:.4f}" for s in SOURCES) + " |")
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    write_plot(table, sizes, args.out / f"{name}.png", f"{months[0]}..{months[-1]}, {len(cases)} cases")
    print("\n".join(lines))


def write_plot(table: dict, sizes: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label in ((axes[0], "recall", "recall"), (axes[1], "discovery_recall", "discovery recall")):
        for source in SOURCES:
            ax.plot(sizes, [table[str(n)][source][key] or 0 for n in sizes], marker="o", label=source)
        ax.axhline(0.60, color="black", linewidth=0.6, linestyle=":")
        ax.set_xlabel("candidates")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Retrieval recall ({title})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
