"""The Grafana dashboard in deploy/grafana graphs only metrics that exist: every shoprank_* name in its
queries is one the services define (services/metrics.py), and every nv_* name one Triton exports."""
import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

import services.metrics as metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "shoprank-dashboard.json"
TRITON = {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_queue_duration_us",
          "nv_inference_compute_infer_duration_us", "nv_inference_count", "nv_inference_exec_count"}


def _defined() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):  # the module's counters, gauges and histograms
            names.add(value._name)
            if value._type == "counter":
                names.add(value._name + "_total")
    stand_in = type("Jobs", (), {"states": lambda self: {"PENDING": (1, 2.0)}})()
    names.update(family.name for family in metrics.JobStateCollector(stand_in).collect())
    names.update(family.name for family in metrics.QueueDepthCollector(lambda: {"training": 0}).collect())
    names.update(family.name for family in metrics.ExperimentCollector(lambda: []).collect())
    return names


def test_every_panel_queries_metrics_that_exist():
    board = json.loads(DASHBOARD.read_text())
    assert board["panels"] and all(p["targets"] for p in board["panels"])
    defined = _defined()
    for panel in board["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b(?:shoprank|nv)_[a-z_]+", target["expr"]):
                if name.startswith("nv_"):
                    assert name in TRITON, (panel["title"], name)
                else:
                    base = re.sub(r"_(bucket|count|sum)$", "", name)
                    assert name in defined or base in defined, (panel["title"], name)
