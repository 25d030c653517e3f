"""The benchmark command end to end on a small shop in the documented format (baselines only)."""
import json
import subprocess
import sys

import pandas as pd

from shopdata.interactions import write_dataset
from shopdata.synthetic import generate


def test_bench_quality_on_an_export(tmp_path):
    shop = generate(n_users=30, n_days=90, seed=3, start="2010-10-01")
    items = pd.DataFrame([{"item_id": k, "title": v.title, "description": v.description, "category": v.category, "price": v.price} for k, v in shop.items.items()])
    events = pd.DataFrame([{"event_id": e.event_id, "user_id": e.user_id, "item_id": e.item_id, "event_type": e.event_type,
                            "timestamp": pd.Timestamp(e.timestamp, unit="s"), "basket_id": "", "quantity": 1} for e in shop.events])
    write_dataset(tmp_path / "shop", items, events)
    out = subprocess.run([sys.executable, "-m", "evaluation.run", "--data", str(tmp_path / "shop"), "--sample-per-month", "0",
                          "--recommenders", "popularity,repeat,cooccurrence", "--months", "2010-11,2010-12", "--tag", "t", "--out", str(tmp_path / "res")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "res" / "quality-t.json").read_text())
    assert [r["name"] for r in report["recommenders"]] == ["popularity-30d", "repeat+popularity", "co-occurrence"]
    assert report["cases_evaluated"] > 0 and set(report["recommenders"][1]["months"]) == {"2010-11", "2010-12"}
    assert (tmp_path / "res" / "quality-t.png").stat().st_size > 1000
    assert "| repeat+popularity |" in (tmp_path / "res" / "quality-t.md").read_text()


def test_bad_export_gets_a_clear_error(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "items.csv").write_text("item_id,title\nA,Mug\n")
    (tmp_path / "shop" / "events.csv").write_text("event_id,user_id,item_id,event_type\n1,u,A,purchase\n")
    out = subprocess.run([sys.executable, "-m", "evaluation.run", "--data", str(tmp_path / "shop"), "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "events.csv: missing column(s) timestamp" in out.stderr
    assert "Traceback" not in out.stderr
