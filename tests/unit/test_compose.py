"""compose.yaml, its overlays and the images, checked without a container engine: the compose-spec
schema, the rules the deployment keeps (healthchecks, depends_on conditions, restart policies, secrets
out of the file, only the storefront's ports published), and that what the files name exists (modules,
settings, COPY sources, the torch both images load TorchScript with). The native run of the same file
is tests/integration/test_compose_native.py."""
from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from core.settings import PROJECT_ROOT, Settings
from devtools.compose_native import SCHEMA, active, depends_on, load, start_order, validate
from rankers import get_ranker

COMPOSE, GPU, NFS = (PROJECT_ROOT / n for n in ("compose.yaml", "compose.gpu.yaml", "compose.nfs.yaml"))
STOREFRONT_PORTS = {"50051", "50052", "50053"}


@pytest.fixture(scope="module")
def model():
    return load((COMPOSE,), env={})


def app_services(model) -> dict:
    return {n: s for n, s in model["services"].items() if (s.get("build") or {}).get("dockerfile") == "Dockerfile"}


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"no compose-spec schema at {SCHEMA}: scripts/install.sh fetches it")
@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, GPU), (COMPOSE, NFS), (COMPOSE, GPU, NFS)], ids=lambda f: "+".join(p.name for p in f))
def test_valid_against_the_compose_spec_schema(files):
    validate(load(files, env={}))


def test_every_part_is_there_and_starts_in_an_order(model):
    services = model["services"]
    assert {"postgres", "redis", "bootstrap", "triton", "feedback", "scoring", "profile", "gateway", "worker", "beat", "flower",
            "prometheus", "grafana"} <= set(services)
    order = start_order(active(services))
    assert order.index("bootstrap") < min(order.index(n) for n in ("triton", "feedback", "scoring", "profile", "worker"))
    assert set(start_order(active(services, ("monitoring",)))) >= {"prometheus", "grafana"}


def test_healthchecks_conditions_and_restart_policies(model):
    for name, service in model["services"].items():
        if name == "bootstrap":
            assert service["restart"] == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
        deps = service.get("depends_on") or {}
        assert not isinstance(deps, list), f"{name}: depends_on without conditions races its dependencies"
        for dep, condition in depends_on(service).items():
            assert dep in model["services"], (name, dep)
            assert condition in ("service_healthy", "service_completed_successfully"), (name, dep, condition)
    for name in ("triton", "feedback", "scoring", "profile", "worker", "beat"):
        assert "bootstrap" in depends_on(model["services"][name]), name


def test_only_the_storefront_ports_are_published_to_every_interface(model):
    for name, service in model["services"].items():
        for port in service.get("ports", []):
            parts = str(port).split(":")
            if name == "gateway":
                assert parts[0] in STOREFRONT_PORTS and len(parts) == 2
            else:
                assert parts[0] == "127.0.0.1", f"{name} publishes {port} beyond the host's loopback"
    for name in ("feedback", "scoring", "profile", "triton", "postgres", "redis"):
        assert not model["services"][name].get("ports"), name


def test_replicas_have_no_host_ports_and_sit_behind_the_gateway(model):
    conf = (PROJECT_ROOT / "deploy" / "gateway" / "nginx.conf").read_text()
    for name, port in (("feedback", 50051), ("scoring", 50052), ("profile", 50053)):
        service = model["services"][name]
        assert f"0.0.0.0:{port}" in service["command"]
        assert f"server {name}:{port};" in conf and f"grpc_pass grpcs://{name}_replicas;" in conf
    assert model["services"]["scoring"]["deploy"]["replicas"] >= 2
    mounted = model["services"]["gateway"]["volumes"][0].split(":")[0]
    assert (PROJECT_ROOT / mounted).resolve() == (PROJECT_ROOT / "deploy" / "gateway" / "nginx.conf").resolve()


def test_secrets_are_files_outside_git_and_never_values_in_the_file(model):
    for name, service in model["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|PSEUDONYM_KEY|EVENTLOG_URL|REGISTRY_URL|API_KEY|_TOKEN", key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), f"{name}: {key} in the file"
    assert not re.search(r"postgresql\+psycopg://[^@\s]+:[^@\s]+@", COMPOSE.read_text())
    for secret in model["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")
    assert "deploy/secrets/" in (PROJECT_ROOT / ".gitignore").read_text()
    assert "deploy/secrets" in (PROJECT_ROOT / ".dockerignore").read_text()
    for name, service in app_services(model).items():
        if name != "flower":
            assert {"recsys_eventlog_url", "recsys_feast_registry_url", "recsys_pseudonym_key"} <= secret_names(service), name


def secret_names(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def networks_of(service: dict) -> set[str]:
    return set(service.get("networks") or ["default"])


def test_the_networks_are_segmented(model):
    """Only the gateway faces storefronts; Triton only where it is needed; the data stores only for the app."""
    services, nets = model["services"], model["networks"]
    reach = {name: {other for other, o in services.items() if other != name and networks_of(s) & networks_of(o)} for name, s in services.items()}
    assert {n for n, s in services.items() if any(not str(p).startswith("127.0.0.1:") for p in s.get("ports", []))} == {"gateway"}
    assert reach["gateway"] == {"feedback", "scoring", "profile"}
    # Prometheus for Triton's metrics port; feedback for its shopper-state writer (issue 26)
    assert reach["triton"] == {"scoring", "feedback", "worker", "bootstrap", "prometheus"}
    for store in ("postgres", "redis"):
        assert reach[store] <= {"postgres", "redis", "bootstrap", "feedback", "scoring", "profile", "worker", "beat", "flower"}, store
    assert "gateway" not in reach["postgres"] | reach["redis"] and "grafana" not in reach["redis"]
    for name in ("app", "models", "data", "metrics"):
        assert nets[name].get("internal") is True, name
    assert all("default" not in networks_of(s) for s in services.values())


def test_secrets_are_narrowed_to_who_reads_them(model):
    declared = {name: spec["file"] for name, spec in model["secrets"].items()}
    assert not any(f.endswith(("ca-key.pem", "storefront.key", "admin.key", "flower_password")) for f in declared.values())
    services = model["services"]
    assert secret_names(services["gateway"]) == {"gateway_cert", "gateway_key", "ca_cert"}
    assert not any(v.endswith(":/secrets") or ":/secrets:" in v for s in services.values() for v in s.get("volumes", []))
    for name in ("feedback", "scoring", "profile"):
        mounted = {s["source"]: s["target"] for s in services[name]["secrets"] if isinstance(s, dict)}
        assert mounted == {f"{name}_cert": "service_cert", f"{name}_key": "service_key"}, name  # a key pair of its own
    for name, service in services.items():
        keys = {k for k in secret_names(service) if k.endswith("_key") and k not in ("recsys_pseudonym_key", "recsys_triton_control_key")}
        assert keys <= {f"{name}_key"}, (name, keys)  # nobody holds another service's private key
    assert "api_keys" not in secret_names(services["flower"]) and "recsys_pseudonym_key" not in secret_names(services["flower"])
    assert "--conf=/run/secrets/flower_config" in services["flower"]["command"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert services["redis"]["command"] == ["redis-server", "/run/secrets/redis_conf"]
    # Triton's control key: Triton and those that load versions or read the repository index
    assert {n for n, s in services.items() if "recsys_triton_control_key" in secret_names(s)} == {"triton", "scoring", "feedback", "worker", "bootstrap"}
    script = services["triton"]["command"][2]
    for flag in ("--grpc-restricted-protocol=", "--http-restricted-api="):
        assert f"{flag}model-repository,shared-memory,trace,logging:triton-control-key=$(cat /run/secrets/recsys_triton_control_key)" in script


def test_services_require_client_certificates_and_the_gateway_presents_one(model):
    """Mutual TLS: the services accept only connections with a certificate the CA signed (the gateway's
    pair, their own probes); the gateway verifies storefronts that present one."""
    for name in ("feedback", "scoring", "profile"):
        assert model["services"][name]["environment"]["RECSYS_TLS_CLIENT_AUTH"] == "require", name
    conf = (PROJECT_ROOT / "deploy/gateway/nginx.conf").read_text()
    for line in ("grpc_ssl_certificate /run/secrets/gateway_cert;", "grpc_ssl_certificate_key /run/secrets/gateway_key;",
                 "ssl_client_certificate /run/secrets/ca_cert;", "ssl_verify_client optional;"):
        assert line in conf, line


def test_compose_secrets_writes_private_files_and_tls_redis_urls(tmp_path):
    from core.compose_secrets import compose_secrets

    folder = tmp_path / "secrets"
    written = compose_secrets(folder)
    assert {"ca.pem", "ca-key.pem", "gateway-key.pem", "redis_conf", "api_keys.json", "admin.key", "flower_config",
            "storefront-client.pem", "storefront-client-key.pem"} <= set(written)
    for path in folder.iterdir():
        public = path.name == "ca.pem" or (path.suffix == ".pem" and not path.name.endswith("-key.pem"))
        assert (path.stat().st_mode & 0o077 == 0) != public, path.name
    conf = (folder / "redis_conf").read_text()
    assert "port 0" in conf and "tls-port 6380" in conf and "requirepass " in conf
    for name in ("recsys_feast_online_url", "recsys_celery_broker_url", "recsys_celery_result_url"):
        assert (folder / name).read_text().startswith("rediss://:"), name
    assert "ssl_cert_reqs=required" in (folder / "recsys_celery_broker_url").read_text()
    admin_key = (folder / "admin.key").read_text().strip()
    assert admin_key not in (folder / "api_keys.json").read_text()
    assert compose_secrets(folder) == []  # never overwritten


def test_commands_name_real_modules_and_settings(model):
    fields = set(Settings.model_fields)
    for name, service in app_services(model).items():
        cmd = service["command"]
        module = cmd[2] if cmd[:2] == ["python", "-m"] else cmd[2] if cmd[:1] == ["celery"] else None
        assert module and importlib.util.find_spec(module) is not None, f"{name}: {cmd}"
        for key in service["environment"]:
            assert key.startswith("RECSYS_") and key.removeprefix("RECSYS_").lower() in fields, f"{name}: unknown setting {key}"
        assert "RECSYS_CELERY_BROKER_URL" not in service["environment"]  # a secret now: it carries Redis's password
    for secret in model["secrets"]:
        assert not secret.startswith("recsys_") or secret.removeprefix("recsys_") in fields


def test_triton_loads_the_configured_rankers_model(model):
    ranker = model["services"]["feedback"]["environment"]["RECSYS_RANKER"]
    assert f"--load-model={get_ranker(ranker).model_name}" in model["services"]["triton"]["command"]


def test_the_gpu_overlay_reserves_a_gpu_and_configures_gpu_instances():
    merged = load((COMPOSE, GPU), env={})
    triton = merged["services"]["triton"]
    assert triton["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert merged["services"]["bootstrap"]["environment"]["RECSYS_TRITON_INSTANCE_KIND"] == "KIND_GPU"
    assert merged["services"]["worker"]["environment"]["RECSYS_TRITON_INSTANCE_KIND"] == "KIND_GPU"
    assert merged["services"]["feedback"]["environment"]["RECSYS_TRITON_INSTANCE_KIND"] == "KIND_CPU"  # overlays merge, not replace


def stages(dockerfile: Path) -> list[list[str]]:
    """Instructions per build stage (continuation lines joined)."""
    lines = re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines()
    out: list[list[str]] = [[]]
    for line in (x.strip() for x in lines):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM ") and out[-1] and any(i.upper().startswith("FROM ") for i in out[-1]):
            out.append([])
        out[-1].append(line)
    return out


def torch_pin() -> str:
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d.split("==")[1] for d in deps if d.startswith("torch=="))


def test_the_app_image_is_multi_stage_non_root_pinned_and_copies_what_exists():
    dockerfile = PROJECT_ROOT / "Dockerfile"
    build = stages(dockerfile)
    assert len(build) >= 2, "multi-stage"
    args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)", dockerfile.read_text()))
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", args["PYTHON_IMAGE"]), "base image pinned to a patch release"
    final = build[-1]
    user = [i for i in final if i.startswith("USER ")]
    assert user and not user[-1].split()[1].startswith(("root", "0")), "runs as an unprivileged user"
    for instruction in (i for stage in build for i in stage if i.startswith("COPY ") and "--from=" not in i):
        for source in instruction.split()[1:-1]:
            assert (PROJECT_ROOT / source).exists(), instruction
    copied = {i.split()[1].rstrip("/") for i in final if i.startswith("COPY ") and "--from=" not in i}
    for pattern in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.split(".")[0].rstrip("*")
        if top not in ("shoprank", "devtools", "evaluation"):  # shoprank is gen/; dev tooling stays out of the image
            assert top in copied, f"the image lacks {top}/"
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


def test_the_triton_image_has_the_workers_torch():
    dockerfile = (PROJECT_ROOT / "deploy" / "triton" / "Dockerfile").read_text()
    args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)", dockerfile))
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", args["TRITON_IMAGE"])
    assert args["TORCH_VERSION"] == torch_pin(), "TorchScript written by the workers' torch must load in Triton's"
    assert "import torch, numpy" in dockerfile  # the build fails if the models' imports do not
    assert re.search(r"(?m)^USER (?!root)\S+", dockerfile)
    for model_py in (PROJECT_ROOT / "triton_models").glob("*/model.py"):
        imports = set(re.findall(r"(?m)^(?:import|from) (\w+)", model_py.read_text()))
        assert imports <= {"os", "time", "threading", "collections", "numpy", "torch", "triton_python_backend_utils", "json", "math"}, (model_py, imports)


def test_monitoring_config_scrapes_what_the_services_serve(model):
    prometheus = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {(c["names"][0], c["port"]) for job in prometheus["scrape_configs"] for c in job.get("dns_sd_configs", [])}
    for name, port in targets:
        assert f"0.0.0.0:{port}" in model["services"][name]["command"], (name, port)
    assert {n for n, _ in targets} == {"feedback", "scoring", "profile"}
    static = {t for job in prometheus["scrape_configs"] for c in job.get("static_configs", []) for t in c["targets"]}
    assert "triton:8002" in static and "--metrics-port=8002" in model["services"]["triton"]["command"]
    grafana = model["services"]["grafana"]["volumes"]
    assert any("shoprank-dashboard.json" in v for v in grafana)
    for volume in grafana:
        assert (PROJECT_ROOT / volume.split(":")[0]).exists(), volume
