"""bench/gpu_wheels.py downloads from PyPI (not run in `make test`); its own logic, slimming a wheel to
its Python so three wheels fit the device tool's 64 MiB carry, is checked here on a wheel built on the spot."""
from __future__ import annotations

import importlib.util
import zipfile

from core.settings import PROJECT_ROOT


def test_slim_keeps_the_python_at_the_root_and_drops_data_files(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_wheels", PROJECT_ROOT / "bench" / "gpu_wheels.py")
    assert spec and spec.loader
    gpu_wheels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_wheels)
    wheel = tmp_path / "tritonclient-2.41.0-py3-none-manylinux1_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tritonclient-2.41.0.data/purelib/tritonclient/grpc/__init__.py", "X = 1\n")
        z.writestr("tritonclient-2.41.0.data/data/bin/perf_analyzer", b"\0" * 100_000)
        z.writestr("tritonclient-2.41.0.dist-info/METADATA", "Name: tritonclient\n")
    gpu_wheels.slim(wheel)
    with zipfile.ZipFile(wheel) as z:
        assert sorted(z.namelist()) == ["tritonclient-2.41.0.dist-info/METADATA", "tritonclient/grpc/__init__.py"]
