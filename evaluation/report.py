"""The benchmark's Markdown table and its NDCG@10-per-month plot."""
from __future__ import annotations

from pathlib import Path


def write_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for rec in report["recommenders"]:
        months = sorted(rec["months"])
        ax.plot(months, [rec["months"][m]["ndcg"] for m in months], marker="o", label=f"{rec['name']} ({rec['overall']['ndcg']:.3f})")
    sample = f"{report['sample_per_month']} cases/month" if report["sample_per_month"] else "all cases"
    ax.set_title(f"NDCG@10 per test month ({report['cases_evaluated']} cases, {sample})")
    ax.set_ylabel("NDCG@10")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(report: dict, path: Path, plot_name: str) -> str:
    sample = f"a seeded sample of {report['sample_per_month']} cases per month" if report["sample_per_month"] else "every case"
    lines = [
        f"# Quality: EVAL.md protocol ({report['cases_evaluated']} of {report['cases_total']} cases, {sample})",
        "",
        f"Data `{report['data']}`; {report['machine']['cpus']} CPUs, {report['machine']['device']}; wall time {report['wall_seconds']:.0f} s; created {report['created']}.",
        "",
        "| recommender | HR@10 | Recall@10 | NDCG@10 | discovery HR@10 | discovery NDCG@10 | compute s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["recommenders"]:
        d = r["discovery"]["overall"]
        compute = r["seconds"] + r.get("train_seconds", 0)
        lines.append(f"| {r['name']} | {r['overall']['hr']:.4f} | {r['overall']['recall']:.4f} | {r['overall']['ndcg']:.4f} | "
                     f"{d.get('hr', float('nan')):.4f} | {d.get('ndcg', float('nan')):.4f} | {compute:.0f} |")
    if "retrieval_recall" in report:
        lines += ["", f"BERT: {report['bert']['trained_on']}, {report['bert']['train_steps']} steps, max length {report['bert']['max_length']}; "
                  f"retrieval recall of the {report['retrieval_recall']['candidates']} candidates it re-ranks: "
                  f"{report['retrieval_recall']['overall']:.4f}; AUC (purchased vs sampled items): {report['auc']['overall']:.4f}."]
    lines += ["", "Discovery: the same metrics against the target items the shopper never bought before, with their own items removed from the ranking.", "",
              "## NDCG@10 per month", "", "| month | " + " | ".join(r["name"] for r in report["recommenders"]) + (" | BERT AUC | retrieval recall |" if "auc" in report else " |"),
              "| --- " * (len(report["recommenders"]) + 1 + (2 if "auc" in report else 0)) + "|"]
    for m in sorted(report["recommenders"][0]["months"]):
        row = f"| {m} | " + " | ".join(f"{r['months'][m]['ndcg']:.4f}" for r in report["recommenders"])
        if "auc" in report:
            row += f" | {report['auc']['months'].get(m, float('nan')):.4f} | {report['retrieval_recall']['months'].get(m, float('nan')):.4f}"
        lines.append(row + " |")
    lines += ["", f"![NDCG@10 per month]({plot_name})", ""]
    text = "\n".join(lines)
    path.write_text(text)
    return text
