"""The secret files compose.yaml reads (`python -m core.security compose-secrets`, into deploy/secrets),
generated on the operator's machine where missing, never overwritten.

Each container gets only what it needs (compose.yaml's `secrets:` per service): the CA's private key and
the plaintext API keys stay in deploy/secrets and are mounted nowhere; every gRPC service and the gateway
have a key pair of their own; Redis gets its certificate and a config with its password; Flower and
Grafana get their operator credentials. Private files are mode 0600; run as root, each is handed to the
user id of the image that reads it (compose bind-mounts them with the host's owner and mode).
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from core.security import DEFAULT_CLIENTS, key_digest, make_pki, write_private

COMPOSE_DATABASE = "shoprank"  # PostgreSQL user and database of compose.yaml's event log
SERVICES = ("feedback", "scoring", "profile", "gateway", "redis", "postgres")  # each has a certificate of its own
# The services require a client certificate (mutual TLS): the gateway presents its own pair; a storefront
# that wants mutual TLS with the gateway presents this one (the operator hands it out with its API key).
STOREFRONT_CLIENT = "storefront-client"
REDIS_TLS_PORT = 6380
# The user ids the images run as (Dockerfile: 10001; the official postgres and redis images: 999; grafana: 472).
OWNERS = {"app": 10001, "postgres": 999, "redis": 999, "grafana": 472, "root": 0}


def compose_secrets(folder: Path, host: str = "postgres", public_hostname: str = "") -> list[str]:
    """Every secret compose.yaml declares, plus the operator's own copies (ca-key.pem, <client>.key,
    flower_password); returns the names written this time. The gateway's certificate also names
    `public_hostname` (default $SHOPRANK_PUBLIC_HOSTNAME, else shoprank.local)."""
    public_hostname = public_hostname or os.environ.get("SHOPRANK_PUBLIC_HOSTNAME", "shoprank.local")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    written: list[str] = []

    def put(name: str, value: str | bytes, owner: str = "app", mode: int = 0o600) -> None:
        path = folder / name
        if path.exists():
            return
        write_private(path, value.encode() if isinstance(value, str) else value, mode)
        if os.geteuid() == 0:
            os.chown(path, OWNERS[owner], OWNERS[owner])
        written.append(name)

    if not (folder / "ca.pem").exists():
        make_pki(folder, {s: [s, public_hostname] if s == "gateway" else [s] for s in SERVICES}, [STOREFRONT_CLIENT])
        written += ["ca.pem", "ca-key.pem"] + [f"{s}{suffix}" for s in (*SERVICES, STOREFRONT_CLIENT) for suffix in (".pem", "-key.pem")]
        for service in SERVICES:
            owner = {"redis": "redis", "postgres": "postgres", "gateway": "root"}.get(service, "app")
            if os.geteuid() == 0:
                os.chown(folder / f"{service}-key.pem", OWNERS[owner], OWNERS[owner])
        (folder / "ca.pem").chmod(0o644)
        for service in (*SERVICES, STOREFRONT_CLIENT):
            (folder / f"{service}.pem").chmod(0o644)

    put("postgres_password", secrets.token_urlsafe(24), owner="postgres")
    password = (folder / "postgres_password").read_text().strip()
    # TLS, and the server's certificate checked against the deployment's CA and the host name
    database_url = (f"postgresql+psycopg://{COMPOSE_DATABASE}:{password}@{host}:5432/{COMPOSE_DATABASE}"
                    "?sslmode=verify-full&sslrootcert=/run/secrets/ca_cert")
    put("postgres_hba", "\n".join([  # the server refuses connections without TLS, whatever the client asks
        "local all all trust", "hostssl all all all scram-sha-256", "hostnossl all all all reject", ""]), owner="postgres")
    put("recsys_eventlog_url", database_url)
    put("recsys_feast_registry_url", database_url)  # Feast's SQL registry, in its own tables
    put("recsys_pseudonym_key", secrets.token_hex(32))
    put("recsys_triton_control_key", secrets.token_urlsafe(24))  # Triton's model-control header (core.security)

    put("redis_password", secrets.token_urlsafe(24), owner="redis")
    redis_password = (folder / "redis_password").read_text().strip()
    put("redis_conf", "\n".join([
        "port 0", f"tls-port {REDIS_TLS_PORT}", "tls-cert-file /run/secrets/redis_cert", "tls-key-file /run/secrets/redis_key",
        "tls-ca-cert-file /run/secrets/ca_cert", "tls-auth-clients no", f"requirepass {redis_password}",
        "appendonly yes", "save 60 1", "dir /data", ""]), owner="redis")
    redis = f"rediss://:{redis_password}@redis:{REDIS_TLS_PORT}"
    tls_query = "ssl_cert_reqs=required&ssl_ca_certs=/run/secrets/ca_cert"
    put("recsys_feast_online_url", f"{redis}/1")  # Feast verifies with RECSYS_TLS_CA_FILE
    put("recsys_celery_broker_url", f"{redis}/0?{tls_query}")
    put("recsys_celery_result_url", f"{redis}/0?{tls_query}")

    if not (folder / "api_keys.json").exists():
        entries = []
        for name, role in DEFAULT_CLIENTS:
            key = f"sr_{role}_{secrets.token_urlsafe(24)}"
            put(f"{name}.key", key + "\n", owner="root")  # the operator's, to hand out; mounted nowhere
            entries.append({"name": name, "role": role, "sha256": key_digest(key)})
        put("api_keys.json", json.dumps({"clients": entries}, indent=1))

    put("flower_password", secrets.token_urlsafe(18), owner="root")
    flower = f"operator:{(folder / 'flower_password').read_text().strip()}"
    put("flower_auth", flower)  # the healthcheck's credentials
    put("flower_config", f"basic_auth = [{flower!r}]\n")  # Flower's --conf file
    put("grafana_admin_password", secrets.token_urlsafe(18), owner="grafana")
    return written
