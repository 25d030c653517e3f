"""The wheel holds every module of the project (packages are discovered, not listed by hand) and each
imports once the wheel is installed into a clean virtualenv: every module's file must come from that
virtualenv (the project's own checkout is never what answers)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in archive.namelist() if n.endswith(".py")}
    missing = modules_in_checkout() - in_wheel
    assert not missing, f"the wheel lacks {sorted(missing)}"
    # A clean virtualenv: nothing of the checkout. Its dependencies (torch, Feast, ...) are the project
    # venv's, reached through a .pth line; a folder added that way has its own .pth files ignored, so the
    # project's editable install does not come along.
    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()
    deps = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()
    Path(site, "project-deps.pth").write_text(deps + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    code = ("import importlib, sys, pathlib; root = pathlib.Path(sys.argv[1]).resolve(); bad = []\n"
            "for name in sys.argv[2:]:\n"
            "    module = importlib.import_module(name)\n"
            "    if root not in pathlib.Path(module.__file__).resolve().parents: bad.append((name, module.__file__))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    modules = sorted(m for m in in_wheel if not m.endswith("__main__"))
    done = subprocess.run([str(python), "-c", code, site, *modules], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
