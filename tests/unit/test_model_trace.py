"""The traced TorchScript model gives the eager model's outputs at other batch sizes and lengths."""
import pytest
import torch

from rankers.cross_encoder.network import build_model, example_inputs, load_for_training, trace


@pytest.fixture(scope="module")
def models():
    model = build_model(seed=3).eval()
    return model, trace(model)


@pytest.mark.parametrize("batch, length", [(1, 7), (3, 24), (9, 50), (17, 64), (2, 128)])
def test_traced_matches_eager(models, batch, length):
    eager, traced = models
    ids, mask, types = example_inputs(batch, length)
    with torch.no_grad():
        a = eager(ids, mask, types)
        b = traced(ids, mask, types)
    assert a.shape == b.shape == (batch, 1)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_padding_changes_nothing_for_a_row(models):
    """A pair padded to a longer batch scores the same as alone (the mask is traced as data)."""
    _, traced = models
    ids, mask, types = example_inputs(1, 12)
    padded = [torch.nn.functional.pad(t, (0, 20)) for t in (ids, mask, types)]
    with torch.no_grad():
        torch.testing.assert_close(traced(ids, mask, types), traced(*padded), atol=1e-5, rtol=1e-4)


def test_reload_for_training_round_trips(models, tmp_path):
    eager, traced = models
    path = tmp_path / "model.pt"
    torch.jit.save(traced, str(path))
    again = load_for_training(path).eval()
    ids, mask, types = example_inputs(4, 30)
    with torch.no_grad():
        torch.testing.assert_close(again(ids, mask, types), eager(ids, mask, types))
