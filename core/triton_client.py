"""Click-probability inference on Triton and explicit model control."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.experiments.definition import Experiment
from core.tracing import outgoing_headers
from core.triton_config import experiment_of, served_versions

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)


class InferenceUnavailable(Exception):
    """Triton could not be reached or did not answer."""


@dataclass(frozen=True)
class ServingPlan:
    """What Triton serves now: the primary version (everyone outside an experiment), every ready
    version, and the running experiment (from the model's config parameters) if any."""

    primary: str
    ready: frozenset[str]
    experiment: Experiment | None = None


@dataclass(frozen=True)
class Scores:
    probabilities: np.ndarray
    model_version: str


VERSION_CACHE_S = 1.0  # how long the scoring path trusts its answer to "which version serves?"


class TritonClickClient:
    """Inference and model control on one Triton. `control_key`: what Triton's restricted APIs (load,
    repository index; core.security.TRITON_RESTRICTED) require in their header; inference needs none."""

    def __init__(self, url: str, timeout_s: float, model_name: str, control_key: str = "") -> None:
        import tritonclient.grpc as grpcclient

        from core.security import TRITON_GRPC_CONTROL_HEADER

        self._grpc = grpcclient
        self.url = url
        self.timeout_s = timeout_s
        self.model_name = model_name
        self.client = grpcclient.InferenceServerClient(url)
        self._control = {TRITON_GRPC_CONTROL_HEADER: control_key} if control_key else None
        self._plan: tuple[float, ServingPlan | None] = (float("-inf"), None)
        self._experiments: dict[str, Experiment] = {}  # parsed definitions by their JSON
        self._version_lock = threading.Lock()

    def serving_version(self) -> str:
        """The primary version Triton serves now (cached for a second), so the request's per-version
        features and the model that scores them are the same version."""
        return self.serving_plan().primary

    def serving_plan(self) -> ServingPlan:
        """The primary version, the ready versions and the running experiment (cached for a second):
        the config lists the served versions, primary first, and carries the experiment's definition."""
        with self._version_lock:
            stamp, plan = self._plan
            if time.monotonic() - stamp < VERSION_CACHE_S and plan is not None:
                return plan
        from tritonclient.utils import InferenceServerException

        ready = self.serving_versions()
        try:
            config = self.client.get_model_config(self.model_name, client_timeout=self.timeout_s).config
        except InferenceServerException as exc:
            raise InferenceUnavailable(str(exc)) from exc
        listed = [str(v) for v in served_versions(config)]
        primary = next((v for v in listed if v in ready), "") if listed else (max(ready, key=int) if ready else "")
        if not primary:
            raise InferenceUnavailable(f"Triton serves no version of {self.model_name}")
        definition = experiment_of(config)
        experiment = None
        if definition:
            experiment = self._experiments.get(definition)
            if experiment is None:
                experiment = self._experiments[definition] = Experiment.from_json(definition)
        plan = ServingPlan(primary, frozenset(ready), experiment)
        with self._version_lock:
            self._plan = (time.monotonic(), plan)
        return plan

    def forget_version(self) -> None:
        with self._version_lock:
            self._plan = (float("-inf"), None)

    def score(self, inputs: dict[str, np.ndarray], version: str = "", request_id: str = "") -> Scores:
        """One request with every input the model takes (int64 or float32 arrays, by name) to
        `version` (or whichever Triton serves); returns the probabilities and the version that answered."""
        result = self._infer(inputs, "probability", version, request_id)
        return Scores(result.as_numpy("probability")[:, 0], result.get_response().model_version)

    def shopper_vectors(self, inputs: dict[str, np.ndarray], version: str) -> np.ndarray:
        """Shopper vectors [B, D] of a shopper-state request (many shoppers' histories) to `version`."""
        return self._infer(inputs, "shopper_vector", version, "").as_numpy("shopper_vector")

    def _infer(self, inputs: dict[str, np.ndarray], output: str, version: str, request_id: str) -> Any:
        from tritonclient.utils import InferenceServerException

        request = []
        for name, array in inputs.items():
            t = self._grpc.InferInput(name, list(array.shape), "FP32" if array.dtype == np.float32 else "INT64")
            t.set_data_from_numpy(array)
            request.append(t)
        try:
            result = self.client.infer(
                self.model_name,
                request,
                model_version=version,
                request_id=request_id,  # Triton's logs and traces name the storefront's request
                headers=outgoing_headers() or None,  # the trace continues in Triton (with --trace-config mode=opentelemetry)
                outputs=[self._grpc.InferRequestedOutput(output)],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            self.forget_version()  # the version may have just been replaced: ask again next time
            raise InferenceUnavailable(str(exc)) from exc
        return result

    def load(self) -> None:
        """Ask Triton to (re)load the model, picking up the newest version folder."""
        self.client.load_model(self.model_name, headers=self._control)

    def load_and_wait(self, version: int, timeout_s: float = 120.0) -> None:
        """Explicit load of the model, then wait until Triton reports `version` ready."""
        import time

        from tritonclient.utils import InferenceServerException

        try:
            self.load()
        except InferenceServerException as exc:
            raise InferenceUnavailable(str(exc)) from exc
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if str(version) in self.serving_versions():
                return
            time.sleep(0.2)
        raise InferenceUnavailable(f"Triton did not report version {version} ready within {timeout_s:.0f}s")

    def load_and_wait_all(self, versions: list[int], timeout_s: float = 120.0) -> None:
        """Explicit load of the model, then wait until every one of `versions` is ready."""
        from tritonclient.utils import InferenceServerException

        try:
            self.load()
        except InferenceServerException as exc:
            raise InferenceUnavailable(str(exc)) from exc
        deadline = time.monotonic() + timeout_s
        wanted = {str(v) for v in versions}
        while time.monotonic() < deadline:
            if wanted <= self.serving_versions():
                return
            time.sleep(0.2)
        raise InferenceUnavailable(f"Triton did not report versions {sorted(wanted)} ready within {timeout_s:.0f}s")

    def serving_versions(self) -> set[str]:
        """The versions that are loaded and ready now."""
        from tritonclient.utils import InferenceServerException

        try:
            index = self.client.get_model_repository_index(headers=self._control, as_json=True)
        except InferenceServerException as exc:
            raise InferenceUnavailable(str(exc)) from exc
        return {m.get("version", "") for m in index.get("models", []) if m.get("name") == self.model_name and m.get("state") == "READY"}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead channel is not an error worth reporting
            pass


def triton_client(settings: "Settings", model_name: str, url: str = "", timeout_s: float | None = None) -> TritonClickClient:
    """The deployment's client of the Triton at `url` (default RECSYS_TRITON_GRPC_URL), with its control key."""
    from core.security import triton_control_key

    return TritonClickClient(url or settings.triton_grpc_url, settings.triton_timeout_s if timeout_s is None else timeout_s,
                             model_name, triton_control_key(settings))
