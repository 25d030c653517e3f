"""Where every harness writes: results under bench/results/ (the files the README and docs quote) and
scratch deployments under var/. The smoke tests in `make test` point both elsewhere
(SHOPRANK_RESULTS_DIR, SHOPRANK_WORK_DIR) so a seconds-long run never overwrites a real result."""
from __future__ import annotations

import os
from pathlib import Path

from core.settings import PROJECT_ROOT


def results_dir() -> Path:
    """bench/results/, or $SHOPRANK_RESULTS_DIR (created when missing)."""
    folder = Path(os.environ.get("SHOPRANK_RESULTS_DIR") or PROJECT_ROOT / "bench" / "results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def work_dir(name: str) -> Path:
    """var/<name>, or $SHOPRANK_WORK_DIR/<name>: a harness's event logs, stores and model repositories."""
    return Path(os.environ.get("SHOPRANK_WORK_DIR") or PROJECT_ROOT / "var") / name
