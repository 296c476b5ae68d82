"""The training recipe as library calls (modeling_vtok/training_vtok.py): the model and TrainingArguments
builders, the processor as the one home of num_frames, feature statistics, QA accuracy and compute_metrics."""

import logging

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, EvalPrediction

from modeling_vtok.trainer_vtok import VTokTrainer
from modeling_vtok.training_vtok import (
    VTokFeatureStatisticsCallback,
    answer_questions,
    answer_token_budget,
    build_vtok_model,
    fit_feature_statistics,
    has_identity_feature_statistics,
    qa_accuracy,
    qa_compute_metrics,
    vtok_training_arguments,
)
from processing_vtok import write_video
from processing_vtok.collator import VTokDataCollator
from test_instruction_data import LONG_ANSWER, QUESTION, patch_clip

TEXTS = [QUESTION, "left", "right", "what moves ?", LONG_ANSWER]
STATISTICS = ("key_mean", "key_std", "residual_mean", "residual_std")
IDENTITY_WARNING = "feature statistics are at identity (never fitted)"


def file_examples(folder, count: int = 4, num_frames: int = 6) -> list[dict]:
    examples = []
    for i in range(count):
        direction = ("left", "right")[i % 2]
        video = write_video(folder / f"{i}.mp4", patch_clip(direction, seed=i, num_frames=num_frames), fps=6)
        examples.append({"video": video, "question": QUESTION, "answer": direction})
    return examples


def test_a_users_script_builds_either_tokenization_with_plain_keywords(tmp_path):
    vtok, vtok_processor = build_vtok_model(TEXTS, num_frames=4)
    frames, frames_processor = build_vtok_model(TEXTS, video_tokenization="frames", num_frames=4)
    _, pooled_processor = build_vtok_model(TEXTS, key_frame_pool_size=2, temporal_stride=2, num_frames=5)
    assert (vtok.config.video_tokenization, frames.config.video_tokenization) == ("vtok", "frames")
    assert vtok_processor.num_video_tokens(4) == vtok.config.num_video_tokens(4) == 16 + 3
    assert frames_processor.num_video_tokens(4) == frames.config.num_video_tokens(4) == 16 * 4
    assert pooled_processor.num_video_tokens(5) == 2 * 2 + 2  # 4 key-frame tokens, 4 later frames in windows of 2
    args = vtok_training_arguments(tmp_path, max_steps=3, per_device_train_batch_size=2, eval_strategy="steps", eval_steps=1)
    assert (args.max_steps, args.per_device_train_batch_size, args.remove_unused_columns, args.eval_steps) == (3, 2, False, 1)
    with pytest.raises(ValueError, match=r"Unknown size 'huge'. Has to be one of \['small', 'tiny'\]"):
        build_vtok_model(TEXTS, size="huge")
    with pytest.raises(ValueError, match="temporal_stride=2 only applies to residual tokens"):
        build_vtok_model(TEXTS, video_tokenization="frames", temporal_stride=2)


def test_config_fields_change_only_what_they_name_and_unknown_ones_are_refused():
    """Arms of one seed that differ in config fields start from the same weights wherever shapes agree."""
    torch.manual_seed(0)
    mean, _ = build_vtok_model(TEXTS, num_frames=4)
    torch.manual_seed(0)
    spatial, processor = build_vtok_model(TEXTS, num_frames=4, residual_pooling="spatial_map", residual_pool_grid_size=2)
    assert spatial.config.residual_pooling == "spatial_map" and processor.num_video_tokens(4) == 16 + 3
    ours, theirs = spatial.state_dict(), mean.state_dict()
    changed = {name for name, tensor in ours.items() if not (tensor.shape == theirs[name].shape and torch.equal(tensor, theirs[name]))}
    assert changed and all(name.startswith("model.video_tokenizer.residual_") for name in changed), changed
    assert spatial.generation_config.eos_token_id == processor.tokenizer.eos_token_id
    with pytest.raises(ValueError, match=r"VTokConfig has no fields \['residual_refrence'\]"):
        build_vtok_model(TEXTS, residual_refrence="both")


def test_the_saved_processor_holds_num_frames_for_training_and_evaluation(tmp_path, caplog):
    model, processor = build_vtok_model(TEXTS, num_frames=4)
    processor.save_pretrained(tmp_path / "processor")
    reloaded = AutoProcessor.from_pretrained(tmp_path / "processor")
    assert reloaded.video_processor.num_frames == 4
    example = file_examples(tmp_path, count=1, num_frames=10)[0]
    batch = VTokDataCollator(reloaded)([example])
    assert batch["video_lengths"].tolist() == [4]
    assert int((batch["input_ids"] == model.config.video_token_id).sum()) == model.config.num_video_tokens(4)
    assert VTokDataCollator(reloaded).prompt_inputs([example])["video_lengths"].tolist() == [4]  # evaluation
    with caplog.at_level(logging.WARNING):
        collator = VTokDataCollator(reloaded, num_frames=6)
    assert "sampling num_frames=6 differs from the processor's saved num_frames=4, the sampling the model was trained on" in caplog.text
    assert collator([example])["video_lengths"].tolist() == [6]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        collator = VTokDataCollator(reloaded, fps=3)  # 10 frames at 6 fps: 3 per second of 1.67 s
    assert "sampling fps=3 differs from the processor's saved num_frames=4" in caplog.text
    assert collator([example])["video_lengths"].tolist() == [5]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        VTokDataCollator(reloaded, num_frames=4)
    assert caplog.text == ""


def test_a_processor_saved_with_fps_samples_by_fps_and_warns_on_another_count(tmp_path, caplog):
    _, processor = build_vtok_model(TEXTS)
    processor.video_processor.num_frames, processor.video_processor.fps = None, 3.0
    processor.save_pretrained(tmp_path / "processor")
    reloaded = AutoProcessor.from_pretrained(tmp_path / "processor")
    example = file_examples(tmp_path, count=1, num_frames=10)[0]
    assert VTokDataCollator(reloaded)([example])["video_lengths"].tolist() == [5]
    with caplog.at_level(logging.WARNING):
        collator = VTokDataCollator(reloaded, num_frames=4)
    assert "sampling num_frames=4 differs from the processor's saved fps=3.0" in caplog.text
    assert collator.prompt_inputs([example])["video_lengths"].tolist() == [4]
    with pytest.raises(ValueError, match=r"Pass either `num_frames` \(4\) or `fps` \(2\)"):
        VTokDataCollator(reloaded, num_frames=4, fps=2)


def test_a_plain_vtok_trainer_fits_a_new_models_feature_statistics(tmp_path):
    examples = file_examples(tmp_path)
    args = vtok_training_arguments(tmp_path / "run", max_steps=1, per_device_train_batch_size=2)

    def callbacks(trainer):
        return [callback for callback in trainer.callback_handler.callbacks if isinstance(callback, VTokFeatureStatisticsCallback)]

    model, processor = build_vtok_model(TEXTS, num_frames=4)
    trainer = VTokTrainer(model=model, args=args, train_dataset=examples, data_collator=VTokDataCollator(processor))
    assert len(callbacks(trainer)) == 1
    trainer.train()
    assert not has_identity_feature_statistics(model)
    fitted = model.model.video_tokenizer.key_mean.clone()
    # Fitted statistics: nothing added, and training leaves them alone.
    trainer = VTokTrainer(model=model, args=args, train_dataset=examples, data_collator=VTokDataCollator(processor))
    assert callbacks(trainer) == []
    trainer.train()
    torch.testing.assert_close(model.model.video_tokenizer.key_mean, fitted)

    model, processor = build_vtok_model(TEXTS, num_frames=4)
    trainer = VTokTrainer(model=model, args=args, train_dataset=examples, data_collator=VTokDataCollator(processor),
                          fit_feature_statistics=False)  # fmt: skip
    assert callbacks(trainer) == []
    trainer.train()
    assert has_identity_feature_statistics(model)
    own = VTokFeatureStatisticsCallback(num_videos=3)
    trainer = VTokTrainer(model=model, args=args, train_dataset=examples, data_collator=VTokDataCollator(processor), callbacks=[own])
    assert callbacks(trainer) == [own]


def test_the_callback_fits_identity_statistics_before_training_and_keeps_fitted_ones(tmp_path):
    model, processor = build_vtok_model(TEXTS, num_frames=4)
    examples, collator = file_examples(tmp_path), VTokDataCollator(processor)
    tokenizer = model.model.video_tokenizer

    def train():
        args = vtok_training_arguments(tmp_path / "run", max_steps=1, per_device_train_batch_size=2, logging_steps=1)
        trainer = VTokTrainer(model=model, args=args, train_dataset=examples, data_collator=collator,
                              callbacks=[VTokFeatureStatisticsCallback(num_videos=3)])  # fmt: skip
        trainer.train()

    assert has_identity_feature_statistics(model)
    train()
    assert not has_identity_feature_statistics(model)
    fitted = {name: getattr(tokenizer, name).clone() for name in STATISTICS}
    # The one documented call on the same first 3 videos gives the same statistics (the frozen encoder did not train).
    fit_feature_statistics(model, examples, collator, num_videos=3)
    for name in STATISTICS:
        torch.testing.assert_close(getattr(tokenizer, name), fitted[name])
    tokenizer.key_mean.fill_(0.5)
    train()
    assert (tokenizer.key_mean == 0.5).all(), "fitted statistics must be left alone"


def test_evaluating_identity_statistics_warns(tmp_path, caplog):
    model, processor = build_vtok_model(TEXTS, num_frames=4)
    examples, collator = file_examples(tmp_path, count=2), VTokDataCollator(processor)
    with caplog.at_level(logging.WARNING, logger="modeling_vtok.training_vtok"):
        answers = answer_questions(model, collator, examples, max_new_tokens=2)
    assert IDENTITY_WARNING in caplog.text and len(answers) == 2
    caplog.clear()
    trainer = VTokTrainer(model=model, args=vtok_training_arguments(tmp_path, max_steps=1), eval_dataset=examples,
                          data_collator=collator, callbacks=[VTokFeatureStatisticsCallback()])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="modeling_vtok.training_vtok"):
        assert "eval_loss" in trainer.evaluate()
    assert IDENTITY_WARNING in caplog.text


def test_qa_accuracy_normalises_and_counts_per_category():
    examples = [{"answer": "left", "category": "direction"}, {"answer": "right", "category": "direction"}, {"answer": "two", "category": "count"}]
    assert qa_accuracy([" Left.", "up", "two"], examples) == {"accuracy": 2 / 3, "accuracy/count": 1.0, "accuracy/direction": 0.5}
    assert qa_accuracy(["left", "up"], [{"answer": "left"}, {"answer": "right", "category": None}]) == {"accuracy": 0.5}


def test_qa_compute_metrics_scores_teacher_forced_answers_per_category():
    _, processor = build_vtok_model(TEXTS)
    tokenizer = processor.tokenizer
    assert answer_token_budget(tokenizer, ["left", LONG_ANSWER]) == len(tokenizer(LONG_ANSWER + "<eos>", add_special_tokens=False)["input_ids"])
    rows = [("left", True), ("right", False), (LONG_ANSWER, True)]
    labels, predicted = np.full((3, 20), -100), np.zeros((3, 20), dtype=np.int64)
    for row, (answer, right) in enumerate(rows):
        ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        labels[row, 5 : 5 + len(ids)] = ids
        predicted[row, 4 : 4 + len(ids)] = ids if right else [ids[0] + 1, *ids[1:]]  # logits at i predict token i + 1
    compute_metrics = qa_compute_metrics(tokenizer, ["direction", "direction", "what"])
    expected = {"accuracy": 2 / 3, "accuracy/direction": 0.5, "accuracy/what": 1.0}
    assert compute_metrics(EvalPrediction(predictions=predicted, label_ids=labels)) == expected
    logits = np.eye(len(tokenizer))[predicted]  # without preprocess_logits_for_metrics
    assert compute_metrics(EvalPrediction(predictions=logits, label_ids=labels)) == expected
    with pytest.raises(ValueError, match="got 2 categories but evaluation gave 3 examples"):
        qa_compute_metrics(tokenizer, ["direction", "what"])(EvalPrediction(predictions=predicted, label_ids=labels))
