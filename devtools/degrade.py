"""Versions made for experiments whose answer is known in advance (the online-experiment test and
`make bench-online`): a deliberately degraded copy of a fusion version, whose final layer is negated so
it ranks what the original thinks least likely first (it must lose), and an exact copy (an A/A test:
it must not lose). Published like any version (temporary name, atomic rename), their lineage saying
what they are; never built by production code."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from core.domain import Lineage
from core.model_repository import ModelRepository


def publish_copy(repo: ModelRepository, from_version: int) -> int:
    """The new version's number: an exact copy of `from_version` (every file but its lineage)."""
    source = repo.version_dir(from_version)

    def write(folder: Path) -> None:
        for path in source.iterdir():
            if path.is_file() and path.name not in ("model.py", "lineage.json"):
                shutil.copy2(path, folder / path.name)

    return repo.publish(write, _lineage(repo, from_version, "copy", f"an exact copy of version {from_version} (A/A tests)"), tag=f"copy-{from_version}")


def _lineage(repo: ModelRepository, from_version: int, kind: str, note: str) -> Lineage:
    parent = repo.lineage(from_version)
    return Lineage(version="", parent_version=str(from_version), created=time.time(), data_from=parent.data_from if parent else 0.0,
                   data_to=parent.data_to if parent else 0.0, example_count=0, final_loss=0.0, job_id=f"{kind}-{from_version}",
                   seq_to=parent.seq_to if parent else 0, notes={kind: note}, gate={"passed": False, "reason": f"{note}: made by devtools"})


def publish_degraded(repo: ModelRepository, from_version: int) -> int:
    """The new version's number: `from_version` with its ranking reversed."""
    import torch

    from rankers.fusion.network import load_fusion, save_fusion

    if repo.model_name != "fusion_click":
        raise ValueError(f"degrading is written for the fusion ranker, not {repo.model_name}")
    source = repo.version_dir(from_version)
    encoder, ranker = load_fusion(source / "model.pt")
    last = ranker.mlp[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.neg_()
        last.bias.neg_()

    def write(folder: Path) -> None:
        for path in source.iterdir():
            if path.is_file() and path.name not in ("model.pt", "model.py", "lineage.json"):
                shutil.copy2(path, folder / path.name)
        save_fusion(encoder, ranker, folder / "model.pt")

    lineage = _lineage(repo, from_version, "degraded", f"version {from_version} with its final layer negated (deliberately degraded)")
    return repo.publish(write, lineage, tag=f"degraded-{from_version}")
