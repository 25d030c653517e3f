"""Triton python-backend model: runs the version's TorchScript click model (`model.pt`).

Workers copy this file into every version folder they publish; Triton loads it per version.
Tensors cross the stub boundary through DLPack, which works with numpy 2 as well as 1.
"""
import os

import torch
import triton_python_backend_utils as pb_utils

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TritonPythonModel:
    def initialize(self, args):
        kind = args.get("model_instance_kind", "CPU")
        self.device = f"cuda:{args.get('model_instance_device_id', '0')}" if kind == "GPU" else "cpu"
        torch.set_num_threads(int(os.environ.get("RECSYS_TORCH_THREADS", "0")) or torch.get_num_threads())
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        self.model = torch.jit.load(path, map_location=self.device).eval()

    def execute(self, requests):
        # Dynamic batching hands several requests at once; pad them to one length and run one forward.
        per_request = []
        for request in requests:
            per_request.append(
                [torch.from_dlpack(pb_utils.get_input_tensor_by_name(request, n).to_dlpack()) for n in INPUTS]
            )
        length = max(t[0].shape[1] for t in per_request)
        sizes = [t[0].shape[0] for t in per_request]
        stacked = []
        for i in range(len(INPUTS)):
            parts = [torch.nn.functional.pad(t[i], (0, length - t[i].shape[1])) for t in per_request]
            stacked.append(torch.cat(parts).to(self.device, torch.long))
        with torch.inference_mode():
            probs = self.model(*stacked).float().cpu().contiguous()
        responses = []
        for chunk in torch.split(probs, sizes):
            out = pb_utils.Tensor.from_dlpack("probability", torch.utils.dlpack.to_dlpack(chunk.contiguous()))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
