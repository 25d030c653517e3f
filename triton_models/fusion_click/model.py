"""Triton python-backend model: the two-tower + fusion click model (`model.pt`, rankers.fusion.network).

Two kinds of request, told apart by which (optional) inputs they carry:
- ranking: one shopper and their candidates. The shopper comes as `user_vector` (their stored state:
  no shopper-side computation at all) or as their history (`history_*`: computed in this request, the
  fallback for a shopper whose state is not stored yet); the candidates as their text tokens and
  numeric `signals`. Answers `probability`.
- shopper states (no `signals`): many shoppers' histories in one request, from the shopper-state
  writer (ranking.shopper_states). Answers `shopper_vector`, one row per shopper.
A history is its distinct items' text tokens (`history_input_ids`, `history_attention_mask`), and per
shopper the rows of their items (`history_index`, -1 pads) and their recency weights
(rankers.fusion.shopper_state); the artifact's `shopper` method makes the vectors.

Item embeddings are cached per loaded version, keyed by a 128-bit hash of the text's token ids
(computed for the whole request in one tensor operation): the catalogue table the worker embedded at
publish (`item_embeddings.pt`, one matrix), plus an LRU of items embedded since. Nothing here is keyed
by shopper, so nothing needs forgetting. Workers copy this file into every version folder they publish.
"""
import os
from collections import OrderedDict

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

CACHE_ITEMS = int(os.environ.get("RECSYS_ITEM_EMBEDDING_CACHE", "200000"))
# The towers' and the MLP's type on a GPU instance (float16 unless set); CPU instances run float32.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
GPU_DTYPE = DTYPES[os.environ.get("RECSYS_INFERENCE_DTYPE") or "float16"]
_MULTIPLIERS = torch.from_numpy(np.random.default_rng(20261202).integers(-(2**62), 2**62, size=(513, 2), dtype=np.int64) | 1)


def token_keys(ids, mask):
    """One 128-bit key per row of token ids (two independent multiply-add hashes over the unmasked ids
    and the length; int64 arithmetic wraps, which is what a hash wants)."""
    width = ids.shape[1]
    masked = (ids * mask).unsqueeze(-1)
    hashes = (masked * _MULTIPLIERS[1 : width + 1]).sum(1) + mask.sum(1, keepdim=True) * _MULTIPLIERS[0]
    return [(a << 64) ^ (b & 0xFFFFFFFFFFFFFFFF) for a, b in hashes.tolist()]


class TritonPythonModel:
    def initialize(self, args):
        kind = args.get("model_instance_kind", "CPU")
        self.device = f"cuda:{args.get('model_instance_device_id', '0')}" if kind == "GPU" else "cpu"
        # One thread per instance: a request is lookups and a small MLP, where intra-op threads only
        # spin; the rare new item text to encode is a few sequences. Scale with instances instead.
        torch.set_num_threads(int(os.environ.get("RECSYS_TORCH_THREADS", "0")) or 1)
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        self.model = torch.jit.load(path, map_location=self.device).eval()
        self.dtype = GPU_DTYPE if self.device != "cpu" else torch.float32
        if self.dtype != torch.float32:
            self.model = self.model.to(self.dtype)
        self.extra = OrderedDict()  # items embedded since the table (key -> vector), LRU
        self.index, self.table = {}, torch.zeros(0, 1)
        table = os.path.join(args["model_repository"], args["model_version"], "item_embeddings.pt")
        if os.path.exists(table):  # the catalogue, embedded by the worker that published this version
            self._load_table(torch.load(table))

    def _load_table(self, data):
        """The table's keys are the item texts' token ids as bytes: padded into one matrix without a
        Python loop per item and hashed in chunks (a 500k-item catalogue loads in seconds)."""
        keys = data["keys"]
        if not keys:
            return
        lengths = np.fromiter((len(k) // 8 for k in keys), dtype=np.int64, count=len(keys))
        mask = np.arange(int(lengths.max()))[None, :] < lengths[:, None]
        ids = np.zeros(mask.shape, dtype=np.int64)
        ids[mask] = np.frombuffer(b"".join(keys), dtype=np.int64)  # row-major fill = the keys in order
        hashed = []
        for start in range(0, len(keys), 65536):
            chunk = slice(start, start + 65536)
            hashed += token_keys(torch.from_numpy(ids[chunk]), torch.from_numpy(mask[chunk].astype(np.int64)))
        self.index = {key: k for k, key in enumerate(hashed)}
        self.table = data["vectors"].to(self.device, self.dtype)

    def _input(self, request, name):
        return torch.from_dlpack(pb_utils.get_input_tensor_by_name(request, name).to_dlpack())

    def _encode(self, ids, mask, rows):
        width = int(mask[rows].sum(1).max())
        return self.model.encode(ids[rows, :width].to(self.device), mask[rows, :width].to(self.device))

    def _item_embeddings(self, ids, mask):
        keys = token_keys(ids, mask)
        at = [self.index.get(key, -1) for key in keys]
        out = self.table[torch.tensor([max(a, 0) for a in at], dtype=torch.long)] if self.index else torch.zeros(
            len(keys), 0, device=self.device, dtype=self.dtype)
        others = [k for k, a in enumerate(at) if a < 0]
        if not others:
            return out
        missing = [k for k in others if keys[k] not in self.extra]
        if missing:
            for k, vector in zip(missing, self._encode(ids, mask, torch.tensor(missing))):
                self.extra[keys[k]] = vector
            while len(self.extra) > CACHE_ITEMS:
                self.extra.popitem(last=False)
        vectors = torch.stack([self.extra[keys[k]] for k in others])
        if out.shape[1] != vectors.shape[1]:  # no table: every row is an extra
            out = torch.zeros(len(keys), vectors.shape[1], device=self.device, dtype=vectors.dtype)
        out[torch.tensor(others)] = vectors
        return out

    def _optional(self, request, name):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        return None if tensor is None else torch.from_dlpack(tensor.to_dlpack())

    def _shoppers(self, request):
        """Shopper vectors [B, D]: the given `user_vector`, or made from the history inputs."""
        given = self._optional(request, "user_vector")
        if given is not None:
            return given.to(self.device, self.dtype)
        index = self._input(request, "history_index").long()
        weights = self._input(request, "history_weights").float()
        if bool((index >= 0).any()):
            items = self._item_embeddings(self._input(request, "history_input_ids").long(),
                                          self._input(request, "history_attention_mask").long())
        else:  # no usable history: the zero vector (cold start)
            items = torch.zeros(0, 1, device=self.device, dtype=self.dtype)
        return self.model.shopper(items, index.to(self.device), weights.to(self.device))

    def execute(self, requests):
        responses = []
        for request in requests:
            with torch.inference_mode():
                users = self._shoppers(request)
                signals = self._optional(request, "signals")
                if signals is None:  # a shopper-state request
                    out = pb_utils.Tensor.from_dlpack("shopper_vector", torch.utils.dlpack.to_dlpack(users.float().cpu().contiguous()))
                    responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
                    continue
                items = self._item_embeddings(self._input(request, "item_input_ids").long(), self._input(request, "item_attention_mask").long())
                signals = signals.to(self.device, self.dtype)
                n = signals.shape[0]
                probs = self.model(users[:1].expand(n, -1), items, signals).float().cpu()
            out = pb_utils.Tensor.from_dlpack("probability", torch.utils.dlpack.to_dlpack(probs.contiguous()))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
