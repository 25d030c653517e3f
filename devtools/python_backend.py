"""Run a Triton python-backend `model.py` in this process, without Triton: what it uses of the
`triton_python_backend_utils` module (tensors by name through DLPack, responses), and nothing more.

Two users: the unit tests of triton_models/*/model.py, and the GPU benchmark's "bare" arm, which times
the model's own code on the same requests Triton would hand it, so Triton's share of the cost is
the difference.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


class Tensor:
    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value

    @classmethod
    def from_dlpack(cls, name: str, capsule: Any) -> "Tensor":
        import torch

        return cls(name, torch.from_dlpack(capsule))

    def to_dlpack(self) -> Any:
        import torch

        return torch.utils.dlpack.to_dlpack(self.value)


def utils_module() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = Tensor  # type: ignore[attr-defined]
    # as Triton's: None for an optional input the request left out
    module.get_input_tensor_by_name = lambda request, name: Tensor(name, request[name]) if name in request else None  # type: ignore[attr-defined]
    module.InferenceResponse = lambda output_tensors: output_tensors  # type: ignore[attr-defined]
    return module


def load_model_module(model_py: Path, name: str = "python_backend_model") -> types.ModuleType:
    """Import `model_py` with the stand-in utils module installed (left installed for its execute)."""
    sys.modules.setdefault("triton_python_backend_utils", utils_module())
    spec = importlib.util.spec_from_file_location(name, model_py)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_model(model_py: Path, version_dir: Path, kind: str = "CPU", device_id: int = 0) -> Any:
    """The model's TritonPythonModel, initialised on `version_dir` as Triton would."""
    model = load_model_module(model_py).TritonPythonModel()
    model.initialize({"model_repository": str(version_dir.parent), "model_version": version_dir.name,
                      "model_instance_kind": kind, "model_instance_device_id": str(device_id)})
    return model
