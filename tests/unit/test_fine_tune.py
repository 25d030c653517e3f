"""The fine-tune loop on a tiny task: it learns, and early stopping keeps the best weights."""

from rankers.cross_encoder.fine_tune import Example, fine_tune, validation_loss
from rankers.cross_encoder.network import build_model


def examples(n):
    out = []
    for i in range(n):
        out.append(Example("bought: red teapot; red mug", f"red kettle {i}", 1.0))
        out.append(Example("bought: red teapot; red mug", f"garden trowel {i}", 0.0))
    return out


def test_fine_tune_lowers_validation_loss_and_reports():
    model = build_model(seed=1)
    val = examples(4)
    before = validation_loss(model, val)
    report = fine_tune(model, examples(16), max_steps=12, batch_size=8, lr=1e-4, validation=val, eval_every=4, patience=5)
    assert report.steps == 12 and report.best_step > 0
    assert validation_loss(model, val) < before
    assert abs(validation_loss(model, val) - report.validation_loss) < 1e-4  # best weights restored


def test_early_stopping_stops_and_restores_the_best():
    model = build_model(seed=2)
    val = examples(4)
    # a learning rate that wrecks the model: validation never improves on step 0, so training stops early
    report = fine_tune(model, examples(16), max_steps=40, batch_size=8, lr=0.5, validation=val, eval_every=2, patience=2)
    assert report.steps < 40
    assert report.best_step == 0
    assert abs(validation_loss(model, val) - report.validation_loss) < 1e-4
