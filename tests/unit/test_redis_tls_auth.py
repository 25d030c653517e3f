"""Issue 25, finding 4: the settings take Redis with a password and TLS (rediss://), for Feast's online
store and Celery's broker alike, against a real redis-server started here with TLS only (the
deployment's certificate) and requirepass; a wrong password or no TLS is refused by the server."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from core.domain import ItemText
from core.features import FeatureClient, apply, redis_connection_string
from core.security import ensure_secrets
from core.settings import Settings
from devtools.ports import free_port, wait_until

PASSWORD = "s3cret-Pw_1"
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def tls_redis(tmp_path):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    ensure_secrets(settings)
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(settings.server_cert),
                             "--tls-key-file", str(settings.server_key), "--tls-ca-cert-file", str(settings.ca_cert),
                             "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=port, password=PASSWORD, ssl=True, ssl_ca_certs=str(settings.ca_cert)).ping())
            except redis.exceptions.ConnectionError:
                return False

        wait_until(up, proc, 20, "redis-server (TLS)")
        yield settings, port
    finally:
        proc.terminate()
        proc.wait(10)


def test_feast_online_store_over_tls_with_a_password(tls_redis, tmp_path):
    base, port = tls_redis
    settings = base.model_copy(update={"feast_online_url": f"rediss://:{PASSWORD}@127.0.0.1:{port}/0"})
    apply(settings)
    features = FeatureClient(settings)
    assert features.reachable()
    features.push_items({"a": ItemText("item a")})
    assert features.get_items(["a"])["a"].text.title == "item a"
    import redis

    wrong = base.model_copy(update={"feast_online_url": f"rediss://:wrong@127.0.0.1:{port}/0"})
    with pytest.raises(redis.exceptions.AuthenticationError):
        FeatureClient(wrong).reachable()
    plain = base.model_copy(update={"feast_online_url": f"redis://:{PASSWORD}@127.0.0.1:{port}/0"})
    with pytest.raises(redis.exceptions.ConnectionError):  # the server speaks TLS only
        FeatureClient(plain).reachable()


def test_celery_broker_over_tls_with_a_password(tls_redis):
    from core.tasks import celery_client, queue_depths

    base, port = tls_redis
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/1?ssl_cert_reqs=required&ssl_ca_certs={base.ca_cert}"
    settings = base.model_copy(update={"celery_broker_url": url, "celery_result_url": url})
    app = celery_client(settings)
    app.send_task("shoprank.never_consumed", queue="training")
    assert queue_depths(app, ("training",))["training"] == 1


def test_redis_urls_become_feast_connection_strings(tmp_path):
    ca = tmp_path / "ca.pem"
    assert redis_connection_string("redis://redis:6379/1", ca) == "redis:6379,db=1"
    assert redis_connection_string("rediss://app:p%40ss@redis:6380/2?ssl_cert_reqs=required", ca) == \
        f"redis:6380,db=2,username=app,password=p@ss,ssl=true,ssl_ca_certs={ca},ssl_cert_reqs=required"
    with pytest.raises(ValueError):
        redis_connection_string("redis://:a,b@redis:6379/0", ca)
