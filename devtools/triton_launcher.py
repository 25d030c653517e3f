"""Starts the `tritonserver` binary shipped in the nvidia-pytriton wheel, as the embedded default.

The wheel carries the server, its libraries (`nvidia_pytriton.libs`) and python-backend stubs for each
Python version. The stub embeds `libpython3.X.so.1.0` (Debian: `libpython3.11`) and finds torch
through the `python3` first on PATH, so the project virtualenv's `bin` goes first.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.security import TRITON_CONTROL_HEADER, triton_restriction_flags
from devtools.ports import free_port, wait_until

logger = logging.getLogger(__name__)


@dataclass
class TritonPaths:
    binary: Path
    backends: Path
    libs: Path


def locate() -> TritonPaths:
    """Paths inside the installed nvidia-pytriton wheel, with the stub for this Python put in place."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nvidia-pytriton is not installed; run `make install`")
    root = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
    site = root.parents[1]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub_src = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    stub_dst = root / "backends" / "python" / "triton_python_backend_stub"
    if not stub_dst.exists() or stub_dst.stat().st_size != stub_src.stat().st_size:
        shutil.copy2(stub_src, stub_dst)
    for exe in (stub_dst, root / "bin" / "tritonserver"):
        exe.chmod(0o755)
    return TritonPaths(binary=root / "bin" / "tritonserver", backends=root / "backends", libs=site / "nvidia_pytriton.libs")


@dataclass
class TritonServer:
    process: subprocess.Popen
    http_port: int
    grpc_port: int
    metrics_port: int
    log_path: Path

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`, to the server's whole process group: its python-backend
        stubs ignore SIGTERM and would outlive it as orphans (hundreds of MB each)."""
        group = self.process.pid  # started with start_new_session: the group id is the server's pid
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.killpg(group, signal.SIGKILL)  # whatever is left of the group: the stubs
        except ProcessLookupError:
            pass

    def group_alive(self) -> bool:
        """Whether any process of the server's group is still running."""
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False


def triton_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    paths = locate()
    env = {**os.environ, **(extra or {})}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(paths.libs), env.get("LD_LIBRARY_PATH", "")) if p)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join((venv_bin, env.get("PATH", "")))
    return env


def start(
    model_repository: Path,
    log_path: Path,
    models: tuple[str, ...] = ("bert_click",),
    grpc_port: int | None = None,
    http_port: int | None = None,
    timeout: float = 180.0,
    bind: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    control_key: str = "",
) -> TritonServer:
    """Start tritonserver with explicit model control, wait until ready, fail fast if it dies. Its ports
    (whose gRPC API loads and unloads models) listen on `bind` only: loopback by default, a private
    network address in a multi-machine deployment, never every interface. `env` is added to this
    process's environment for the server (the models read RECSYS_* variables there). `control_key`: the
    header value its model-control API requires (core.security.triton_restriction_flags); empty: none."""
    paths = locate()
    http_port = http_port or free_port()
    grpc_port = grpc_port or free_port()
    metrics_port = free_port()
    cmd = [
        str(paths.binary),
        f"--model-repository={model_repository}",
        f"--backend-directory={paths.backends}",
        "--model-control-mode=explicit",
        *[f"--load-model={m}" for m in models],
        f"--http-address={bind}",
        f"--http-port={http_port}",
        f"--grpc-address={bind}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={bind}",
        f"--metrics-port={metrics_port}",
        "--allow-metrics=true",  # Prometheus text on the metrics port (inference counts, queue and compute times)
        "--strict-readiness=true",
        "--exit-on-error=false",
        "--log-verbose=0",
        *triton_restriction_flags(control_key),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab")
    logger.info("starting tritonserver: %s", " ".join(c.split(TRITON_CONTROL_HEADER)[0] + "…" if TRITON_CONTROL_HEADER in c else c for c in cmd))
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=triton_env(env), start_new_session=True)
    server = TritonServer(proc, http_port, grpc_port, metrics_port, log_path)

    def ready() -> bool:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            return client.is_server_ready() and all(client.is_model_ready(m) for m in models)
        finally:
            client.close()

    started = time.monotonic()
    try:
        wait_until(ready, proc, timeout, "tritonserver", log_path)
    except BaseException:
        server.stop()
        raise
    logger.info("tritonserver ready on grpc %s after %.1fs", grpc_port, time.monotonic() - started)
    return server
