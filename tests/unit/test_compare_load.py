"""bench/compare_load.py, the before/after table of alternated load-benchmark runs (issues 24 and 26),
on two small runs each: the hot workload's levels and the shop-like workload's, ratios of the means."""
from __future__ import annotations

import importlib.util
import json
import sys

from core.settings import PROJECT_ROOT


def level(clients: int, per_s: float, p50: float, p99: float) -> dict:
    return {"clients": clients, "candidates": 100, "per_s": per_s, "p50_ms": p50, "p99_ms": p99}


def test_compare_load_writes_ratios_for_both_workloads(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("compare_load", PROJECT_ROOT / "bench" / "compare_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, per_s in (("base-1", 100.0), ("base-2", 110.0), ("new-1", 120.0), ("new-2", 132.0)):
        run = {"rank": [level(16, per_s, 50.0, 200.0)], "shop": {"rank": [level(16, per_s / 2, 100.0, 300.0)], "recommend": []}}
        (tmp_path / f"load-cmp-{name}.json").write_text(json.dumps(run))
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["compare_load", "--before", str(tmp_path / "load-cmp-base-*.json"),
                                      "--after", str(tmp_path / "load-cmp-new-*.json"), "--name", "cmp", "--note", "smoke"])
    module.main()
    report = json.loads((tmp_path / "results" / "cmp.json").read_text())
    by_level = {(r["level"], r["clients"]): r["after_over_before"] for r in report["levels"]}
    assert by_level[("rank", 16)]["per_s"] == by_level[("shop-like rank", 16)]["per_s"] == 1.2
    assert by_level[("rank", 16)]["p99_ms"] == 1.0
    assert "| shop-like rank | 16 | 50.0 / 55.0 | 60.0 / 66.0 | 1.2 |" in (tmp_path / "results" / "cmp.md").read_text()
