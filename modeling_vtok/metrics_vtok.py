"""Question-answering accuracy of short answers, overall and per question category, as an offline
`evaluate` metric: the score of TV-Align-style benchmarks (arXiv 2602.04202, Sec. 4), of VTok-Shapes and
of any question-answering file of your own (docs/your_own_data.md).

`evaluate.load("accuracy")` fetches a script from the Hub; this metric is defined here instead, so
`load_vtok_accuracy()` works with no network, and so does `evaluate.load("metrics/vtok_qa_accuracy")`
(the folder in this repository, a one-line script around this class).
"""

from collections import defaultdict

from .import_utils import require

require("datasets", "The VTok QA metric")
require("evaluate", "The VTok QA metric")
import datasets  # noqa: E402
import evaluate  # noqa: E402

_DESCRIPTION = """Exact-match accuracy of short answers (stripped, lower-cased, trailing period dropped),
overall and per question category (`accuracy/<category>`)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): generated answers.
    references (`list[str]`): reference answers.
    categories (`list[str]`, *optional*): question category of each example (e.g. the `category`
        column of VTok-Shapes or of a LLaVA-Video file); `""` for an example without one. Without
        categories only the overall accuracy is returned.
Returns:
    `{"accuracy": float, "accuracy/<category>": float, ...}`
Example:
    >>> metric = load_vtok_accuracy()
    >>> metric.compute(predictions=["Left", "two"], references=["left", "three"], categories=["direction", "counting"])
    {'accuracy': 0.5, 'accuracy/counting': 0.0, 'accuracy/direction': 1.0}
"""

_NO_CATEGORY = ""


def normalize_answer(text: str) -> str:
    """`" Left. "` -> `"left"`: strip, lower-case, drop trailing punctuation."""
    return str(text).strip().lower().rstrip(".!?").strip()


class VTokQAAccuracy(evaluate.Metric):
    """Accuracy overall and per question category; see `load_vtok_accuracy`."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Value("string"),
                    "categories": datasets.Value("string"),
                }
            ),
        )

    def compute(self, *, predictions=None, references=None, categories=None, **kwargs):
        """Accuracy overall and per category of the given (and previously added) examples."""
        # Categories are optional for the caller but a feature of the metric: fill them in.
        if categories is None and predictions is not None:
            categories = [_NO_CATEGORY] * len(predictions)
        return super().compute(predictions=predictions, references=references, categories=categories, **kwargs)

    def add_batch(self, *, predictions=None, references=None, categories=None, **kwargs):
        """Adds examples; `categories` may be left out."""
        if categories is None and predictions is not None:
            categories = [_NO_CATEGORY] * len(predictions)
        return super().add_batch(predictions=predictions, references=references, categories=categories, **kwargs)

    def _compute(self, predictions, references, categories):
        if len(predictions) == 0:
            return {"accuracy": 0.0}
        hits = defaultdict(list)
        for pred, ref, cat in zip(predictions, references, categories):
            correct = normalize_answer(pred) == normalize_answer(ref)
            hits["accuracy"].append(correct)
            if cat != _NO_CATEGORY:
                hits[f"accuracy/{cat}"].append(correct)
        return {name: sum(v) / len(v) for name, v in sorted(hits.items())}


def load_vtok_accuracy(**kwargs) -> VTokQAAccuracy:
    """The offline VTok QA accuracy metric (kept in memory unless `keep_in_memory=False` is passed)."""
    kwargs.setdefault("keep_in_memory", True)
    return VTokQAAccuracy(**kwargs)


__all__ = ["VTokQAAccuracy", "load_vtok_accuracy", "normalize_answer"]
