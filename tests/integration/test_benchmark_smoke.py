"""Every benchmark harness runs, on a tiny slice, inside `make test`, so none can silently rot: each is
the real command (`python -m evaluation.X` / `bench/gpu_bench.py`) with small arguments, writing into a
temporary results folder (SHOPRANK_RESULTS_DIR) and work folder (SHOPRANK_WORK_DIR), never over the
results the README quotes. Each asserts the shape of what it wrote, not its numbers. (fusion_eval,
retrieval_recall, run and drift_experiment have their own runs in tests/unit.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.settings import PROJECT_ROOT
from shopdata.interactions import write_dataset
from shopdata.synthetic import generate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop_export(tmp_path_factory) -> Path:
    """A small export in the documented format (five months of a synthetic shop)."""
    folder = tmp_path_factory.mktemp("export") / "shop"
    shop = generate(n_users=40, n_days=150, seed=5, start="2021-01-01")
    items = pd.DataFrame([{"item_id": k, "title": v.title, "description": v.description, "category": v.category, "price": v.price}
                          for k, v in shop.items.items()])
    events = pd.DataFrame([{"event_id": e.event_id, "user_id": e.user_id, "item_id": e.item_id, "event_type": e.event_type,
                            "timestamp": pd.Timestamp(e.timestamp, unit="s"), "basket_id": "", "quantity": 1} for e in shop.events])
    write_dataset(folder, items, events)
    return folder


def run_harness(tmp_path: Path, command: list[str], timeout: int = 600) -> Path:
    results = tmp_path / "results"
    env = dict(os.environ, SHOPRANK_RESULTS_DIR=str(results), SHOPRANK_WORK_DIR=str(tmp_path / "work"), OUT=str(results))
    done = subprocess.run([sys.executable, *command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return results


def written(results: Path, name: str) -> dict:
    assert (results / f"{name}.md").stat().st_size > 0
    return json.loads((results / f"{name}.json").read_text())


def test_fusion_served(tmp_path, shop_export):
    results = run_harness(tmp_path, ["-m", "evaluation.fusion_served", "--data", str(shop_export), "--months", "2021-04..2021-05",
                                     "--warmup-months", "3", "--sample-per-month", "8", "--bootstrap-lists", "60", "--monthly-lists", "30",
                                     "--threads", "1", "--tag", "smoke"])
    report = written(results, "smoke")
    assert report["months"] == ["2021-04", "2021-05"] and report["ranked_cases"] > 0 and report["degraded_answers"] == 0
    assert set(report["decisions"]) == {"2021-04", "2021-05"} and "fusion (served: Feast + Triton)" in report["results"]
    assert (results / "smoke.png").stat().st_size > 1000


def test_fusion_served_full_retrain_arm(tmp_path, shop_export):
    results = run_harness(tmp_path, ["-m", "evaluation.fusion_served", "--data", str(shop_export), "--months", "2021-04..2021-05",
                                     "--warmup-months", "3", "--sample-per-month", "8", "--arm", "retrain", "--retrain-lists", "60",
                                     "--threads", "1", "--tag", "smoke-retrain"])
    report = written(results, "smoke-retrain")
    assert report["settings"]["arm"] == "retrain" and report["ranked_cases"] > 0 and report["degraded_answers"] == 0
    # a new version every month, each from the pretrained towers (so published ungated, like a bootstrap)
    assert all(d.startswith("promoted v") and "first version" in d for d in report["decisions"].values()), report["decisions"]
    assert "fusion retrain (served: Feast + Triton)" in report["results"]
    assert "the newest 60 baskets" in (results / "smoke-retrain.md").read_text()


def test_lifelong(tmp_path, shop_export):
    results = run_harness(tmp_path, ["-m", "evaluation.lifelong", "--data", str(shop_export), "--months", "2021-04..2021-05",
                                     "--warmup-months", "3", "--sample-per-month", "4", "--eval-months", "2", "--initial-steps", "2",
                                     "--monthly-steps", "1", "--candidates", "5", "--max-length", "24", "--strategies", "full", "--threads", "1"])
    report = written(results, "lifelong")
    assert {"frozen", "lifelong-full", "full-retrain"} <= set(report["arms"]) and report["months"] == ["2021-04", "2021-05"]
    assert (results / "lifelong.png").stat().st_size > 1000


def test_step_cost(tmp_path):
    report = json.loads((run_harness(tmp_path, ["-m", "evaluation.step_cost", "--steps", "1", "--batch", "2", "--max-length", "16",
                                                "--threads", "1"]) / "step-cost.json").read_text())
    assert {"seconds_per_step", "relative_to_full"} <= set(report) and report["seconds_per_step"]


def test_load_bench(tmp_path):
    results = run_harness(tmp_path, ["-m", "evaluation.load_bench", "--dataset", "synthetic", "--clients", "1,2", "--seconds", "1",
                                     "--candidates", "10", "--processes", "1", "--soak", "2", "--shoppers", "30", "--tag", "smoke",
                                     "--feedback-processes", "2"])
    report = json.loads((results / "load-smoke.json").read_text())
    assert [r["clients"] for r in report["rank"]] == [1, 2] and all(r["failed"] == 0 and r["calls"] > 0 for r in report["rank"])
    assert "soak" not in report and (results / "load-smoke.md").stat().st_size > 0  # the soak runs on the shop-like workload
    shop = report["shop"]  # the shop-like workload: events recorded between the Ranks, nothing failed
    assert [r["clients"] for r in shop["rank"]] == [1, 2] and all(r["failed"] == 0 and r["calls"] > 0 for r in shop["rank"])
    assert sum(r["events"]["recorded"] for r in shop["rank"]) > 0 and all(r["events"]["failed"] == 0 for r in shop["rank"])
    assert "Shop-like workload" in (results / "load-smoke.md").read_text()
    assert sum(r["shopper_states"].get("stored", 0) for r in shop["rank"]) > 0  # Ranks read stored shopper states
    for r in shop["rank"]:  # the latency breakdown covers every call, once by event and once by shopper state
        assert sum(r["by_kind"].get(k, {}).get("calls", 0) for k in ("after_event", "no_event")) == r["calls"]
        assert sum(r["by_kind"].get(k, {}).get("calls", 0) for k in ("stored", "inline", "cold_start")) == r["calls"]
    assert "Where the latency comes from" in (results / "load-smoke.md").read_text()
    assert shop["state_backfill"]["shoppers"] > 0 and all(r["max_ms"] >= r["p999_ms"] >= r["p99_ms"] for r in shop["rank"])
    assert shop["soak"]["memory"] and (results / "load-smoke-shop-soak.png").exists()
    assert shop["ingest"]["acked"] > 0 and shop["ingest"]["failed_calls"] == 0
    assert shop["ingest"]["refreshed_s_after_last_answer"] >= 0 and shop["ingest"]["calls"] >= shop["ingest"]["pending_answers"]
    again = shop["ingest_processes"]  # the same ingest with the feedback service restarted on two processes
    assert again["processes"] == 2 and again["acked"] > 0 and again["failed_calls"] == 0
    assert shop["state_backfill"]["shoppers"] > 0 and shop["state_backfill"]["state_bytes_per_shopper_per_version"] == 384 * 4


def test_states_ab(tmp_path):
    results = run_harness(tmp_path, ["-m", "evaluation.states_ab", "--dataset", "synthetic", "--shoppers", "20", "--rounds", "1",
                                     "--seconds", "1", "--clients", "1", "--tag", "smoke"])
    report = json.loads((results / "load-smoke.json").read_text())
    assert [r["arm"] for r in report["rows"]] == ["on", "off"] and all(r["ingest"]["acked"] > 0 for r in report["rows"])
    assert report["rows"][1]["1"]["shopper_states"].get("stored", 0) == 0  # off: every vector computed inline


def test_rank_latency(tmp_path):
    report = written(run_harness(tmp_path, ["-m", "evaluation.rank_latency", "--dataset", "synthetic", "--calls", "2", "--candidates", "10",
                                            "--rankers", "fusion"]), "rank-latency")
    assert [r["ranker"] for r in report["rows"]] == ["fusion"] and report["rows"][0]["p50_ms"] > 0


def test_reliability(tmp_path):
    report = written(run_harness(tmp_path, ["-m", "evaluation.reliability", "--clients", "2", "--batches", "2", "--fuzz", "20", "--hostile-seconds", "2",
                                                   "--tag", "smoke"],
                                 timeout=900), "smoke")
    assert {"ingest_embedded", "kill_feedback", "kill_worker", "kill_triton", "fuzz", "hostile", "ingest_postgresql_redis"} <= set(report)
    assert report["ingest_embedded"]["lost"] == 0
    hostile = report["hostile"]
    assert set(hostile["rows"]) == {"oversized_unauthenticated", "idle_reflection_no_key", "idle_reflection_storefront_key",
                                    "audit_flood", "erase_under_load"}
    assert all(row["quiet"]["rank"]["calls"] > 0 for row in hostile["rows"].values())
    assert hostile["raw_ids_at_rest"] == [] and hostile["rows"]["erase_under_load"]["attack"]["shoppers_erased"] >= 1
    for flood in ("oversized_unauthenticated", "audit_flood"):  # judged against a CPU-matched control window
        assert hostile["rows"][flood]["control"]["rank"]["calls"] > 0, flood
    assert hostile["rows"]["audit_flood"]["audit"]["chain_ok"]


def test_item_to_item(tmp_path):
    results = tmp_path / "results"
    report = written(run_harness(tmp_path, ["-m", "evaluation.item_to_item_bench", "--items", "300", "--calls", "3", "--out", str(results)]),
                     "item-to-item")
    assert report["items"] == 300 and report["rpcs"]


def test_online_bench(tmp_path):
    results = tmp_path / "results"
    report = written(run_harness(tmp_path, ["-m", "evaluation.online_bench", "--users", "20", "--steps", "40", "--bootstrap-steps", "5",
                                            "--out", str(results)], timeout=900), "online-experiments")
    assert report["users"] == 20 and report["scenarios"]


def test_drift_loop(tmp_path):
    """The lifelong arm only (one deployment, one fine-tune between its two chunks of visits): the frozen
    arm runs the same visits without the fine-tune."""
    results = tmp_path / "results"
    report = written(run_harness(tmp_path, ["-m", "evaluation.drift_loop", "--users", "20", "--before", "20", "--after", "20",
                                            "--fine-tune-every", "20", "--window", "10", "--arms", "lifelong", "--bootstrap-steps", "5",
                                            "--tag", "smoke", "--out", str(results)], timeout=900), "online-drift-smoke")
    lifelong = report["arms"]["lifelong"]
    assert len(lifelong["relevance"]) == 40 and len(lifelong["fine_tunes"]) == 1 and lifelong["before"] > 0
    assert lifelong["fine_tunes"][0]["state"] in ("SUCCEEDED", "REJECTED") and lifelong["share_at_horizon"] is not None
    assert (results / "online-drift-smoke.png").stat().st_size > 0


def test_traffic_loop(tmp_path):
    results = tmp_path / "results"
    report = written(run_harness(tmp_path, ["-m", "evaluation.traffic_loop", "--users", "20", "--visits", "30", "--busy-visits", "30", "--bootstrap-steps", "5",
                                            "--tag", "smoke", "--out", str(results)], timeout=900), "traffic-smoke")
    assert report["quiet"]["visits"] == report["busy"]["visits"] == 30 and report["busy_over_quiet"] is not None
    assert (results / "traffic-smoke.png").stat().st_size > 0


def test_freshness(tmp_path):
    report = written(run_harness(tmp_path, ["-m", "evaluation.freshness", "--events", "3", "--steps", "2"]), "freshness")
    assert {"ack_ms", "ack_to_visible_ms", "fine_tune"} <= set(report) and report["ack_ms"]["p50"] > 0
    assert report["event_to_next_ranking"]["reflected"] == 3  # every click shows in the very next Rank


def test_catalogue_scale(tmp_path):
    report = written(run_harness(tmp_path, ["-m", "evaluation.catalogue_scale", "--sizes", "300"]), "catalogue-scale")
    assert report["sizes"] and report["encoder_items_per_s"] > 0


def test_gpu_bench_on_this_machines_device(tmp_path):
    results = tmp_path / "results"
    report = written(run_harness(tmp_path, ["bench/gpu_bench.py", "--device", "cpu", "--dtype", "float32", "--items", "200",
                                            "--candidates", "10", "--clients", "1", "--instances", "1", "--seconds", "1", "--state-shoppers", "8",
                                            "--out", str(results)]),
                     "gpu-bench-cpu")
    assert report["device"] == "cpu" and report["items"] == 200 and report["arms"]
    assert report["states"]["triton_shoppers_per_s"] > 0 and report["states"]["bare_model_py_shoppers_per_s"] > 0
