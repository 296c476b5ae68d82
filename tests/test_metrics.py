"""The offline per-category QA accuracy metric."""

import evaluate
import pytest

from vtok_shapes.metrics import VTokQAAccuracy, load_vtok_accuracy, normalize_answer


def test_per_category_accuracy():
    metric = load_vtok_accuracy()
    assert isinstance(metric, evaluate.Metric) and isinstance(metric, VTokQAAccuracy)
    result = metric.compute(
        predictions=[" Left", "two", "YES.", "no", "red", "blue"],
        references=["left", "three", "yes", "yes", "red", "red"],
        categories=["direction", "counting", "state", "state", "color", "color"],
    )
    assert result == pytest.approx(
        {"accuracy": 3 / 6, "accuracy/direction": 1.0, "accuracy/counting": 0.0, "accuracy/state": 0.5, "accuracy/color": 0.5}
    )


def test_without_categories_and_batches():
    metric = load_vtok_accuracy()
    assert metric.compute(predictions=["a", "b"], references=["a", "c"]) == {"accuracy": 0.5}
    metric.add_batch(predictions=["up"], references=["up"], categories=["direction"])
    metric.add_batch(predictions=["one", "two"], references=["two", "two"], categories=["counting", "counting"])
    assert metric.compute() == pytest.approx({"accuracy": 2 / 3, "accuracy/direction": 1.0, "accuracy/counting": 0.5})


def test_normalize_and_errors():
    assert normalize_answer("  Faster! ") == "faster"
    with pytest.raises(ValueError):
        load_vtok_accuracy().compute(predictions=["a", "b"], references=["a"], categories=["x", "y"])
