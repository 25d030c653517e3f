"""Continual-learning options: each trains only what it says, learns, and hands back a plain model
that traces to the same TorchScript artifact Triton serves."""
import copy

import pytest
import torch

from rankers.cross_encoder import continual
from rankers.cross_encoder.fine_tune import fine_tune, validation_loss
from rankers.cross_encoder.network import ClickModel, build_model, example_inputs, trace
from tests.unit.test_fine_tune import examples


@pytest.fixture(scope="module")
def base() -> ClickModel:
    return build_model(seed=3)


def test_unknown_strategy_is_refused(base):
    with pytest.raises(ValueError, match="unknown fine-tune strategy"):
        continual.prepare(copy.deepcopy(base), "everything")


def test_top_layers_trains_only_the_top_layers_and_head(base):
    model = copy.deepcopy(base)
    params = continual.prepare(model, "top-layers")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("head.", "encoder.encoder.layer.4.", "encoder.encoder.layer.5.")) for n in trainable)
    assert 0.05 < continual.trainable_fraction(params, model) < 0.5


def test_lora_merge_keeps_the_function(base):
    model = copy.deepcopy(base).eval()
    continual.prepare(model, "lora")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_b"):
                p.normal_(std=0.02)  # as if trained
        before = model(*example_inputs())
        continual.finish(model)
        after = model(*example_inputs())
    assert not any(isinstance(m, continual.LoRALinear) for m in model.modules())
    assert torch.allclose(before, after, atol=1e-5)
    assert set(model.state_dict()) == set(base.state_dict())  # same artifact layout as every version


@pytest.mark.parametrize("strategy", ["top-layers", "lora", "distill"])
def test_each_strategy_learns_and_traces(base, strategy):
    model = copy.deepcopy(base)
    teacher = copy.deepcopy(base) if strategy == "distill" else None
    val = examples(4)
    before = validation_loss(model, val)
    frozen_embeddings = model.encoder.embeddings.word_embeddings.weight.detach().clone()
    fine_tune(model, examples(16), max_steps=12, batch_size=8, lr=5e-4, strategy=strategy, teacher=teacher)
    assert validation_loss(model, val) < before
    if strategy != "distill":
        assert torch.equal(model.encoder.embeddings.word_embeddings.weight, frozen_embeddings)
    assert all(p.requires_grad for p in model.parameters())
    traced = trace(model)
    with torch.no_grad():
        assert torch.allclose(traced(*example_inputs()), model(*example_inputs()), atol=1e-5)


def test_distill_needs_a_teacher(base):
    with pytest.raises(ValueError, match="teacher"):
        fine_tune(copy.deepcopy(base), examples(2), max_steps=1, strategy="distill")
