"""The structure DESIGN.md asks for, checked: gRPC service modules import no torch, services and
workers never import each other, production never imports evaluation/ or tests/, no ranker-name
branch outside the registry, and settings errors name the variable."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from core.settings import PROJECT_ROOT, SettingsError, load

PRODUCTION = ("core", "ranking", "rankers", "services", "workers", "shoptext", "shopdata", "feature_repo", "devtools", "shoprank_client")


def imports_of(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of `package` imports (module-level and inside functions)."""
    out = {}
    for path in (PROJECT_ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        out[str(path.relative_to(PROJECT_ROOT))] = found
    return out


@pytest.mark.parametrize("module", ["services.scoring_service", "services.feedback_service", "services.profile_service"])
def test_importing_a_grpc_service_does_not_import_torch(module):
    code = (f"import sys, {module} as m; from core.settings import Settings; from rankers import get_ranker; "
            "get_ranker(Settings().ranker); "
            "bad = [x for x in ('torch', 'transformers', 'workers', 'evaluation') if x in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_storefront_client_needs_only_grpc_and_the_generated_code():
    """shoprank_client ships to storefronts: gRPC, protobuf and the stubs, nothing of the suite."""
    allowed = {"__future__", "argparse", "dataclasses", "datetime", "json", "pathlib", "time", "typing", "uuid",
               "grpc", "google", "shoprank", "shoprank_client"}
    for path, found in imports_of("shoprank_client").items():
        assert found <= allowed, (path, found - allowed)
    code = "import sys, shoprank_client; bad = [m for m in ('torch', 'numpy', 'core', 'feast') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_and_workers_do_not_import_each_other():
    for path, found in imports_of("services").items():
        assert "workers" not in found, path
    for path, found in imports_of("workers").items():
        assert "services" not in found, path
    for path, found in imports_of("core").items():
        # the core knows no model: settings validate RECSYS_RANKER against core.ranker_names
        assert not found & {"services", "workers", "devtools", "torch", "shoptext", "rankers", "ranking"}, path
    for path, found in imports_of("ranking").items():
        # plain domain code: no protobuf or gRPC, no torch, no service or worker
        assert not found & {"services", "workers", "devtools", "torch", "shoprank", "grpc"}, path


def test_the_import_graph_has_no_cycle_between_top_level_packages():
    """core ← ranking/rankers ← services/workers ← devtools: an edge back would be a cycle."""
    graph = {package: set().union(*imports_of(package).values()) & set(PRODUCTION) - {package} for package in PRODUCTION}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(package: str, path: list[str]) -> None:
        seen[package] = 1
        for nxt in sorted(graph[package]):
            assert seen.get(nxt) != 1, "import cycle: " + " -> ".join(path + [package, nxt])
            if nxt not in seen:
                visit(nxt, path + [package])
        seen[package] = 2

    for package in PRODUCTION:
        if package not in seen:
            visit(package, [])


def test_production_never_imports_evaluation_or_tests():
    for package in PRODUCTION:
        for path, found in imports_of(package).items():
            assert not found & {"evaluation", "tests"}, path


def test_no_ranker_name_branch_outside_the_registry():
    names = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](fusion|cross-encoder)["']|["'](fusion|cross-encoder)["']\s*(==|!=)""")
    for package in PRODUCTION + ("evaluation",):
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                assert not names.search(line), f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}"


def test_a_wrong_setting_names_the_variable_and_what_is_allowed(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_RANKER", "fusoin")
    monkeypatch.setenv("RECSYS_MAX_CANDIDATES", "many")
    with pytest.raises(SettingsError) as info:
        load()
    message = str(info.value)
    assert "RECSYS_RANKER='fusoin'" in message and "fusion" in message and "cross-encoder" in message
    assert "RECSYS_MAX_CANDIDATES='many'" in message


def test_a_service_refuses_to_start_on_a_bad_setting(tmp_path):
    env = dict(os.environ, RECSYS_DATA_DIR=str(tmp_path), RECSYS_FINE_TUNE_STRATEGY="half")
    result = subprocess.run([sys.executable, "-m", "services.scoring_service", "--address", "127.0.0.1:0"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "RECSYS_FINE_TUNE_STRATEGY='half'" in result.stderr and "top-layers" in result.stderr
