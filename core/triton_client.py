"""Click-probability inference on Triton and explicit model control."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from core.tracing import outgoing_headers

logger = logging.getLogger(__name__)


class InferenceUnavailable(Exception):
    """Triton could not be reached or did not answer."""


@dataclass(frozen=True)
class Scores:
    probabilities: np.ndarray
    model_version: str


VERSION_CACHE_S = 1.0  # how long the scoring path trusts its answer to "which version serves?"


class TritonClickClient:
    def __init__(self, url: str, timeout_s: float, model_name: str) -> None:
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self.url = url
        self.timeout_s = timeout_s
        self.model_name = model_name
        self.client = grpcclient.InferenceServerClient(url)
        self._version: tuple[float, str] = (float("-inf"), "")
        self._version_lock = threading.Lock()

    def serving_version(self) -> str:
        """The version Triton serves now (cached for a second; the config pins exactly one), so the
        request's per-version features and the model that scores them are the same version."""
        with self._version_lock:
            stamp, version = self._version
            if time.monotonic() - stamp < VERSION_CACHE_S and version:
                return version
        ready = self.serving_versions()
        version = max(ready, key=int) if ready else ""
        if not version:
            raise InferenceUnavailable(f"Triton serves no version of {self.model_name}")
        with self._version_lock:
            self._version = (time.monotonic(), version)
        return version

    def forget_version(self) -> None:
        with self._version_lock:
            self._version = (float("-inf"), "")

    def score(self, inputs: dict[str, np.ndarray], version: str = "", request_id: str = "") -> Scores:
        """One request with every input the model takes (int64 or float32 arrays, by name) to
        `version` (or whichever Triton serves); returns the probabilities and the version that answered."""
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
                outputs=[self._grpc.InferRequestedOutput("probability")],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            self.forget_version()  # the version may have just been replaced: ask again next time
            raise InferenceUnavailable(str(exc)) from exc
        return Scores(result.as_numpy("probability")[:, 0], result.get_response().model_version)

    def load(self) -> None:
        """Ask Triton to (re)load the model, picking up the newest version folder."""
        self.client.load_model(self.model_name)

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

    def serving_versions(self) -> set[str]:
        """The versions that are loaded and ready now."""
        from tritonclient.utils import InferenceServerException

        try:
            index = self.client.get_model_repository_index(as_json=True)
        except InferenceServerException as exc:
            raise InferenceUnavailable(str(exc)) from exc
        return {m.get("version", "") for m in index.get("models", []) if m.get("name") == self.model_name and m.get("state") == "READY"}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead channel is not an error worth reporting
            pass
