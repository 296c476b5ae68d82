"""A `Trainer` that logs the two terms of VTok's loss, `L = L_under + lambda_visLM * L_visLM`, separately."""

from collections import defaultdict

import torch

from .import_utils import require

require("accelerate", "VTokTrainer (transformers.Trainer)")
from transformers import Trainer  # noqa: E402


class VTokTrainer(Trainer):
    """`transformers.Trainer` that also logs `text_loss` (L_under) and `visual_loss` (L_visLM).

    Use with [`VTokDataCollator`] and `TrainingArguments(remove_unused_columns=False)`.
    """

    # VTok's forward computes its own loss terms; Trainer must not inject `num_items_in_batch`.
    model_accepts_loss_kwargs = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss_terms = defaultdict(list)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            for name in ("text_loss", "visual_loss"):
                if outputs.get(name) is not None:
                    self._loss_terms[name].append(outputs[name].detach().float())
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # a training log: add this process's mean of each term since the last one
            for name, values in self._loss_terms.items():
                logs[name] = round(torch.stack(values).mean().item(), 4)
            self._loss_terms.clear()
        super().log(logs, *args, **kwargs)


__all__ = ["VTokTrainer"]
