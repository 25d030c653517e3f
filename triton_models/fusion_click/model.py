"""Triton python-backend model: the two-tower + fusion click model (`model.pt`, clickmodel.fusion).

One request = one shopper and their candidates: the shopper's text tokens (encoded once), the
candidates' text tokens and their numeric signals. Item embeddings are cached per loaded version,
keyed by the item's token ids, so after the first request an item costs a dictionary lookup plus the
fusion MLP, not a transformer pass. Workers copy this file into every version folder they publish.
"""
import os
from collections import OrderedDict

import torch
import triton_python_backend_utils as pb_utils

CACHE_ITEMS = int(os.environ.get("RECSYS_ITEM_EMBEDDING_CACHE", "200000"))


class TritonPythonModel:
    def initialize(self, args):
        kind = args.get("model_instance_kind", "CPU")
        self.device = f"cuda:{args.get('model_instance_device_id', '0')}" if kind == "GPU" else "cpu"
        torch.set_num_threads(int(os.environ.get("RECSYS_TORCH_THREADS", "0")) or torch.get_num_threads())
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        self.model = torch.jit.load(path, map_location=self.device).eval()
        self.cache = OrderedDict()  # token ids bytes -> embedding (this version's encoder)
        table = os.path.join(args["model_repository"], args["model_version"], "item_embeddings.pt")
        if os.path.exists(table):  # the catalogue, embedded by the worker that published this version
            data = torch.load(table)
            self.cache.update(zip(data["keys"], data["vectors"]))

    def _input(self, request, name):
        return torch.from_dlpack(pb_utils.get_input_tensor_by_name(request, name).to_dlpack())

    def _item_embeddings(self, ids, mask):
        keys = [bytes(row[m.bool()].numpy().tobytes()) for row, m in zip(ids, mask)]
        missing = [k for k, key in enumerate(keys) if key not in self.cache]
        if missing:
            rows = torch.tensor(missing)
            width = int(mask[rows].sum(1).max())
            fresh = self.model.encode(ids[rows, :width].to(self.device), mask[rows, :width].to(self.device)).cpu()
            for k, vector in zip(missing, fresh):
                self.cache[keys[k]] = vector
            while len(self.cache) > CACHE_ITEMS:
                self.cache.popitem(last=False)
        return torch.stack([self.cache[key] for key in keys])

    def execute(self, requests):
        responses = []
        for request in requests:
            with torch.inference_mode():
                user = self.model.encode(self._input(request, "user_input_ids").to(self.device, torch.long),
                                         self._input(request, "user_attention_mask").to(self.device, torch.long))
                items = self._item_embeddings(self._input(request, "item_input_ids").long(), self._input(request, "item_attention_mask").long())
                signals = self._input(request, "signals").float()
                n = signals.shape[0]
                probs = self.model(user[:1].expand(n, -1).to(self.device), items.to(self.device), signals.to(self.device)).float().cpu()
            out = pb_utils.Tensor.from_dlpack("probability", torch.utils.dlpack.to_dlpack(probs.contiguous()))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
