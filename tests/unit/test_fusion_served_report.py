"""evaluation.fusion_served.write_ablation: the arms side by side on the same cases, with the full retrain when it ran;
write_validation_table: every run on the validation months in one table."""
import json

from evaluation.fusion_served import write_ablation, write_validation_table

MONTHS = [f"2011-{m:02d}" for m in range(1, 8)]


def report(arm: str, ndcg: float, seconds: float, cases: int = 100, **settings) -> dict:
    scores = {"overall": {"ndcg": ndcg}, "months": {m: {"ndcg": ndcg} for m in MONTHS},
              "discovery": {"overall": {"ndcg": ndcg / 4}, "months": {m: {"ndcg": ndcg / 4} for m in MONTHS}}}
    baseline = {"overall": {"ndcg": 0.27}, "months": {m: {"ndcg": 0.27} for m in MONTHS},
                "discovery": {"overall": {"ndcg": 0.05}, "months": {m: {"ndcg": 0.05} for m in MONTHS}}}
    return {"cases": cases, "settings": {"arm": arm, **settings}, "train_seconds": seconds,
            "decisions": {m: "promoted v1: first version" if k == 0 else "promoted v2: ..." if k % 2 else "rejected v3: ..." for k, m in enumerate(MONTHS)},
            "results": {"repeat+popularity": baseline, f"fusion {arm}": scores}}


def write(folder, name, data):
    (folder / f"{name}.json").write_text(json.dumps(data))


def test_three_arms_with_the_retrain_gap_and_compute_share(tmp_path):
    write(tmp_path, "fusion-served", report("lifelong", 0.34, 500))
    write(tmp_path, "fusion-served-frozen", report("frozen", 0.33, 100))
    write(tmp_path, "fusion-served-retrain", report("retrain", 0.345, 2500, retrain_lists=0))
    write_ablation(tmp_path)
    text = (tmp_path / "fusion-served-ablation.md").read_text()
    assert "lifelong vs frozen vs full retrain on the same 100 cases" in text
    assert "| full retrain (every month, every basket so far) | 0.3450 |" in text
    assert "-0.0050 NDCG@10" in text and "at 20% of its training seconds" in text


def test_a_retrain_on_other_cases_is_left_out(tmp_path):
    write(tmp_path, "fusion-served", report("lifelong", 0.34, 500))
    write(tmp_path, "fusion-served-frozen", report("frozen", 0.33, 100))
    write(tmp_path, "fusion-served-retrain", report("retrain", 0.345, 2500, cases=50, retrain_lists=4000))
    write_ablation(tmp_path)
    text = (tmp_path / "fusion-served-ablation.md").read_text()
    assert "full retrain" not in text and "lifelong vs frozen on the same 100 cases" in text


def test_nothing_without_the_frozen_arm(tmp_path):
    write(tmp_path, "fusion-served", report("lifelong", 0.34, 500))
    write_ablation(tmp_path)
    assert not (tmp_path / "fusion-served-ablation.md").exists()


def test_every_validation_run_in_one_table_with_what_it_changed(tmp_path):
    write(tmp_path, "fusion-served-validation-lifelong", report("lifelong", 0.34, 200))
    write(tmp_path, "fusion-served-validation-distill1", report("lifelong", 0.341, 210, distill_weight=1.0, gate_ndcg_tolerance=0.01))
    write(tmp_path, "fusion-served-validation-frozen", report("frozen", 0.33, 40))
    write(tmp_path, "fusion-served-validation-other-months", report("lifelong", 0.1, 1) | {"results": {
        "repeat+popularity": {"months": {"2012-01": {}}}}})
    write_validation_table(tmp_path)
    text = (tmp_path / "fusion-served-validation.md").read_text()
    assert "| [fusion-served-validation-distill1](fusion-served-validation-distill1.md) | lifelong: distillation 1.0 | 0.3410 |" in text
    assert "lifelong: defaults of its day | 0.3400 |" in text and "| 3 of 6 | 200 |" in text
    assert "frozen: defaults of its day" in text and "none (version 1 serves)" in text
    assert "other-months" not in text
