"""Before/after table of two sets of load-benchmark runs (evaluation.load_bench JSON files), run
alternately on one machine: per level, each run's Rank/s, p50 and p99, and the after/before ratio of
the means (the hot workload's levels and the shop-like workload's). Used for issue 24's "load benchmark
no slower" check and issue 26's levers:

    python bench/compare_load.py --before 'DIR_A/load-cmp-base-*.json' --after 'DIR_B/load-cmp-new-*.json' \
        --name load-issue24 --note "..."
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path
from statistics import mean

RESULTS = Path(__file__).resolve().parent / "results"


def rows(paths: list[str]) -> dict[tuple[str, int, int], list[dict]]:
    out: dict[tuple[str, int, int], list[dict]] = {}
    for path in sorted(paths):
        data = json.loads(Path(path).read_text())
        for section in ("rank", "recommend", "candidates"):
            for r in data.get(section, []):
                out.setdefault((section, r["clients"], r.get("candidates", 0)), []).append(r)
        for section in ("rank", "recommend"):  # the shop-like workload (issue 26)
            for r in (data.get("shop") or {}).get(section, []):
                out.setdefault((f"shop-like {section}", r["clients"], r.get("candidates", 0)), []).append(r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    before, after = rows(glob.glob(args.before)), rows(glob.glob(args.after))
    table, out = [], []
    for key in sorted(before.keys() & after.keys()):
        b, a = before[key], after[key]
        ratio = {m: round(mean(r[m] for r in a) / mean(r[m] for r in b), 3) for m in ("per_s", "p50_ms", "p99_ms")}
        out.append({"level": key[0], "clients": key[1], "candidates": key[2], "before": b, "after": a, "after_over_before": ratio})
        runs = lambda rs, m: " / ".join(str(r[m]) for r in rs)  # noqa: E731
        table.append(f"| {key[0]} | {key[1]} | {runs(b, 'per_s')} | {runs(a, 'per_s')} | {ratio['per_s']} | "
                     f"{runs(b, 'p50_ms')} | {runs(a, 'p50_ms')} | {ratio['p50_ms']} | {runs(b, 'p99_ms')} | {runs(a, 'p99_ms')} | {ratio['p99_ms']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"note": args.note, "levels": out}, indent=1))
    lines = [f"# {args.name}: load benchmark before and after", "", args.note, "",
             "Each cell lists the runs in order (run 1 / run 2, alternated before, after, before, after); "
             "ratios are after/before of the means (per_s above 1 and latency below 1 are better).", "",
             "| level | clients | before /s | after /s | ratio | before p50 ms | after p50 ms | ratio | before p99 ms | after p99 ms | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *table]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
