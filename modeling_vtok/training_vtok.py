"""The VTok training recipe as library calls: a new model and its processor, an existing checkpoint, the
`TrainingArguments` VTok needs, the feature statistics a fresh encoder needs, the decoder stage's
module and collator, and question-answering accuracy (by generation, and as a `compute_metrics` for
`Trainer`).

`examples/train.py` and `examples/evaluate_qa.py` are these calls plus argument parsing, so a script of
your own trains the same way on your data (docs/your_own_data.md):

    model, processor = build_vtok_model(texts, video_tokenization="frames", num_frames=8)
    collator = VTokDataCollator(processor)   # samples the processor's saved num_frames
    trainer = VTokTrainer(model=model, args=vtok_training_arguments("runs/frames", max_steps=500),
                          train_dataset=examples, data_collator=collator)
    trainer.train()   # fits the new model's feature statistics first (VTokFeatureStatisticsCallback)
    scores = qa_accuracy(answer_questions(model, collator, test_examples), test_examples)
"""

import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from torch import nn
from transformers import EvalPrediction, TrainerCallback, TrainingArguments
from transformers.utils import logging

from processing_vtok import VTokDataCollator, VTokProcessor, VTokVideoProcessor, train_text_tokenizer

from .configuration_vtok import VTokConfig
from .decoder_vtok import VTokVideoDecoder
from .import_utils import require
from .modeling_vtok import VTokForConditionalGeneration
from .tokenizer_vtok import VTokVideoTokenizer

require("accelerate", "The VTok training recipe (transformers.Trainer)")
require("evaluate", "The VTok training recipe (QA accuracy)")
from .metrics_vtok import load_vtok_accuracy  # noqa: E402


logger = logging.get_logger(__name__)

# Model sizes: "tiny" for tests and CI, "small" for the bundled default (about 25 MB in fp32).
MODEL_SIZES = {
    "tiny": {
        "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 8},
        "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
        "decoder": {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 8},
        "key_frame_pool_size": None,
    },
    "small": {
        "vision": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "patch_size": 4},
        "text": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2},
        # 4x4-pixel patches: 10x faster on CPU than 2x2 at this size (0.9 s vs 7 s per batch of 16)
        "decoder": {"patch_size": (1, 4, 4), "num_layers": 4, "num_attention_heads": 4, "attention_head_dim": 32, "concat_channels": 8},
        "key_frame_pool_size": 4,
    },
}


def build_vtok_model(
    texts,
    size: str = "tiny",
    image_size: int = 32,
    num_frames: int = 8,
    video_tokenization: str = "vtok",
    key_frame_pool_size: int | None = None,
    temporal_stride: int = 1,
    train_vision_encoder: bool = False,
    vocab_size: int = 512,
    **config_fields,
) -> tuple[VTokForConditionalGeneration, VTokProcessor]:
    r"""A new model of a `MODEL_SIZES` preset and its processor, around a text tokenizer trained on `texts`.

    Args:
        texts (`Iterable[str]`): The data's own words (questions, answers, captions) for the tokenizer.
        size (`str`, defaults to `"tiny"`): `"tiny"` (tests) or `"small"` (the bundled default).
        image_size (`int`, defaults to 32): Side of the square frames the vision encoder reads.
        num_frames (`int`, defaults to 8): Frames sampled per video file. Saved in the processor config, the
            one home of the sampling setting: the collator, the feature statistics and evaluation read it.
        video_tokenization (`str`, defaults to `"vtok"`): `"vtok"` or the `"frames"` baseline (S tokens per frame).
        key_frame_pool_size (`int`, *optional*): Side of the pooled key-frame grid; `None` takes the
            preset's (tiny: every patch, small: 4).
        temporal_stride (`int`, defaults to 1): Later frames per residual token ("vtok" only).
        train_vision_encoder (`bool`, defaults to `False`): Unfreeze the vision encoder.
        vocab_size (`int`, defaults to 512): Target vocabulary of the text tokenizer.
        config_fields: Further [`VTokConfig`] fields (e.g. `residual_pooling="spatial_map"`). The model is
            built with the defaults first and then rebuilt with these fields, keeping every weight whose shape
            they leave unchanged: models of one seed that differ only in such fields start from the same LLM,
            projector and encoder, so comparing them measures the fields, not the initialisation.

    No pretrained encoder is available offline, so the random SigLIP gets fixed 2D sine-cosine position
    embeddings: its features then say where things are, and residuals where they went (docs/model.md).
    Its feature statistics stay at identity: fit them ([`VTokFeatureStatisticsCallback`]).
    """
    if size not in MODEL_SIZES:
        raise ValueError(f"Unknown size {size!r}. Has to be one of {sorted(MODEL_SIZES)}.")
    unknown = [name for name in config_fields if not hasattr(VTokConfig, name)]
    if unknown:  # PreTrainedConfig would keep an unknown keyword as a plain attribute that nothing reads
        raise ValueError(f"VTokConfig has no fields {unknown}.")
    preset = MODEL_SIZES[size]
    tokenizer = train_text_tokenizer(texts, vocab_size=vocab_size)
    config = VTokConfig(
        vision_config={"model_type": "siglip_vision_model", "image_size": image_size, **preset["vision"]},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "max_position_embeddings": 1024, **preset["text"]},
        video_tokenization=video_tokenization,
        key_frame_pool_size=preset["key_frame_pool_size"] if key_frame_pool_size is None else key_frame_pool_size,
        temporal_stride=temporal_stride,
        freeze_vision_encoder=not train_vision_encoder,
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        video_start_token_id=tokenizer.convert_tokens_to_ids("<vid_start>"),
        video_end_token_id=tokenizer.convert_tokens_to_ids("<vid_end>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    video_processor = VTokVideoProcessor(size={"height": image_size, "width": image_size}, num_frames=num_frames)
    processor = VTokProcessor.from_model_config(config, video_processor, tokenizer)
    model = VTokForConditionalGeneration(config)
    position_embedding = model.model.video_tokenizer.vision_tower.embeddings.position_embedding
    with torch.no_grad():
        position_embedding.weight.copy_(sincos_position_embeddings(config.patch_grid_size, config.vision_config.hidden_size))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if not config_fields:
        return model, processor
    config = VTokConfig.from_dict({**config.to_dict(), **config_fields})
    rebuilt = VTokForConditionalGeneration(config)
    target = rebuilt.state_dict()
    rebuilt.load_state_dict({k: v for k, v in model.state_dict().items() if k in target and target[k].shape == v.shape}, strict=False)
    rebuilt.generation_config = model.generation_config
    return rebuilt, VTokProcessor.from_model_config(config, video_processor, tokenizer)


def example_texts(dataset) -> list[str]:
    """The words of a dataset's examples (captions, questions, answers, earlier turns): the `texts` of
    [`build_vtok_model`]'s new text tokenizer."""
    texts = []
    for column in ("caption", "question", "answer"):
        if column in dataset.column_names:
            texts += dataset[column]
    if "context" in dataset.column_names:
        texts += [turn for context in dataset["context"] for turn in context]
    return texts


def sincos_position_embeddings(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine code of a `grid` x `grid` patch grid, `(grid * grid, dim)` (as in MAE)."""
    quarter = dim // 4
    freqs = 1.0 / 100 ** (torch.arange(quarter) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    x, y = xs.reshape(-1, 1) * freqs, ys.reshape(-1, 1) * freqs
    code = torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)
    return torch.nn.functional.pad(code, (0, dim - code.shape[1]))


def vtok_checkpoint_folders(path: str | os.PathLike) -> tuple[Path, Path]:
    """`(model_dir, processor_dir)` of a VTok checkpoint: `model/` and `processor/` of a pipeline folder (as
    `examples/train.py` writes and `checkpoints/vtok-tiny-shapes` is), or one folder holding both; a
    `FileNotFoundError` when `path` is neither."""
    path = Path(path)
    model_dir, processor_dir = (path / "model", path / "processor") if (path / "model").is_dir() else (path, path)
    if not (model_dir / "config.json").is_file() or not (processor_dir / "processor_config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a VTok checkpoint: expected a pipeline folder with model/ and processor/ subfolders, "
            "or one folder with config.json and processor_config.json (model.save_pretrained and "
            "processor.save_pretrained into the same folder)."
        )
    return model_dir, processor_dir


def load_vtok_model(path: str | os.PathLike) -> tuple[VTokForConditionalGeneration, VTokProcessor]:
    """A trained model and its processor from a checkpoint folder ([`vtok_checkpoint_folders`])."""
    model_dir, processor_dir = vtok_checkpoint_folders(path)
    return VTokForConditionalGeneration.from_pretrained(model_dir), VTokProcessor.from_pretrained(processor_dir)


def vtok_training_arguments(
    output_dir: str | os.PathLike,
    max_steps: int,
    per_device_train_batch_size: int = 16,
    learning_rate: float = 1e-3,
    logging_steps: int = 10,
    seed: int = 0,
    activation_checkpointing: bool = False,
    **kwargs,
) -> TrainingArguments:
    """`TrainingArguments` for VTok: the settings it needs (`remove_unused_columns=False`, so the video and
    text columns reach [`VTokDataCollator`] under a plain `Trainer` too; gloo for multi-process CPU runs) and the recipe's schedule
    (cosine, warmup over a tenth of the steps up to 50, no weight decay). Any other `TrainingArguments`
    keyword is passed through (`kwargs`) and wins."""
    settings = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=per_device_train_batch_size,
        per_device_eval_batch_size=per_device_train_batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=min(50, max_steps // 10),
        weight_decay=0.0,
        logging_steps=logging_steps,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        activation_checkpointing=activation_checkpointing,
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available() else None,
        dataloader_num_workers=0,
        seed=seed,
        use_cpu=not torch.cuda.is_available(),
    )
    return TrainingArguments(**{**settings, **kwargs})


# -- feature statistics -------------------------------------------------------------------------------


def _video_tokenizer(model) -> VTokVideoTokenizer | None:
    """The `VTokVideoTokenizer` of a VTok model, also when peft wraps it; `None` for another model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    tokenizer = getattr(getattr(base, "model", None), "video_tokenizer", None)
    return tokenizer if isinstance(tokenizer, VTokVideoTokenizer) else None


def has_video_tokenizer(model) -> bool:
    """Whether `model` is a VTok model (possibly wrapped by peft), so it has feature statistics."""
    return _video_tokenizer(model) is not None


def has_identity_feature_statistics(model) -> bool:
    """Whether the video tokenizer's feature statistics were never fitted (means 0, stds 1)."""
    tokenizer = _video_tokenizer(model)
    return all(
        bool((getattr(tokenizer, f"{kind}_mean") == 0).all() and (getattr(tokenizer, f"{kind}_std") == 1).all())
        for kind in ("key", "residual")
    )


def warn_if_identity_feature_statistics(model) -> None:
    """Warn when `model`'s feature statistics were never fitted: its scores would say little."""
    if has_identity_feature_statistics(model):
        logger.warning(
            "This VTok model's feature statistics are at identity (never fitted). Unless its vision encoder "
            "was pretrained on videos like yours, the LLM then barely sees the videos and stays near chance "
            "(docs/model.md). Fit them on training clips: `fit_feature_statistics(model, examples, collator)`, "
            "or train with `callbacks=[VTokFeatureStatisticsCallback()]`."
        )


def fit_feature_statistics(model, examples, collator: VTokDataCollator, num_videos: int = 512) -> None:
    """Measures the video tokenizer's feature statistics on the videos of the first `num_videos` examples
    (`VTokVideoTokenizer.fit_feature_statistics`, docs/model.md), sampled by `collator` exactly as
    training samples them. Every process reads the same examples, so multi-process runs stay identical.

    All the videos go through the encoder at once: a few hundred small clips fit in memory."""
    if hasattr(examples, "__len__"):
        chosen = [examples[i] for i in range(min(num_videos, len(examples)))]
    else:  # an iterable dataset
        chosen = [example for example, _ in zip(examples, range(num_videos))]
    logger.info(f"Fitting the video tokenizer's feature statistics on {len(chosen)} training videos")
    batch = collator(chosen)
    tokenizer = _video_tokenizer(model)
    tokenizer.fit_feature_statistics(batch["pixel_values_videos"].to(tokenizer.key_mean.device), batch["video_lengths"])


class VTokFeatureStatisticsCallback(TrainerCallback):
    """Fits the feature statistics at the start of training when they are still at identity, from the
    first `num_videos` examples of the training set through the trainer's collator (so with the frame
    sampling of training), and warns when a model with identity statistics is evaluated.

    A model whose statistics were fitted (a trained checkpoint) is left as it is."""

    def __init__(self, num_videos: int = 512):
        self.num_videos = num_videos

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if has_identity_feature_statistics(model):
            fit_feature_statistics(model, train_dataloader.dataset, train_dataloader.collate_fn, self.num_videos)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        warn_if_identity_feature_statistics(model)


# -- decoder stage ------------------------------------------------------------------------------------


class VTokDecoderTrainingModule(nn.Module):
    """`Trainer`-facing wrapper of the decoder stage: frozen VTok tokens in, the decoder's flow-matching
    loss out. Train it with a plain `Trainer` and [`video_only_collator`]."""

    def __init__(self, decoder: VTokVideoDecoder, vtok_model: VTokForConditionalGeneration):
        super().__init__()
        self.decoder = decoder
        self.vtok_model = vtok_model.requires_grad_(False).eval()

    def forward(self, pixel_values_videos, video_lengths=None, **unused):
        if video_lengths is not None and not (video_lengths == pixel_values_videos.shape[1]).all():
            raise ValueError(f"The decoder trains on clips of one length; got video_lengths={video_lengths.tolist()}.")
        with torch.no_grad():
            vtok = self.vtok_model.model.get_vtok_tokens(pixel_values_videos, video_lengths)
        return {"loss": self.decoder.training_loss(pixel_values_videos.transpose(1, 2), vtok.tokens)}


def video_only_collator(processor: VTokProcessor):
    """Collator of the decoder stage: the examples' videos through `processor`'s video processor, no text."""

    def collate(examples):
        return processor.video_processor(videos=[example["video"] for example in examples], return_tensors="pt")

    return collate


# -- question answering -------------------------------------------------------------------------------


def answer_token_budget(tokenizer, answers) -> int:
    """Tokens of the longest answer plus its end-of-turn: greedy generation needs no more to produce
    any reference, and stopping there keeps a long wrong answer from costing more."""
    return max(len(tokenizer(f"{answer}{tokenizer.eos_token}", add_special_tokens=False)["input_ids"]) for answer in answers)


@torch.no_grad()
def answer_questions(model, collator: VTokDataCollator, examples, batch_size: int = 16, max_new_tokens: int | None = None) -> list[str]:
    """Greedy answers of `model` to each example's question about its video (with the example's earlier
    turns, `context`, as the chat before it), prompted and sampled exactly as `collator` trains.
    `max_new_tokens` defaults to [`answer_token_budget`] of the examples' reference answers."""
    examples = list(examples)
    if max_new_tokens is None:
        max_new_tokens = answer_token_budget(collator.processor.tokenizer, [example["answer"] for example in examples])
    warn_if_identity_feature_statistics(model)
    model.eval()
    answers = []
    for start in tqdm(range(0, len(examples), batch_size), desc="answering"):
        inputs = collator.prompt_inputs(examples[start : start + batch_size]).to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answers += collator.processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return [answer.strip() for answer in answers]


def _categories(categories) -> list[str] | None:
    """Categories for the QA metric, `""` where an example has none; `None` when none has one."""
    categories = [category or "" for category in categories]
    return categories if any(categories) else None


def qa_accuracy(predictions: list[str], examples) -> dict[str, float]:
    """Exact match of `predictions` with the examples' answers (normalised: case, surrounding spaces, a
    final period), overall (`accuracy`) and per `category` when the examples have one (`accuracy/<category>`)."""
    examples = list(examples)
    return load_vtok_accuracy().compute(
        predictions=predictions,
        references=[example["answer"] for example in examples],
        categories=_categories(example.get("category") for example in examples),
    )


def predicted_token_ids(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`preprocess_logits_for_metrics` for [`qa_compute_metrics`]: keeps the argmax token of each position
    instead of the whole vocabulary's logits, so evaluation does not hold them all in memory."""
    return logits.argmax(dim=-1)


def qa_compute_metrics(tokenizer, categories: list[str] | None = None):
    """`compute_metrics` for `Trainer.evaluate` on understanding examples: [`qa_accuracy`] of the answers
    the model predicts with teacher forcing (the argmax token at every answer position). Greedy
    generation produces an answer exactly when each of these tokens is right, so this is the accuracy
    `examples/evaluate_qa.py` measures, without generating. Pass the evaluation examples' `categories`
    (in order, e.g. `eval_dataset["category"]`) for per-category accuracy; use with
    `preprocess_logits_for_metrics=predicted_token_ids`."""
    categories = None if categories is None else _categories(categories)
    metric = load_vtok_accuracy()

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        predicted, labels = np.asarray(prediction.predictions), np.asarray(prediction.label_ids)
        if predicted.ndim == 3:  # logits, without predicted_token_ids
            predicted = predicted.argmax(-1)
        if categories is not None and len(categories) != len(labels):
            raise ValueError(f"qa_compute_metrics got {len(categories)} categories but evaluation gave {len(labels)} examples.")
        # The logits at position i predict the token at i + 1.
        predicted, labels = predicted[:, :-1], labels[:, 1:]
        answer = labels != -100
        predictions = [tokenizer.decode(row[mask], skip_special_tokens=True) for row, mask in zip(predicted, answer)]
        references = [tokenizer.decode(row[mask], skip_special_tokens=True) for row, mask in zip(labels, answer)]
        return metric.compute(predictions=predictions, references=references, categories=categories)

    return compute_metrics


__all__ = [
    "MODEL_SIZES",
    "build_vtok_model",
    "example_texts",
    "vtok_checkpoint_folders",
    "load_vtok_model",
    "vtok_training_arguments",
    "has_video_tokenizer",
    "has_identity_feature_statistics",
    "warn_if_identity_feature_statistics",
    "fit_feature_statistics",
    "VTokFeatureStatisticsCallback",
    "VTokDecoderTrainingModule",
    "video_only_collator",
    "answer_token_budget",
    "answer_questions",
    "qa_accuracy",
    "predicted_token_ids",
    "qa_compute_metrics",
]
