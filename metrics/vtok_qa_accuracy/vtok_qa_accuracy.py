"""`evaluate.load("metrics/vtok_qa_accuracy")`: VTok's question-answering accuracy (exact match, overall and
per category) by evaluate's usual entry point, offline. The metric itself lives in the library
(`modeling_vtok.metrics_vtok`), so both give the same numbers; loading this needs the `vtok[train]` install."""

from modeling_vtok.metrics_vtok import VTokQAAccuracy  # noqa: F401  (evaluate.load takes the module's Metric class)
