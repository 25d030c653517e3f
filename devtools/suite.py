"""Dev tooling: starts and stops the whole suite as real processes: tritonserver, the three gRPC servers, a Celery
worker. Used by the demo, `make up` and the integration tests (free ports, readiness waits, fail
fast with the process log when one dies, always cleaned up)."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.security import triton_control_key
from core.settings import PROJECT_ROOT
from devtools import triton_launcher
from devtools.client import Credentials, SuiteClient, open_channel
from devtools.ports import free_port, log_tail, wait_until
from rankers import get_ranker

logger = logging.getLogger(__name__)

SERVICES = {
    "feedback": ("services.feedback_service", "shoprank.v1.FeedbackService"),
    "scoring": ("services.scoring_service", "shoprank.v1.ScoringService"),
    "profile": ("services.profile_service", "shoprank.v1.ProfileService"),
}


def grpc_serving(address: str, service: str, credentials: Credentials | None = None) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with open_channel(address, credentials) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@dataclass
class Suite:
    data_dir: Path
    model_repository: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    triton: triton_launcher.TritonServer | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RECSYS_DATA_DIR=str(self.data_dir),
            RECSYS_MODEL_REPOSITORY=str(self.model_repository),
            PYTHONUNBUFFERED="1",
            TOKENIZERS_PARALLELISM="false",
        )
        if "triton_grpc" in self.ports:
            env["RECSYS_TRITON_GRPC_URL"] = f"127.0.0.1:{self.ports['triton_grpc']}"
        env.update(self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def settings(self):
        """Settings for this deployment, as its child processes see them (this process's env untouched)."""
        from core.settings import Settings

        saved = dict(os.environ)
        try:
            os.environ.update({k: v for k, v in self.env().items() if k.startswith("RECSYS_")})
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def apply_env(self) -> None:
        """Point this process (the demo, a test) at the same deployment as the children."""
        os.environ.update({k: v for k, v in self.env().items() if k.startswith("RECSYS_")})

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def credentials(self, role: str = "admin") -> Credentials:
        """The deployment's TLS trust and the generated API key of `role` (core.security)."""
        return Credentials.of(self.settings(), role)

    def client(self, *names: str, role: str = "admin") -> SuiteClient:
        """A client of the named servers (default: feedback, scoring and profile, those that run)."""
        names = names or tuple(n for n in ("feedback", "scoring", "profile") if n in self.ports)
        addresses = [self.address(n) if n in names else None for n in ("feedback", "scoring", "profile")]
        assert addresses[0] is not None, "a SuiteClient always has the feedback server"
        return SuiteClient(addresses[0], addresses[1], addresses[2], credentials=self.credentials(role))

    def prepare(self) -> None:
        """Data folders, Feast registration, and Triton's ports fixed now so that every process,
        started before or after tritonserver, knows where it will be."""
        self.ports.setdefault("triton_grpc", free_port())
        self.ports.setdefault("triton_http", free_port())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        from core.security import ensure_secrets

        ensure_secrets(self.settings())  # certificates and keys before any server starts
        subprocess.run([sys.executable, "-m", "core.features", "apply"], env=self.env(), check=True,
                       stdout=open(self.log_dir / "feast-apply.log", "ab"), stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)

    def start_triton(self, timeout: float = 180.0) -> None:
        self.triton = triton_launcher.start(
            self.model_repository, self.log_dir / "tritonserver.log", models=(get_ranker(self.settings().ranker).model_name,),
            grpc_port=self.ports.get("triton_grpc"), http_port=self.ports.get("triton_http"), timeout=timeout,
            env={k: v for k, v in self.extra_env.items() if k.startswith("RECSYS_")},
            control_key=triton_control_key(self.settings()),
        )
        self.ports["triton_grpc"] = self.triton.grpc_port
        self.ports["triton_metrics"] = self.triton.metrics_port

    def metrics_url(self, name: str) -> str:
        """Prometheus /metrics of a service ("feedback", "scoring", "profile") or of "triton"."""
        return f"http://127.0.0.1:{self.ports[name + '_metrics']}/metrics"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True)
        self.processes[name] = proc
        return proc

    def start_services(self, names: tuple[str, ...] = ("feedback", "scoring", "profile"), timeout: float = 120.0) -> None:
        """Start the servers together (their imports overlap) and wait for each to be SERVING."""
        for name in names:
            self.ports.setdefault(name, free_port())
            self.ports.setdefault(f"{name}_metrics", free_port())
            module, _ = SERVICES[name]
            self._spawn(name, [sys.executable, "-m", module, "--address", self.address(name),
                               "--metrics-address", f"127.0.0.1:{self.ports[name + '_metrics']}"])
        for name in names:
            address, service = self.address(name), SERVICES[name][1]

            credentials = self.credentials().without_key()

            def serving(address: str = address, service: str = service, credentials: Credentials = credentials) -> bool:
                return grpc_serving(address, service, credentials)

            wait_until(serving, self.processes[name], timeout, f"{name} service", self.log_dir / f"{name}.log")

    def start_worker(self, timeout: float = 120.0) -> None:
        log = self.log_dir / "worker.log"
        start = log.stat().st_size if log.exists() else 0
        proc = self._spawn("worker", [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "training,features",
                                      "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "1",
                                      "--loglevel", "INFO", "--hostname", f"trainer-{os.getpid()}@%h", "--without-gossip", "--without-mingle"])

        def ready() -> bool:
            with open(log, "rb") as f:
                f.seek(start)
                return b" ready." in f.read()

        wait_until(ready, proc, timeout, "celery worker", log)

    def start_ingest(self, items: dict[str, Any]) -> None:
        """Just what ingest needs: secrets, Feast, the feedback service, and the catalogue upserted."""
        self.prepare()
        self.start_services(("feedback",))
        client = self.client("feedback", role="storefront")
        client.upsert_items(items)
        client.close()

    def restart_dead(self) -> list[str]:
        """Start again whatever died (a service, the worker, tritonserver), each waited for until ready;
        returns what was restarted. `make up` calls it every few seconds: a supervisor for one machine."""
        restarted = []
        if self.triton is not None and self.triton.process.poll() is not None:
            logger.warning("tritonserver exited with %s; restarting it", self.triton.process.returncode)
            self.triton.stop()  # its stubs too
            self.start_triton()
            restarted.append("triton")
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                continue
            logger.warning("%s exited with %s; restarting it", name, proc.returncode)
            del self.processes[name]
            if name == "worker":
                self.start_worker()
            else:
                self.start_services((name,))
            restarted.append(name)
        return restarted

    def stop_process(self, name: str, grace: float = 15.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill_process_keep(self, name: str) -> None:
        """SIGKILL a process but keep it registered, as a crash would (restart_dead starts it again)."""
        proc = self.processes[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def kill_process(self, name: str) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def died(self) -> dict[str, str]:
        """Every process of the suite that has exited on its own, with its exit code and log tail."""
        dead = {name: f"exited with {proc.returncode}:\n{self.tail(name)}" for name, proc in self.processes.items() if proc.poll() is not None}
        if self.triton is not None and self.triton.process.poll() is not None:
            dead["tritonserver"] = f"exited with {self.triton.process.returncode}:\n{log_tail(self.triton.log_path)}"
        return dead

    def stop(self) -> None:
        # a harness that failed because a process died says which and why before the logs are gone
        # (they live in the harness's temporary directory)
        for name, what in self.died().items():
            print(f"[suite] {name} {what}", file=sys.stderr, flush=True)
        for name in list(self.processes)[::-1]:
            try:
                self.stop_process(name)
            except Exception:  # noqa: BLE001 - keep stopping the rest
                logger.exception("stopping %s", name)
        if self.triton is not None:
            self.triton.stop()
            self.triton = None

    def tail(self, name: str) -> str:
        return log_tail(self.log_dir / f"{name}.log")

    def __enter__(self) -> "Suite":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def deploy(root: Path, shop: Any, extra_env: dict[str, str], bootstrap_steps: int = 2, ingest_fraction: float = 0.6) -> Suite:
    """A whole deployment under `root` from a shop: catalogue and the first `ingest_fraction` of its events
    through the feedback service, version 1 bootstrapped, then tritonserver, scoring, profile and a Celery
    worker (the integration tests' deployment, and the benchmarks')."""
    from workers.publishing import bootstrap

    suite = Suite(data_dir=root / "data", model_repository=root / "triton_models", extra_env=dict(extra_env))
    try:
        suite.prepare()
        suite.start_services(("feedback", "profile"))
        past = shop.events if ingest_fraction >= 1 else shop.split(ingest_fraction)[0]
        client = suite.client("feedback")
        client.upsert_items(shop.items)
        client.record_events(past)
        client.close()
        bootstrap(suite.settings(), max_steps=bootstrap_steps, batch_size=8)
        suite.start_triton()
        suite.start_services(("scoring",))
        suite.start_worker()
    except BaseException:
        suite.stop()
        raise
    return suite
