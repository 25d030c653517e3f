"""`make gpu-wheels`: the wheels a bare GPU machine (Python 3.12, torch and transformers present) lacks
for bench/gpu_run.sh, into .whl/: nvidia-pytriton (tritonserver and its python backend), python-rapidjson,
and tritonclient without its 12 MB of perf-analyzer binaries (only its Python is used), so the three
fit the device tool's 64 MiB carry limit."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

WHEELS = ["tritonclient==2.41.0", "python-rapidjson==1.25", "nvidia-pytriton==0.7.0"]
PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_35_x86_64"]


def slim(wheel: Path) -> None:
    """Keep the package's Python (moved to the archive's root) and drop its data files."""
    out = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            name = info.filename
            if ".data/data/" in name:
                continue
            if ".data/purelib/" in name:
                name = name.split(".data/purelib/", 1)[1]
            dst.writestr(name, src.read(info))
    out.replace(wheel)


def main() -> None:
    target = Path(".whl")
    target.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "-d", str(target)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run(cmd + WHEELS, check=True)
    for wheel in target.glob("tritonclient-*.whl"):
        slim(wheel)
    total = sum(w.stat().st_size for w in target.glob("*.whl"))
    for w in sorted(target.glob("*.whl")):
        print(f"{w.stat().st_size / 2**20:6.1f} MiB  {w.name}")
    print(f"{total / 2**20:6.1f} MiB in .whl/ (carry limit 64 MiB)")


if __name__ == "__main__":
    main()
