"""The wheel holds every module of the project (packages are discovered, not listed by hand) and each
imports from the wheel alone: built here, unpacked, and imported with the unpacked folder first on the
path, every module's file must come from it (the project's own checkout is never what answers)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from core.settings import PROJECT_ROOT

PACKAGES = ("core", "ranking", "rankers", "shoptext", "shopdata", "services", "workers", "devtools", "feature_repo", "evaluation",
            "shoprank_client")


def modules_in_checkout() -> set[str]:
    out = set()
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            out.add(".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__"))
    for path in (PROJECT_ROOT / "gen" / "shoprank").rglob("*.py"):
        out.add(".".join(path.relative_to(PROJECT_ROOT / "gen").with_suffix("").parts).removesuffix(".__init__"))
    return out


def test_the_wheel_holds_and_imports_every_module(tmp_path):
    # built from a copy of the tracked files: setuptools writes build/ beside the sources it builds
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (PROJECT_ROOT / name).is_file() and not name.startswith(("bench/results/", "tests/")):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("shoprank-*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if n.endswith(".py")}
        archive.extractall(unpacked)
    in_wheel = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in names}
    missing = modules_in_checkout() - in_wheel
    assert not missing, f"the wheel lacks {sorted(missing)}"
    code = ("import importlib, sys, pathlib; root = pathlib.Path(sys.argv[1]).resolve(); bad = []\n"
            "for name in sys.argv[2:]:\n"
            "    module = importlib.import_module(name)\n"
            "    if root not in pathlib.Path(module.__file__).resolve().parents: bad.append((name, module.__file__))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    modules = sorted(m for m in in_wheel if not m.endswith("__main__"))
    done = subprocess.run([sys.executable, "-c", code, str(unpacked), *modules], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(unpacked), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
