"""A plain `transformers.Trainer` (not VTokTrainer) with VTokDataCollator under the default
`TrainingArguments(remove_unused_columns=True)`. Trainer keeps only the columns that are arguments of the model's
`forward`, and the collator reads none of those (`video`, `question`, `answer`, `caption`, ...), so training
cannot start; the error says what to do, and what it says works."""

import datasets
import numpy as np
import pytest
import torch
from conftest import tiny_stack
from transformers import Trainer, TrainingArguments

from processing_vtok import VTokDataCollator

WHAT_TO_DO = r"remove_unused_columns=False"


@pytest.fixture(scope="module")
def stack():
    torch.manual_seed(0)
    return tiny_stack()


def examples(kind):
    generator = np.random.default_rng(0)
    rows = [
        {"video": generator.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), "question": "which way does the circle move ?", "answer": "left"},
        {"video": generator.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), "caption": "a red circle moves left"},
    ]
    if kind == "list":
        return rows
    return datasets.Dataset.from_list([{"question": None, "answer": None, "caption": None, **row} for row in rows])


def arguments(tmp_path, **overrides):
    return TrainingArguments(str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to="none", use_cpu=True, **overrides)


@pytest.mark.parametrize("kind", ["datasets.Dataset", "list"])
def test_plain_trainer_with_default_arguments_says_to_keep_the_columns(stack, tmp_path, kind):
    model, processor = stack
    trainer = Trainer(model=model, args=arguments(tmp_path), train_dataset=examples(kind), data_collator=VTokDataCollator(processor))
    with pytest.raises(ValueError, match=WHAT_TO_DO):
        trainer.train()


@pytest.mark.parametrize("kind", ["datasets.Dataset", "list"])
def test_what_the_error_says_trains(stack, tmp_path, kind):
    """The other way out, VTokTrainer under the default arguments, is test_your_own_data.py's."""
    model, processor = stack
    args = arguments(tmp_path, remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, train_dataset=examples(kind), data_collator=VTokDataCollator(processor))
    assert np.isfinite(trainer.train().training_loss)
