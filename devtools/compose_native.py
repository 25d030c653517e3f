"""compose.yaml without a container engine: validated against the compose-spec schema, then every
service's own command run natively with its compose environment, in depends_on order, each waited for
with its own healthcheck command. Used by tests/integration/test_compose_native.py and `make compose-native`.

What differs from `docker compose up`, and why it still checks the file:
- Hostnames of services map to 127.0.0.1, and each container port to a free local port (one mapping for
  the whole run, applied to environment values, commands, healthchecks, mounted config files and secrets).
- postgres is this machine's server (the same software the image runs): a fresh database with compose's
  user; redis runs natively as its own redis-server with compose's config (TLS only, a password).
- Images we do not build run their program from this machine: `tritonserver` from the nvidia-pytriton
  wheel, nginx from Debian. Services with a `build:` run their command with this virtualenv's Python.
- Replicas are that many processes; they share their gRPC port through SO_REUSEPORT (a Docker service
  name resolves to every replica), each has its own metrics port.
- Named volumes and the secrets' files are folders under the run's root.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.settings import PROJECT_ROOT
from devtools.ports import free_port, log_tail

logger = logging.getLogger(__name__)

COMPOSE_FILES = (PROJECT_ROOT / "compose.yaml",)
SCHEMA = Path(sys.prefix) / "share" / "compose-spec" / "compose_spec.json"  # scripts/install.sh puts it there
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/lib/postgresql/bin"))
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution on every string of the file: ${VAR}, ${VAR:-default}, $$ → $."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(3)
        return env.get(name) or (m.group(2) if m.group(2) is not None else "")

    return _VAR.sub(sub, value)


def merge(base: Any, overlay: Any) -> Any:
    """Compose's merge of several -f files: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return overlay


def load(files: tuple[Path, ...] = COMPOSE_FILES, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose model of `files` (later files overlay earlier ones), interpolated."""
    model: dict[str, Any] = {}
    for path in files:
        model = merge(model, yaml.safe_load(path.read_text()))
    return interpolate(model, dict(os.environ) if env is None else env)


def validate(model: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError where the model breaks the compose-spec schema."""
    import jsonschema

    if not SCHEMA.exists():
        raise FileNotFoundError(f"no compose-spec schema at {SCHEMA}; run `make install`")
    jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text())).validate(model)  # the schema's own draft


def start_order(services: dict[str, Any]) -> list[str]:
    """Services in an order where each comes after what it depends_on (raises on a cycle)."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise ValueError(f"depends_on cycle through {name}")
        state[name] = "visiting"
        for dep in depends_on(services[name]):
            visit(dep)
        state[name] = "done"
        order.append(name)

    for name in services:
        visit(name)
    return order


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def active(services: dict[str, Any], profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """The services `up` starts with these profiles active."""
    return {n: s for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)}


@dataclass
class NativeCompose:
    """One native run of a compose model under `root`; `start()` brings it up, `stop()` down."""

    root: Path
    model: dict[str, Any]
    secrets_source: Path = Path()  # the folder core.compose_secrets wrote (the operator's copies)
    pg_dir: Path | None = None  # compose's PostgreSQL, run natively as the postgres user (outside root: 0700 parents)
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    processes: dict[str, list[subprocess.Popen]] = field(default_factory=dict)

    # --- the mapping from containers to this machine ---------------------------------------------
    def port(self, service: str, port: int) -> int:
        return self.ports.setdefault((service, port), free_port())

    def volume_dir(self, name: str) -> Path:
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def mounts(self, name: str) -> dict[str, Path]:
        """Container path → native path, for the service's volumes, bind mounts and secrets."""
        out = {}
        for spec in self.model["services"][name].get("volumes", []):
            source, target = spec.split(":")[:2]
            out[target] = self.root / "mounts" / name / Path(source).name if source.startswith((".", "/")) else self.volume_dir(source)
        out["/run/secrets"] = self._secrets_dir(name)
        return out

    def rewrite(self, name: str, text: str) -> str:
        """A string of service `name` as it reads natively: hostnames, ports, paths, databases."""
        services = self.model["services"]
        for target, native in sorted(self.mounts(name).items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"(?<![\w./-]){re.escape(target)}(?=/|\b|$)", str(native), text)
        text = re.sub(r"\b(?:0\.0\.0\.0|127\.0\.0\.1|localhost):(\d+)", lambda m: f"127.0.0.1:{self.port(name, int(m.group(1)))}", text)
        text = re.sub(r"\b(?:127\.0\.0\.1|localhost) (\d+)\b", lambda m: f"127.0.0.1 {self.port(name, int(m.group(1)))}", text)  # nc -z host port
        text = re.sub(r"(--(?:http|grpc|metrics)-port=|--port=)(\d+)", lambda m: f"{m.group(1)}{self.port(name, int(m.group(2)))}", text)
        text = re.sub(r"(?m)^(tls-port )(\d+)$", lambda m: f"{m.group(1)}{self.port(name, int(m.group(2)))}", text)  # redis.conf
        names = "|".join(re.escape(s) for s in sorted(services, key=len, reverse=True))
        text = re.sub(rf"(?<![\w.-])({names}):(\d+)", lambda m: f"127.0.0.1:{self.port(m.group(1), int(m.group(2)))}", text)
        return text

    def _secrets_dir(self, name: str) -> Path:
        if self._is_postgres(name) and self.pg_dir is not None:
            return self.pg_dir / "secrets"
        folder = self.root / "run-secrets" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def environment(self, name: str) -> dict[str, str]:
        # a container sees only what compose gives it: none of this shell's RECSYS_* (an exported
        # RECSYS_EVENTLOG_URL would win over the secret file) nor its PYTHONPATH
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "PROMETHEUS_")) and k != "PYTHONPATH"}
        declared = self.model["services"][name].get("environment") or {}
        if isinstance(declared, list):
            declared = dict(item.split("=", 1) for item in declared)
        env.update({k: self.rewrite(name, str(v)) for k, v in declared.items()})
        env.update(PYTHONPATH=str(PROJECT_ROOT), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   TOKENIZERS_PARALLELISM="false", HOSTNAME=socket.gethostname(),
                   RECSYS_SETTINGS_FILES_DIR=str(self.mounts(name)["/run/secrets"]))
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        return env

    # --- commands ---------------------------------------------------------------------------------
    def command(self, name: str, replica: int = 0) -> list[str]:
        service = self.model["services"][name]
        image = str(service.get("image", ""))
        if image.startswith("nginx"):
            conf = self._nginx_conf(name)
            return ["nginx", "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"]
        if self._is_postgres(name) and self.pg_dir is not None:
            options = [self.rewrite(name, str(a)) for a in (service.get("command") or ["postgres"])[1:]]
            return ["runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D", str(self.pg_dir / "data"), "-p", str(self.port(name, 5432)),
                    "-k", str(self.pg_dir), "-c", "listen_addresses=127.0.0.1", *options]
        args = [str(a) for a in service.get("command") or []]
        out = []
        for i, arg in enumerate(args):
            if replica and i and args[i - 1] == "--metrics-address":  # each replica has its own metrics port
                out.append(f"127.0.0.1:{self.metrics_port(name, int(arg.rsplit(':', 1)[1]), replica)}")
            else:
                out.append(self.rewrite(name, arg))
        return self._native_program(out)

    def metrics_port(self, name: str, port: int, replica: int = 0) -> int:
        return self.port(name, port) if replica == 0 else self.ports.setdefault((f"{name}#{replica}", port), free_port())

    def _native_program(self, args: list[str]) -> list[str]:
        if args[:1] == ["python"]:
            return [sys.executable, *args[1:]]
        if args[:1] == ["celery"]:
            return [sys.executable, "-m", "celery", *args[1:]]
        if args[:1] == ["tritonserver"] or (args[:2] == ["sh", "-c"] and "exec tritonserver " in args[2]):
            from devtools.triton_launcher import locate

            paths = locate()
            native = [str(paths.binary), f"--backend-directory={paths.backends}"]
            loopback = ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1"]
            if args[0] == "sh":  # `sh -c "exec tritonserver "$@" <flags>" tritonserver <args>`: the shell part runs as is
                return ["sh", "-c", args[2].replace("exec tritonserver ", f"exec {shlex.join(native)} ", 1), *args[3:], *loopback]
            return [*native, *args[1:], *loopback]
        return args

    def _nginx_conf(self, name: str) -> Path:
        """The gateway's mounted nginx.conf, rewritten: upstreams and certificates here, listening on loopback."""
        conf = self.mounts(name)["/etc/nginx/nginx.conf"]
        source = next(PROJECT_ROOT / s.split(":")[0] for s in self.model["services"][name]["volumes"] if s.split(":")[1] == "/etc/nginx/nginx.conf")
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        conf.parent.mkdir(parents=True, exist_ok=True)
        text = self.rewrite(name, source.read_text().replace("/tmp/", f"{self.root}/tmp/"))
        conf.write_text(re.sub(r"listen (\d+)", lambda m: f"listen 127.0.0.1:{self.port(name, int(m.group(1)))}", text))
        return conf

    def healthcheck(self, name: str) -> list[str] | None:
        check = (self.model["services"][name].get("healthcheck") or {}).get("test")
        if not check or check[0] == "NONE":
            return None
        if check[0] == "CMD-SHELL":
            return ["sh", "-c", self.rewrite(name, check[1]).replace("python ", f"{sys.executable} ", 1)]
        return self._native_program(shlex.split(self.rewrite(name, shlex.join(str(a) for a in check[1:]))))  # "host port" pairs too

    # --- up and down ------------------------------------------------------------------------------
    def prepare(self, secrets_source: Path) -> None:
        """Secrets' files rewritten per service; compose's PostgreSQL initialised as its image's entrypoint
        would (initdb with the compose user and password; the database is created once it runs)."""
        self.secrets_source = secrets_source
        postgres = [n for n in self.model["services"] if self._is_postgres(n)]
        if postgres:
            import pwd
            import tempfile

            self.pg_dir = Path(tempfile.mkdtemp(prefix="shoprank-compose-pg-"))
            (self.pg_dir / "secrets").mkdir()
        declared = self.model.get("secrets", {})
        for name, service in self.model["services"].items():
            for secret in service.get("secrets", []):
                source = secret if isinstance(secret, str) else secret["source"]
                target = secret if isinstance(secret, str) else secret.get("target", source)
                path = Path(declared[source]["file"])
                path = secrets_source / path.name if not path.is_absolute() else path
                (self._secrets_dir(name) / target).write_text(self.rewrite(name, path.read_text()))
        if postgres and self.pg_dir is not None:
            user = pwd.getpwnam("postgres")
            for item in [self.pg_dir, *self.pg_dir.rglob("*")]:
                os.chown(item, user.pw_uid, user.pw_gid)
                item.chmod(0o700 if item.is_dir() else 0o600)
            env = self.environment(postgres[0])
            password_file = self.pg_dir / "secrets" / "postgres_password"
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(self.pg_dir / "data"), "-U", "shoprank",
                            f"--pwfile={password_file}", "-A", "scram-sha-256"], env=env, check=True, capture_output=True)

    def start(self, services: list[str] | None = None, timeout_s: float = 300.0) -> None:
        names = services or start_order(active(self.model["services"]))
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        for name in names:
            for dep, condition in depends_on(self.model["services"][name]).items():
                self.wait(dep, condition, timeout_s)
            replicas = int((self.model["services"][name].get("deploy") or {}).get("replicas", 1))
            self.processes[name] = [self._spawn(name, k) for k in range(replicas)]
            logger.info("compose-native: started %s (%d)", name, replicas)
            if self._is_postgres(name):
                self.wait(name, "service_healthy", timeout_s)
                self._create_database(name)
        for name in names:  # like `up --wait`: every long-running service healthy, not only those depended on
            service = self.model["services"][name]
            if name in self.processes and service.get("restart") != "no" and service.get("healthcheck"):
                self.wait(name, "service_healthy", timeout_s)

    def _spawn(self, name: str, replica: int) -> subprocess.Popen:
        env = self.environment(name)
        if "tritonserver" in self.model["services"][name].get("command", [""])[:4]:
            from devtools.triton_launcher import triton_env

            env = triton_env(env)
        log = open(self.log_path(name, replica), "ab")
        cmd = self.command(name, replica)
        log.write(f"$ {shlex.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True)

    def log_path(self, name: str, replica: int = 0) -> Path:
        return self.root / "logs" / (f"{name}.log" if replica == 0 else f"{name}-{replica + 1}.log")

    def wait(self, name: str, condition: str, timeout_s: float) -> None:
        """Until `name` meets a depends_on condition; raises with its log if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            procs = self.processes.get(name, [])
            if condition == "service_completed_successfully":
                if procs and all(p.poll() is not None for p in procs):
                    if any(p.returncode for p in procs):
                        raise RuntimeError(f"{name} exited with {procs[0].returncode}:\n{log_tail(self.log_path(name))}")
                    return
            else:
                dead = [p for p in procs if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"{name} exited with {dead[0].returncode}:\n{log_tail(self.log_path(name))}")
                if condition == "service_started" or self.healthy(name):
                    return
            time.sleep(1.0)
        raise TimeoutError(f"{name} not {condition} after {timeout_s:.0f}s:\n{log_tail(self.log_path(name))}")

    def healthy(self, name: str) -> bool:
        """The service's healthcheck command exits 0 (as Docker runs it, here natively). Replicas share
        their port, so the probe reaches whichever one the kernel picks, not each in turn."""
        check = self.healthcheck(name)
        if check is None:
            return True
        return subprocess.run(check, env=self.environment(name), capture_output=True, cwd=PROJECT_ROOT, timeout=60).returncode == 0

    def stop(self) -> None:
        for name in list(self.processes)[::-1]:
            for proc in self.processes.pop(name):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        pass
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its group (Triton's stubs)
                except ProcessLookupError:
                    pass
                proc.wait()
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self.pg_dir = None

    # --- compose's PostgreSQL ---------------------------------------------------------------------
    def _is_postgres(self, name: str) -> bool:
        return str(self.model["services"][name].get("image", "")).startswith("postgres:")

    def database_url(self, database: str = "") -> str:
        """How this machine reaches compose's database: its user and password, TLS verified by the CA."""
        assert self.pg_dir is not None
        secrets = self.pg_dir / "secrets"
        env = self.model["services"][next(n for n in self.model["services"] if self._is_postgres(n))].get("environment") or {}
        database = database or env.get("POSTGRES_DB", "postgres")
        password = (secrets / "postgres_password").read_text().strip()
        return (f"postgresql+psycopg://{env.get('POSTGRES_USER', 'postgres')}:{password}@127.0.0.1:{self.port('postgres', 5432)}/{database}"
                f"?sslmode=verify-full&sslrootcert={self.secrets_source / 'ca.pem'}")

    def _create_database(self, name: str) -> None:
        """POSTGRES_DB, as the image's entrypoint creates it on a fresh volume."""
        import sqlalchemy as sa

        assert self.pg_dir is not None
        env = self.model["services"][name].get("environment") or {}
        admin = sa.create_engine(self.database_url("postgres").split("?")[0] + "?sslmode=require", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{env.get("POSTGRES_DB", "postgres")}"'))
        admin.dispose()


def main() -> None:
    """`make compose-native`: bring compose.yaml up natively under var/compose-native until Ctrl-C."""
    import argparse

    from core.compose_secrets import compose_secrets

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT / "var" / "compose-native")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    model = load()
    validate(model)
    shutil.rmtree(args.root, ignore_errors=True)
    compose_secrets(args.root / "secrets")
    run = NativeCompose(args.root, model)
    run.prepare(args.root / "secrets")
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        run.start()
        print("up: gateway on " + ", ".join(f"127.0.0.1:{run.port('gateway', p)}" for p in (50051, 50052, 50053))
              + f"; CA {args.root / 'secrets' / 'ca.pem'}; keys {args.root / 'secrets'}/<client>.key; logs {args.root / 'logs'}", flush=True)
        while not stop:
            time.sleep(1)
    finally:
        run.stop()


if __name__ == "__main__":
    main()
