"""The one place that puts versions into service.

Publishing a gated version, Rollback, starting an experiment and ending one all come down to the same
move: take a snapshot of what the model repository's config serves now, write a config that serves the
new versions (the first is the primary; an experiment's definition rides along as a config parameter),
have every Triton the deployment serves through load the model explicitly and wait until each of those
versions is READY there, and if any of that fails, put the exact snapshot back (the same bytes), have
the Tritons load it again, and raise `ServingFailed` (UNAVAILABLE) saying what still serves.

Nothing else writes a serving config while Triton is involved; `ModelRepository.pin` stays as the
file-level primitive for repositories no Triton watches (replays, tests).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from core.errors import Unavailable
from core.model_repository import ModelRepository
from core.settings import Settings
from core.triton_client import InferenceUnavailable, TritonClickClient

logger = logging.getLogger(__name__)

DEFAULT_LOAD_TIMEOUT_S = 120.0


class ServingFailed(Unavailable):
    """Triton could not load what was asked; the snapshot taken before serves again."""


@dataclass(frozen=True)
class ServedSnapshot:
    """What the config served at one moment: its exact text (None: there was no config yet), and read
    from it, the versions (primary first) and the running experiment's JSON."""

    config_text: str | None
    versions: tuple[int, ...]
    experiment_json: str

    def describe(self) -> str:
        if not self.versions:
            return "no version"
        what = f"version {self.versions[0]}" if len(self.versions) == 1 else f"versions {', '.join(map(str, self.versions))}"
        return what + (" with its experiment" if self.experiment_json else "")


class ModelServing:
    """Switches what one model serves, on every Triton in `triton_urls` (each connected with
    `connect(url)`, closed after use)."""

    def __init__(self, repo: ModelRepository, triton_urls: Sequence[str], timeout_s: float = 10.0,
                 load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S, connect: Callable[[str], TritonClickClient] | None = None) -> None:
        if not triton_urls:
            raise ValueError("ModelServing needs at least one Triton URL")
        self.repo = repo
        self.triton_urls = tuple(triton_urls)
        self.load_timeout_s = load_timeout_s
        self._connect = connect or (lambda url: TritonClickClient(url, timeout_s, repo.model_name))

    def snapshot(self) -> ServedSnapshot:
        text = self.repo.config_text()
        versions, experiment_json = self.repo.served()
        return ServedSnapshot(text, tuple(versions), experiment_json)

    def serve(self, versions: Sequence[int], experiment_json: str = "") -> ServedSnapshot:
        """Serve exactly `versions` (the first to everyone outside an experiment), with `experiment_json`
        (empty: no experiment). Returns the snapshot of what served before. On failure the snapshot is
        restored everywhere and ServingFailed raised."""
        wanted = [int(v) for v in versions]
        if not wanted:
            raise ValueError("serve() needs at least one version")
        before = self.snapshot()
        self.repo.write_served(wanted, experiment_json)
        try:
            self._load_everywhere(wanted)
        except InferenceUnavailable as exc:
            self.restore(before)
            raise ServingFailed(f"Triton could not load version(s) {', '.join(map(str, wanted))} ({exc}); {before.describe()} still serves") from None
        logger.info("serving %s (was %s)", ", ".join(map(str, wanted)) + (" with an experiment" if experiment_json else ""), before.describe())
        return before

    def restore(self, snapshot: ServedSnapshot) -> None:
        """Put `snapshot`'s exact config back and have every Triton load it (best effort: a Triton that
        cannot load it now keeps what it had loaded, which is the snapshot's versions)."""
        self.repo.restore_config(snapshot.config_text)
        if not snapshot.versions:
            return
        try:
            self._load_everywhere(list(snapshot.versions))
        except InferenceUnavailable as exc:
            logger.error("restored the config serving %s, but a Triton did not confirm it: %s", snapshot.describe(), exc)

    def _load_everywhere(self, versions: list[int]) -> None:
        for url in self.triton_urls:
            client = self._connect(url)
            try:
                client.load_and_wait_all(versions, self.load_timeout_s)
            finally:
                client.close()


def model_serving(settings: Settings, repo: ModelRepository, load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S) -> ModelServing:
    """The deployment's ModelServing: it loads every Triton of RECSYS_TRITON_LOAD_URLS (default: the one
    at RECSYS_TRITON_GRPC_URL)."""
    from core.triton_client import triton_client

    return ModelServing(repo, settings.triton_load_url_list, settings.triton_timeout_s, load_timeout_s,
                        connect=lambda url: triton_client(settings, repo.model_name, url))
