"""A `Trainer` for VTok: logs the two terms of VTok's loss, `L = L_under + lambda_visLM * L_visLM`, separately,
fits a new model's feature statistics before the first step, and keeps the dataset columns that
[`VTokDataCollator`] turns into model inputs."""

from collections import defaultdict

import torch

from .import_utils import require

require("accelerate", "VTokTrainer (transformers.Trainer)")
from transformers import Trainer  # noqa: E402

from processing_vtok import VTokDataCollator  # noqa: E402

from .training_vtok import VTokFeatureStatisticsCallback, has_identity_feature_statistics, has_video_tokenizer  # noqa: E402


class VTokTrainer(Trainer):
    """`transformers.Trainer` that also logs `text_loss` (L_under) and `visual_loss` (L_visLM).

    - **Feature statistics.** A model whose video tokenizer's feature statistics are still at identity (a
      new model) gets a [`VTokFeatureStatisticsCallback`], which fits them on the first training videos
      before the first step (docs/model.md says why a random encoder needs them). Pass your own
      callback (e.g. `VTokFeatureStatisticsCallback(num_videos=64)`) to change how, or
      `fit_feature_statistics=False` to train with identity statistics.
    - **Columns.** With [`VTokDataCollator`] as `data_collator`, every column reaches it also under the
      default `TrainingArguments(remove_unused_columns=True)`, which would keep only the model's `forward`
      arguments: the collator turns raw examples (`video`, `question`, `answer`, ...) into those arguments.
    """

    # VTok's forward computes its own loss terms; Trainer must not inject `num_items_in_batch`.
    model_accepts_loss_kwargs = False

    def __init__(self, *args, fit_feature_statistics: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss_terms = defaultdict(list)
        has_callback = any(isinstance(callback, VTokFeatureStatisticsCallback) for callback in self.callback_handler.callbacks)
        if fit_feature_statistics and not has_callback and has_video_tokenizer(self.model) and has_identity_feature_statistics(self.model):
            self.add_callback(VTokFeatureStatisticsCallback())

    # Trainer's two places that apply `remove_unused_columns` (a datasets.Dataset's columns, other datasets'
    # keys): VTokDataCollator reads raw example columns, none of which is a `forward` argument.
    def _remove_unused_columns(self, dataset, description=None):
        return dataset if isinstance(self.data_collator, VTokDataCollator) else super()._remove_unused_columns(dataset, description)

    def _get_collator_with_removed_columns(self, data_collator, description=None):
        if isinstance(data_collator, VTokDataCollator):
            return data_collator
        return super()._get_collator_with_removed_columns(data_collator, description)

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
