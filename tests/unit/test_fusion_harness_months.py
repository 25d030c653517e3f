"""Every harness takes its test months from the data or the command line: the fusion harness runs end to
end on a small export in the documented format whose months are not Online Retail's."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from evaluation.protocol import EventArrays, resolve_months
from shopdata.interactions import write_dataset
from shopdata.synthetic import generate


def export(shop, folder):
    items = pd.DataFrame([{"item_id": k, "title": v.title, "description": v.description, "category": v.category, "price": v.price} for k, v in shop.items.items()])
    events = pd.DataFrame([{"event_id": e.event_id, "user_id": e.user_id, "item_id": e.item_id, "event_type": e.event_type,
                            "timestamp": pd.Timestamp(e.timestamp, unit="s"), "basket_id": "", "quantity": 1} for e in shop.events])
    write_dataset(folder, items, events)
    return events


def arrays(*days: str) -> EventArrays:
    frame = pd.DataFrame({"user_id": ["u"] * len(days), "item_id": ["i"] * len(days), "basket_id": list(range(len(days))),
                          "timestamp": pd.to_datetime(list(days))})
    return EventArrays.from_frame(frame)


def test_months_from_the_data_a_range_or_a_list():
    ev = arrays("2021-01-03", "2021-02-10", "2021-05-31")  # the export reaches the last day of May
    assert resolve_months("auto", ev, warmup=2) == ["2021-03", "2021-04", "2021-05"]
    assert resolve_months("auto", arrays("2021-01-03", "2021-05-30"), warmup=2) == ["2021-03", "2021-04"]  # May cut short
    assert resolve_months("2020-11..2021-02") == ["2020-11", "2020-12", "2021-01", "2021-02"]
    assert resolve_months("2021-03,2021-05") == ["2021-03", "2021-05"]
    for bad in ("2021-3", "2021-05..2021-03", "2021-05,2021-03", ""):
        with pytest.raises(ValueError):
            resolve_months(bad)
    with pytest.raises(ValueError, match="no complete month"):
        resolve_months("auto", arrays("2021-01-03", "2021-02-10"), warmup=12)


def test_the_fusion_harness_runs_on_another_shops_months(tmp_path):
    shop = generate(n_users=40, n_days=120, seed=5, start="2021-01-01")
    export(shop, tmp_path / "shop")
    out = subprocess.run([sys.executable, "-m", "evaluation.fusion_eval", "--data", str(tmp_path / "shop"), "--months", "auto",
                          "--warmup-months", "2", "--train-months", "2", "--epochs", "1", "--threads", "1", "--tag", "t",
                          "--rules", "exclude-purchased;distinct-titles,max-per-category=1",
                          "--out", str(tmp_path / "res"), "--cache", str(tmp_path / "cache")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "res" / "fusion-full-t.json").read_text())
    months = set(report["results"]["fusion (monthly)"]["months"])
    assert months and months <= {"2021-03", "2021-04"}, months
    assert report["cases"] > 0 and {"fusion (frozen)", "fusion (monthly)", "signals only (monthly)", "repeat+popularity"} <= set(report["results"])
    assert (tmp_path / "res" / "fusion-full-t.png").stat().st_size > 1000
    # Recommend's rules on the monthly ranker: excluding bought items leaves discovery (targets never
    # bought before) exactly as it was; the repeat targets are what it gives up.
    results = report["results"]
    excluding = results["fusion (monthly) + exclude-purchased"]
    assert excluding["discovery"] == results["fusion (monthly)"]["discovery"]
    assert excluding["overall"]["ndcg"] <= results["fusion (monthly)"]["overall"]["ndcg"]
    assert "fusion (monthly) + distinct-titles,max-per-category=1" in results
    bad = subprocess.run([sys.executable, "-m", "evaluation.fusion_eval", "--data", str(tmp_path / "shop"), "--months", "2019-01..2019-02",
                          "--out", str(tmp_path / "res"), "--cache", str(tmp_path / "cache")], capture_output=True, text=True, timeout=900)
    assert bad.returncode != 0 and "no test cases in 2019-01..2019-02" in bad.stderr and "Traceback" not in bad.stderr


def test_retrieval_recall_runs_on_another_shops_months(tmp_path):
    export(generate(n_users=40, n_days=120, seed=5, start="2021-01-01"), tmp_path / "shop")
    out = subprocess.run([sys.executable, "-m", "evaluation.retrieval_recall", "--data", str(tmp_path / "shop"), "--months", "2021-03..2021-04",
                          "--sizes", "10,50", "--tag", "t", "--out", str(tmp_path / "res")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "res" / "retrieval-recall-t.json").read_text())
    assert report["months"] == ["2021-03", "2021-04"] and report["cases"] > 0
    small, large = report["recall"]["10"]["merged"]["recall"], report["recall"]["50"]["merged"]["recall"]
    assert 0 <= small <= large <= 1  # a longer list holds the shorter one's sources' best items
    assert (tmp_path / "res" / "retrieval-recall-t.png").stat().st_size > 1000
