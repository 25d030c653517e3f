"""The Triton model repository on disk: numeric version folders, lineage records, atomic publishing.

A version folder holds everything it needs to serve: `model.pt` (TorchScript), `model.py` (the
python-backend loader, copied from triton_models/<model>/model.py), `lineage.json`, and whatever its
ranker writes beside them (the fusion ranker: item-embedding table, co-purchase table, signal
statistics). A new version is written under a temporary name that Triton ignores, flushed, then
renamed to its number in one step, so Triton never sees a half-written version, even if the writer is
killed; promotion and rollback switch all of it at once.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from core.domain import Lineage
from core.settings import PROJECT_ROOT
from core.triton_config import experiment_of, parse_config, pin_version, pinned_version, serve_versions, served_versions, with_instances, write_config

logger = logging.getLogger(__name__)

TEMPLATES = PROJECT_ROOT / "triton_models"  # each model's committed config.pbtxt and model.py
TMP_PREFIX = ".tmp-"


class ModelRepository:
    def __init__(self, root: Path, model_name: str) -> None:
        self.root = root
        self.model_name = model_name
        self.model_dir = root / model_name
        self.template_dir = TEMPLATES / model_name

    def ensure_layout(self, instance_kind: str = "KIND_CPU", instances: int = 1, reconfigure: bool = False) -> None:
        """Create the model folder with its config.pbtxt if absent (a fresh deployment): the committed
        config, on the deployment's Triton instances (RECSYS_TRITON_INSTANCE_KIND / _INSTANCES). With
        `reconfigure` (the bootstrap at each start) an existing config is moved to those instances too,
        its pinned version kept: a deployment moved to a GPU host gets KIND_GPU at its next load."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        config = self.model_dir / "config.pbtxt"
        template = self.template_dir / "config.pbtxt"
        if template.resolve() == config.resolve():
            raise ValueError(f"the model repository {self.root} is the committed templates folder; runtime state belongs under the data "
                             "directory (RECSYS_MODEL_REPOSITORY unset: <RECSYS_DATA_DIR>/triton_models)")
        if not config.exists():
            if not template.exists():
                raise FileNotFoundError(f"no committed config for {self.model_name} at {template}")
            write_config(config, with_instances(parse_config(template), instance_kind, instances))
        elif reconfigure:
            current = parse_config(config)
            wanted = with_instances(current, instance_kind, instances)
            if wanted != current:
                logger.info("%s: Triton instances now %d x %s", self.model_name, instances, instance_kind)
                write_config(config, wanted)

    def versions(self) -> list[int]:
        if not self.model_dir.exists():
            return []
        return sorted(int(p.name) for p in self.model_dir.iterdir() if p.is_dir() and p.name.isdigit() and (p / "model.pt").exists())

    def latest(self) -> int | None:
        v = self.versions()
        return v[-1] if v else None

    def version_dir(self, version: int) -> Path:
        return self.model_dir / str(version)

    def model_path(self, version: int) -> Path:
        return self.version_dir(version) / "model.pt"

    def lineage(self, version: int) -> Lineage | None:
        path = self.model_dir / str(version) / "lineage.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return Lineage(**{k: v for k, v in data.items() if k in Lineage.__dataclass_fields__})

    def serving_version(self) -> int | None:
        """The version the config tells Triton to serve: the pinned one, else the newest."""
        config = self.model_dir / "config.pbtxt"
        pinned = pinned_version(parse_config(config)) if config.exists() else None
        return pinned if pinned is not None else self.latest()

    def pin(self, version: int) -> int | None:
        """Point the config at `version` (atomically); returns the version served before."""
        if version not in self.versions():
            raise FileNotFoundError(f"no version {version} in {self.model_dir}")
        before = self.serving_version()
        write_config(self.model_dir / "config.pbtxt", pin_version(parse_config(self.model_dir / "config.pbtxt"), version))
        logger.info("config now serves version %d (was %s)", version, before)
        return before

    def write_served(self, versions: list[int], experiment_json: str = "") -> None:
        """Point the config at `versions` (the first primary) with the experiment's definition ("" for
        none), atomically. Only core.model_serving calls this where a Triton watches the repository."""
        for version in versions:
            if version not in self.versions():
                raise FileNotFoundError(f"no version {version} in {self.model_dir}")
        config = self.model_dir / "config.pbtxt"
        write_config(config, serve_versions(parse_config(config), versions, experiment_json))
        logger.info("config now serves versions %s%s", versions, " with an experiment" if experiment_json else "")

    def config_text(self) -> str | None:
        """The serving config exactly as it is on disk (None: no config yet)."""
        config = self.model_dir / "config.pbtxt"
        return config.read_text() if config.exists() else None

    def restore_config(self, text: str | None) -> None:
        """Put back a config read with config_text() (atomically; None removes it)."""
        config = self.model_dir / "config.pbtxt"
        if text is None:
            config.unlink(missing_ok=True)
            return
        tmp = config.with_name(config.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, config)

    def served(self) -> tuple[list[int], str]:
        """The versions the config serves (primary first) and the running experiment's JSON ("" when none)."""
        config = self.model_dir / "config.pbtxt"
        if not config.exists():
            return [], ""
        parsed = parse_config(config)
        latest = self.latest()
        return served_versions(parsed) or ([latest] if latest is not None else []), experiment_of(parsed)

    def annotate(self, version: int, key: str, entry: dict) -> None:
        """Append `entry` to the list `notes[key]` of a version's lineage (atomically rewritten): the
        decisions taken about a version after it was published (experiments, canaries)."""
        path = self.version_dir(version) / "lineage.json"
        if not path.exists():
            return
        data = json.loads(path.read_text())
        data.setdefault("notes", {}).setdefault(key, []).append(entry)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)

    def clean_stale_temporaries(self, older_than_s: float = 0.0) -> list[str]:
        """Remove temporary folders left by writers that died (a killed fine-tune)."""
        removed: list[str] = []
        if not self.model_dir.exists():
            return removed
        for p in self.model_dir.iterdir():
            if p.name.startswith(TMP_PREFIX) and time.time() - p.stat().st_mtime >= older_than_s:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        return removed

    def publish(self, write_version: Callable[[Path], None], lineage: Lineage, tag: str) -> int:
        """Write a new version folder under a temporary name (`write_version` fills the folder) and
        rename it to the next number."""
        self.ensure_layout()
        safe_tag = re.sub(r"[^A-Za-z0-9_-]", "_", tag)[:64]  # a tag never walks out of the model folder
        tmp = self.model_dir / f"{TMP_PREFIX}{safe_tag}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write_version(tmp)
        shutil.copy2(self.template_dir / "model.py", tmp / "model.py")
        for _ in range(20):
            version = (self.latest() or 0) + 1
            lineage.version = str(version)
            (tmp / "lineage.json").write_text(json.dumps(asdict(lineage), indent=2))
            _fsync_tree(tmp)
            try:
                os.rename(tmp, self.model_dir / str(version))  # atomic; fails if that number appeared meanwhile
            except OSError:
                continue
            _fsync_dir(self.model_dir)
            logger.info("published %s version %d", self.model_dir.name, version)
            return version
        raise RuntimeError("could not find a free version number")


def _fsync_tree(path: Path) -> None:
    for p in path.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
