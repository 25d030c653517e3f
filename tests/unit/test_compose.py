"""compose.yaml cannot run here (no Docker): parse it and check it runs what exists."""
import importlib.util

import yaml

from core.settings import PROJECT_ROOT


def load():
    return yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())


def test_compose_has_every_part():
    services = load()["services"]
    assert {"redis", "postgres", "triton", "feedback", "scoring", "profile", "worker", "beat", "feast-apply"} <= set(services)


def test_python_commands_name_real_modules_and_scale_out_env():
    for name, svc in load()["services"].items():
        cmd = svc.get("command") or []
        if cmd[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(cmd[2]) is not None, f"{name}: no module {cmd[2]}"
        if cmd[:1] == ["celery"]:
            assert importlib.util.find_spec(cmd[2]) is not None
        if name in ("feedback", "scoring", "profile", "worker"):
            env = svc["environment"]
            assert env["RECSYS_CELERY_BROKER_URL"].startswith("redis://")
            assert env["RECSYS_FEAST_ONLINE_URL"].startswith("redis://")
