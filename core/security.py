"""Secrets of a deployment: the TLS certificates of every gRPC port, the API keys of its clients (each
with a role), and the key that pseudonymises shopper ids. The embedded default generates all of them
under `<data dir>/secrets` at first start (`python -m core.security init` does it by hand and prints
how to call the suite with grpcurl); a multi-machine deployment mounts its own files instead.

Files (mode 0600 for private parts):
  ca.pem / ca-key.pem              a local certificate authority (clients trust ca.pem)
  server.pem / server-key.pem      the services' certificate (localhost, 127.0.0.1 and RECSYS_TLS_HOSTNAMES)
  client.pem / client-key.pem      a client certificate, for RECSYS_TLS_CLIENT_AUTH=require
  api_keys.json                    {"clients": [{"name", "role", "sha256"}]}: only hashes of the keys
  <name>.key                       each generated client's key, for the operator to hand out
  pseudonym.key                    the HMAC key shopper ids are hashed with before any store
  triton_control.key               the header value Triton's model-control API requires
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from core.settings import Settings, load

logger = logging.getLogger(__name__)

ROLES = ("storefront", "admin")
DEFAULT_CLIENTS = (("storefront", "storefront"), ("admin", "admin"))  # (client name, role) made at first start
CERT_DAYS = 825


@dataclass(frozen=True)
class Client:
    """An authenticated caller: its name (audited) and role."""

    name: str
    role: str


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The clients a deployment knows, by the SHA-256 of their key (the keys themselves are not kept)."""

    def __init__(self, clients: dict[str, Client]) -> None:
        self._by_digest = clients

    @classmethod
    def load(cls, path: Path) -> "ApiKeys":
        data = json.loads(path.read_text())
        clients = {}
        for entry in data.get("clients", []):
            if entry.get("role") not in ROLES:
                raise ValueError(f"{path}: client {entry.get('name')!r} has role {entry.get('role')!r}; roles are {', '.join(ROLES)}")
            clients[str(entry["sha256"])] = Client(str(entry["name"]), str(entry["role"]))
        return cls(clients)

    def client(self, key: str) -> Client | None:
        digest = key_digest(key)
        for known, client in self._by_digest.items():  # compare every digest in constant time
            if hmac.compare_digest(known, digest):
                return client
        return None


def pseudonym_key(settings: Settings) -> bytes:
    """The HMAC key for shopper ids: RECSYS_PSEUDONYM_KEY, else the deployment's generated key file."""
    if settings.pseudonym_key:
        return settings.pseudonym_key.get_secret_value().encode()
    return (settings.secrets_path / "pseudonym.key").read_bytes().strip()


# Triton's APIs that change what it runs or reveal its repository: only callers with the control key.
# Inference, health, metadata and model config stay open to the services on Triton's network.
TRITON_CONTROL_HEADER = "triton-control-key"
TRITON_GRPC_CONTROL_HEADER = "triton-grpc-protocol-" + TRITON_CONTROL_HEADER  # the metadata key Triton's gRPC checks
TRITON_RESTRICTED = "model-repository,shared-memory,trace,logging"


def triton_control_key(settings: Settings) -> str:
    """The key Triton's control API requires: RECSYS_TRITON_CONTROL_KEY, else the deployment's generated
    file, else "" (a Triton started without restriction, as some tests and the GPU bench do)."""
    if settings.triton_control_key:
        return settings.triton_control_key.get_secret_value()
    path = settings.secrets_path / "triton_control.key"
    return path.read_text().strip() if path.exists() else ""


def triton_restriction_flags(key: str) -> list[str]:
    """tritonserver's flags that require `key` in the control header for the restricted APIs."""
    if not key:
        return []
    rule = f"{TRITON_RESTRICTED}:{TRITON_CONTROL_HEADER}={key}"
    return [f"--grpc-restricted-protocol={rule}", f"--http-restricted-api={rule}"]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Processes starting together generate the secrets once."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def ensure_secrets(settings: Settings) -> Path:
    """Generate whatever of the deployment's secrets is missing (idempotent; safe from several processes)."""
    folder = settings.secrets_path
    with _locked(folder):
        if settings.tls and not (folder / "server.pem").exists() and settings.tls_cert_file is None:
            _make_pki(folder, [h.strip() for h in settings.tls_hostnames.split(",") if h.strip()])
        if settings.auth and settings.api_keys_file is None and not (folder / "api_keys.json").exists():
            entries = []
            for name, role in DEFAULT_CLIENTS:
                key = f"sr_{role}_{secrets.token_urlsafe(24)}"
                write_private(folder / f"{name}.key", key.encode() + b"\n")
                entries.append({"name": name, "role": role, "sha256": key_digest(key)})
            write_private(folder / "api_keys.json", json.dumps({"clients": entries}, indent=1).encode())
        if not settings.pseudonym_key and not (folder / "pseudonym.key").exists():
            write_private(folder / "pseudonym.key", secrets.token_hex(32).encode() + b"\n")
        if not settings.triton_control_key and not (folder / "triton_control.key").exists():
            write_private(folder / "triton_control.key", secrets.token_urlsafe(24).encode() + b"\n")
    return folder


def _make_pki(folder: Path, hostnames: list[str]) -> None:
    """The embedded default's PKI: a CA, one certificate for every service, a client certificate."""
    make_pki(folder, {"server": hostnames}, ["client"])
    logger.info("generated a local CA and certificates under %s", folder)


def make_pki(folder: Path, servers: dict[str, list[str]], clients: list[str]) -> None:
    """A CA (ca.pem, ca-key.pem) that signs, for each of `servers`, `<name>.pem` / `<name>-key.pem` valid
    for localhost, 127.0.0.1, ::1 and its hostnames, and for each of `clients` a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shoprank"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("shoprank local CA")).issuer_name(name("shoprank local CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, usage: list[x509.ObjectIdentifier], sans: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)

    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_private(folder / "ca-key.pem", pem_key(ca_key))
    for server, hostnames in servers.items():
        sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                        x509.IPAddress(ipaddress.ip_address("::1"))]
        sans += [x509.DNSName(h) for h in hostnames if h and h != "localhost"]
        # client auth too: a service's own health probe and the gateway present their pair to services
        # that require client certificates (mutual TLS)
        cert, key = leaf(f"shoprank {server}", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], sans)
        (folder / f"{server}.pem").write_bytes(cert)
        write_private(folder / f"{server}-key.pem", key)
    for client in clients:
        cert, key = leaf(f"shoprank {client}", [ExtendedKeyUsageOID.CLIENT_AUTH], [])
        (folder / f"{client}.pem").write_bytes(cert)
        write_private(folder / f"{client}-key.pem", key)


def usage(settings: Settings, feedback: str = "127.0.0.1:50051", scoring: str = "127.0.0.1:50052") -> str:
    """How to call the suite with grpcurl, with this deployment's files."""
    folder = settings.secrets_path
    tls = f"-cacert {folder / 'ca.pem'}" if settings.tls else "-plaintext"
    return (f"TLS: clients trust {folder / 'ca.pem'}; keys: {folder / 'storefront.key'} (storefront), {folder / 'admin.key'} (admin)\n"
            f"  .venv/bin/grpcurl {tls} -H \"authorization: Bearer $(cat {folder / 'storefront.key'})\" {scoring} list\n"
            f"  .venv/bin/grpcurl {tls} -H \"authorization: Bearer $(cat {folder / 'storefront.key'})\" "
            f"-d '{{\"user_id\": \"U0001\", \"k\": 5}}' {scoring} shoprank.v1.ScoringService/Recommend\n"
            f"  .venv/bin/grpcurl {tls} -H \"authorization: Bearer $(cat {folder / 'admin.key'})\" "
            f"{feedback} shoprank.v1.ModelAdminService/ListVersions")


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the deployment's certificates and keys (if missing) and print how to use them; "
                                                 "or, with compose-secrets, the secret files compose.yaml reads (deploy/secrets).")
    parser.add_argument("command", choices=["init", "compose-secrets"])
    parser.add_argument("--dir", type=Path, default=Path("deploy/secrets"), help="compose-secrets: where to write them")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.command == "compose-secrets":
        from core.compose_secrets import compose_secrets

        written = compose_secrets(args.dir)
        print(f"{args.dir}: {', '.join(written) if written else 'every secret already there'}")
        return
    settings = load()
    ensure_secrets(settings)
    print(usage(settings))


if __name__ == "__main__":
    main()
