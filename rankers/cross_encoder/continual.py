"""Continual-learning options for fine-tuning a serving version on new behaviour.

Every option trains the same `ClickModel` and hands back a plain one (LoRA adapters are merged into
the weights), so the published TorchScript artifact and Triton's config never change with the option:

- `full`: every weight is trained (replay of older examples is what guards against forgetting);
- `distill`: full training plus a distillation term pulling the candidate's click probabilities towards
  the previous version's on every training example (LwF / ADER-style knowledge distillation);
- `top-layers`: embeddings and the lower encoder layers frozen, only the top `TOP_LAYERS` layers and the
  head trained (cheaper backward pass, less room to forget);
- `lora`: low-rank adapters on the attention query/value projections of every layer plus the head.
"""
from __future__ import annotations

import math

import torch
from torch import nn

STRATEGIES = ("full", "distill", "top-layers", "lora")
TOP_LAYERS = 2
LORA_RANK = 8
LORA_ALPHA = 16.0
LORA_TARGETS = ("query", "value")
# Fewer trained weights tolerate (and need) larger steps; these are each option's defaults.
DEFAULT_LEARNING_RATE = {"full": 3e-5, "distill": 3e-5, "top-layers": 1e-4, "lora": 5e-4}


class LoRALinear(nn.Module):
    """`base(x) + scale · B(A(x))` with `base` frozen; B starts at zero so training starts from `base`."""

    def __init__(self, base: nn.Linear, rank: int = LORA_RANK, alpha: float = LORA_ALPHA) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> nn.Linear:
        linear = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear.to(self.base.weight.device)


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.encoder.encoder.layer


def prepare(model: nn.Module, strategy: str) -> list[nn.Parameter]:
    """Set up `model` for `strategy` and return the parameters to optimise."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown fine-tune strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy in ("full", "distill"):
        return [p for p in model.parameters() if p.requires_grad]
    for p in model.parameters():
        p.requires_grad_(False)
    layers = _encoder_layers(model)
    if strategy == "top-layers":
        for layer in layers[len(layers) - TOP_LAYERS :]:
            for p in layer.parameters():
                p.requires_grad_(True)
    else:  # lora
        for layer in layers:
            attention = layer.attention.self
            for name in LORA_TARGETS:
                setattr(attention, name, LoRALinear(getattr(attention, name)))
    for p in model.head.parameters():
        p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def finish(model: nn.Module) -> nn.Module:
    """Merge any LoRA adapters into plain linear layers and make every weight trainable again."""
    for layer in _encoder_layers(model):
        attention = layer.attention.self
        for name in LORA_TARGETS:
            module = getattr(attention, name)
            if isinstance(module, LoRALinear):
                setattr(attention, name, module.merged())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def trainable_fraction(params: list[nn.Parameter], model: nn.Module) -> float:
    """Share of the model's weights an option trains (reported in lineage)."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in params) / max(1, total)
