"""The offline per-category QA accuracy metric (modeling_vtok/metrics_vtok.py), also through `evaluate.load`."""

from pathlib import Path

import evaluate
import pytest

from modeling_vtok.metrics_vtok import VTokQAAccuracy, load_vtok_accuracy, normalize_answer
from modeling_vtok.training_vtok import qa_accuracy

METRIC_FOLDER = Path(__file__).resolve().parent.parent / "metrics" / "vtok_qa_accuracy"
PREDICTIONS = [" Left", "two", "YES.", "no", "red", "blue"]
REFERENCES = ["left", "three", "yes", "yes", "red", "red"]
CATEGORIES = ["direction", "counting", "state", "state", "color", "color"]


def test_per_category_accuracy():
    metric = load_vtok_accuracy()
    assert isinstance(metric, evaluate.Metric) and isinstance(metric, VTokQAAccuracy)
    result = metric.compute(predictions=PREDICTIONS, references=REFERENCES, categories=CATEGORIES)
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


def test_evaluate_load_of_the_metric_folder_gives_the_library_numbers():
    metric = evaluate.load(str(METRIC_FOLDER))
    assert isinstance(metric, VTokQAAccuracy)
    library = qa_accuracy(PREDICTIONS, [{"answer": a, "category": c} for a, c in zip(REFERENCES, CATEGORIES)])
    assert metric.compute(predictions=PREDICTIONS, references=REFERENCES, categories=CATEGORIES) == library
    assert library["accuracy/state"] == 0.5
    assert metric.compute(predictions=["Up."], references=["up"]) == {"accuracy": 1.0}
