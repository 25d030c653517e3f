"""The drift experiment runs end to end on a tiny season-change shop: every arm trains through the
worker's code, every period is ranked by every arm, and the report, table and plot are written."""
import json
import subprocess
import sys


def test_the_drift_experiment_runs_every_arm_and_writes_its_report(tmp_path):
    out = subprocess.run([sys.executable, "-m", "evaluation.drift_experiment", "--users", "24", "--days", "28", "--change-day", "18",
                          "--warmup-days", "14", "--period-days", "7", "--bootstrap-lists", "200", "--train-lists", "80",
                          "--retrain-lists", "200", "--eval-lists", "40", "--drift-threshold", "-1", "--threads", "1",
                          "--tag", "t", "--out", str(tmp_path / "res"), "--work-dir", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "res" / "t.json").read_text())
    assert [(p["start_day"], p["end_day"]) for p in report["periods"]] == [(14.0, 21.0), (21.0, 28.0)]
    summary = report["summary"]
    assert {"frozen", "lifelong", "drift-triggered", "full retrain", "repeat+popularity"} == set(summary)
    assert summary["frozen"]["trainings"] == 1
    # a threshold below any drop: the drift-triggered arm fine-tunes at every boundary, as lifelong does
    assert summary["lifelong"]["trainings"] == summary["drift-triggered"]["trainings"] == summary["full retrain"]["trainings"] == 2
    assert all(p["drift_triggered"] for p in report["periods"])
    for p in report["periods"]:
        assert p["lists"] > 0 and all(0.0 <= v <= 1.0 for v in p["ndcg"].values())
        assert p["serving"]["frozen"] == 1
    assert (tmp_path / "res" / "t.png").stat().st_size > 1000
    assert "| frozen |" in (tmp_path / "res" / "t.md").read_text()
