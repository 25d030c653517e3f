"""`feast apply` (the real CLI) works in feature_repo/, and the services' store config matches it."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from core.features import online_store_config, repo_config
from core.settings import PROJECT_ROOT, Settings


def test_feast_cli_applies_and_materialises_the_definitions(tmp_path):
    feast = Path(sys.executable).parent / "feast"
    env = dict(os.environ, RECSYS_DATA_DIR=str(tmp_path))
    (tmp_path / "feast").mkdir()
    subprocess.run([str(feast), "apply"], cwd=PROJECT_ROOT / "feature_repo", env=env, check=True, capture_output=True, timeout=300)
    listed = subprocess.run([str(feast), "feature-views", "list"], cwd=PROJECT_ROOT / "feature_repo", env=env,
                            check=True, capture_output=True, text=True, timeout=300).stdout
    for view in ("item_text", "item_popularity", "user_history", "shop_activity", "co_purchase"):
        assert view in listed
    assert (tmp_path / "feast" / "registry.db").exists()
    done = subprocess.run([str(feast), "materialize-incremental", "2026-01-01T00:00:00"], cwd=PROJECT_ROOT / "feature_repo", env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "co_purchase" in done.stdout


def test_yaml_and_code_agree_on_the_default_online_store(tmp_path):
    raw = yaml.safe_load((PROJECT_ROOT / "feature_repo" / "feature_store.yaml").read_text())
    settings = Settings(data_dir=tmp_path, feast_online_url="")
    assert raw["online_store"]["type"] == online_store_config(settings)["type"] == "core.feast_sqlite.ThreadSafeSqliteOnlineStore"
    assert raw["project"] == "shoprank"


def test_redis_online_store_is_selected_by_url(tmp_path):
    config = online_store_config(Settings(data_dir=tmp_path, feast_online_url="redis://10.0.0.5:6380/3"))
    assert config == {"type": "core.feast_redis.ErasableRedisOnlineStore", "connection_string": "10.0.0.5:6380,db=3"}


def test_the_cli_reads_the_config_the_services_build(tmp_path, monkeypatch):
    """`python -m core.features yaml` (what `make feast-apply` hands the feast CLI) is the services' own
    store config, through Feast's own loader, for the embedded default and for PostgreSQL + Redis; the
    committed feature_store.yaml is the embedded default's."""
    from feast.repo_config import load_repo_config

    for env in ({}, {"RECSYS_FEAST_ONLINE_URL": "redis://redis:6379/1", "RECSYS_FEAST_REGISTRY_URL": "postgresql+psycopg://u:p@postgres:5432/shoprank"}):
        out = subprocess.run([sys.executable, "-m", "core.features", "yaml"], env={**os.environ, "RECSYS_DATA_DIR": str(tmp_path), **env},
                             check=True, capture_output=True, text=True, timeout=120).stdout
        path = tmp_path / "feature_store.yaml"
        path.write_text(out)
        loaded = load_repo_config(PROJECT_ROOT / "feature_repo", path)
        expected = repo_config(Settings(data_dir=tmp_path, feast_online_url=env.get("RECSYS_FEAST_ONLINE_URL", ""),
                                        feast_registry_url=env.get("RECSYS_FEAST_REGISTRY_URL", "")))
        assert loaded.online_config == expected["online_store"]
        registry = expected["registry"]
        assert loaded.registry.path == (registry if isinstance(registry, str) else registry["path"])
        assert loaded.registry.registry_type == ("file" if isinstance(registry, str) else "sql")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    committed = load_repo_config(PROJECT_ROOT / "feature_repo", PROJECT_ROOT / "feature_repo" / "feature_store.yaml")
    default = repo_config(Settings(data_dir=tmp_path))
    assert committed.registry.path == default["registry"] and committed.online_config == default["online_store"]
