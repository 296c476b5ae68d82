"""Bring your own videos: examples/train.py and examples/evaluate_qa.py on a task made here (a checkerboard
patch moving left or right over noise, MP4 files + LLaVA-Video JSONL), not VTok-Shapes."""

import json
import logging
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from peft import get_peft_model
from safetensors.torch import load_file
from transformers import AutoProcessor, TrainingArguments

from modeling_vtok import VTokForConditionalGeneration
from modeling_vtok.metrics_vtok import normalize_answer
from modeling_vtok.peft_vtok import vtok_lora_config
from modeling_vtok.trainer_vtok import VTokTrainer
from modeling_vtok.training_vtok import (
    answer_questions,
    build_vtok_model,
    has_identity_feature_statistics,
    load_vtok_model,
    predicted_token_ids,
    qa_accuracy,
    qa_compute_metrics,
    vtok_training_arguments,
)
from processing_vtok import load_video, write_video
from processing_vtok.collator import VTokDataCollator
from processing_vtok.instruction_data import load_instruction_data
from test_instruction_data import LONG_ANSWER, QUESTION, patch_clip, write_patch_task
from test_training import load_example
from vtok_shapes import load_vtok_shapes, write_instruction_file

BUNDLED = Path(__file__).resolve().parent.parent / "checkpoints" / "vtok-tiny-shapes"
RUN = ["--num-frames", "4", "--batch-size", "4", "--logging-steps", "3"]
S = 16  # key-frame tokens of the tiny preset: a 4x4 patch grid


@pytest.fixture(scope="module")
def patch_task(tmp_path_factory):
    """8 training clips (`train.jsonl`, one of them two turns) and 4 test clips (`test.json`, one two turns)."""
    return write_patch_task(tmp_path_factory.mktemp("patch_task"))


@pytest.fixture(scope="module", params=["vtok", "frames"])
def trained(request, patch_task, tmp_path_factory):
    """12 steps of train.py from the files with `--video-tokenization` vtok or frames, then evaluate_qa.py."""
    train_file, test_file = patch_task
    output = tmp_path_factory.mktemp(request.param)
    load_example("train").main(["--train-file", str(train_file), "--eval-file", str(test_file), "--video-tokenization",
                                request.param, *RUN, "--steps", "12", "--output-dir", str(output)])  # fmt: skip
    results = load_example("evaluate_qa").main([str(output), str(test_file), "--output", str(output / "eval_test.json")])
    return request.param, output, results


def test_the_saved_model_has_the_asked_token_layout(trained, patch_task):
    tokenization, output, _ = trained
    config = json.loads((output / "model" / "config.json").read_text())
    processor = AutoProcessor.from_pretrained(output / "processor")
    expected = {"vtok": S + (4 - 1), "frames": S * 4}[tokenization]
    assert config["video_tokenization"] == tokenization and processor.video_processor.num_frames == 4
    assert processor.num_video_tokens(4) == expected
    batch = VTokDataCollator(processor)(list(load_instruction_data(patch_task[1]))[:1])
    assert int((batch["input_ids"] == config["video_token_id"]).sum()) == expected
    assert not has_identity_feature_statistics(VTokForConditionalGeneration.from_pretrained(output / "model"))


def test_training_lowers_the_loss_and_scores_the_eval_file(trained):
    _, output, _ = trained
    history = json.loads((output / "vtok_log_history.json").read_text())
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 4 and losses[-1] < losses[0]
    evaluation = [entry for entry in history if "eval_accuracy" in entry]
    assert len(evaluation) == 1 and {"eval_loss", "eval_accuracy/direction"} <= set(evaluation[0])


def test_evaluate_scores_every_question_with_room_for_the_longest_answer(trained):
    tokenization, output, results = trained
    predictions = json.loads((output / "eval_test.json").read_text())["predictions"]
    tokenizer = AutoProcessor.from_pretrained(output / "processor").tokenizer
    assert results["num_questions"] == len(predictions) == 5  # 4 records, one of two turns
    assert results["max_new_tokens"] == len(tokenizer(LONG_ANSWER + tokenizer.eos_token, add_special_tokens=False)["input_ids"]) > 4
    hits = [normalize_answer(p["prediction"]) == p["answer"] for p in predictions]
    assert results["scores"] == {"accuracy": sum(hits) / 5, "accuracy/direction": sum(hits) / 5}
    # Trainer's teacher-forced accuracy (qa_compute_metrics) is what greedy generation scores.
    history = json.loads((output / "vtok_log_history.json").read_text())
    assert next(entry["eval_accuracy"] for entry in history if "eval_accuracy" in entry) == results["scores"]["accuracy"]
    assert (results["video_tokenization"], results["num_frames"]) == (tokenization, 4)


def test_train_from_the_bundled_checkpoint_on_your_file(patch_task, tmp_path, capsys):
    train = load_example("train").main
    with pytest.raises(SystemExit, match=r"--video-tokenization frames disagrees with the checkpoint .* has video_tokenization=vtok"):
        train(["--model", str(BUNDLED), "--train-file", str(patch_task[0]), "--video-tokenization", "frames", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        train(["--video-tokenization", "frames", "--stage", "all", "--output-dir", str(tmp_path)])
    assert "--stage all trains a decoder of VTok tokens; the frames baseline has none" in capsys.readouterr().err
    train(["--model", str(BUNDLED), "--train-file", str(patch_task[0]), *RUN, "--steps", "2", "--output-dir", str(tmp_path)])
    bundled = json.loads((BUNDLED / "model" / "config.json").read_text())
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert {k: config[k] for k in ("key_frame_pool_size", "text_config")} == {k: bundled[k] for k in ("key_frame_pool_size", "text_config")}
    assert AutoProcessor.from_pretrained(tmp_path / "processor").video_processor.num_frames == 4
    assert json.loads((tmp_path / "vtok_log_history.json").read_text())[-1]["step"] == 2


def test_a_lora_adapter_on_your_file_with_library_calls(patch_task, tmp_path):
    """docs/your_own_data.md, section 4, on the bundled checkpoint for two steps."""
    model, processor = load_vtok_model(BUNDLED)
    collator = VTokDataCollator(processor, num_frames=4)
    train, test = load_instruction_data(patch_task[0]), load_instruction_data(patch_task[1])
    lora_model = get_peft_model(model, vtok_lora_config("llm+tokenizer"))
    args = vtok_training_arguments(tmp_path, max_steps=2, per_device_train_batch_size=4)
    VTokTrainer(model=lora_model, args=args, train_dataset=train, data_collator=collator).train()
    lora_model.save_pretrained(tmp_path)
    assert any("lora_" in name for name in load_file(tmp_path / "adapter_model.safetensors"))
    assert set(qa_accuracy(answer_questions(lora_model, collator, test), test)) == {"accuracy", "accuracy/direction"}


def test_your_own_script_trains_and_evaluates_with_library_calls(patch_task, tmp_path):
    """docs/your_own_data.md, section 5, for two steps."""
    train, test = load_instruction_data(patch_task[0]), load_instruction_data(patch_task[1])
    texts = list(train["question"]) + list(train["answer"])
    model, processor = build_vtok_model(texts, video_tokenization="frames", num_frames=4)
    trainer = VTokTrainer(
        model=model, args=vtok_training_arguments(tmp_path, max_steps=2, per_device_train_batch_size=4),
        train_dataset=train, eval_dataset=test, data_collator=VTokDataCollator(processor),
        compute_metrics=qa_compute_metrics(processor.tokenizer, test["category"]),
        preprocess_logits_for_metrics=predicted_token_ids,
    )  # fmt: skip
    trainer.train()  # a plain VTokTrainer fits the new model's feature statistics
    assert {"eval_accuracy", "eval_accuracy/direction"} <= set(trainer.evaluate())
    assert not has_identity_feature_statistics(model)


def test_a_datasets_video_column_trains_with_default_trainer_arguments(patch_task, tmp_path):
    """`datasets.Video(decode=False)` values ({"path", "bytes"}) are read by our PyAV loader (no torchcodec),
    and VTokTrainer keeps the collator's columns under the default `remove_unused_columns=True`."""
    examples = list(load_instruction_data(patch_task[0]))[:4]
    videos = [{"path": e["video"], "bytes": None} if i % 2 else {"path": None, "bytes": Path(e["video"]).read_bytes()}
              for i, e in enumerate(examples)]  # fmt: skip
    dataset = datasets.Dataset.from_dict({
        "video": videos, "question": [e["question"] for e in examples], "answer": [e["answer"] for e in examples],
        "category": [e["category"] for e in examples],
    }).cast_column("video", datasets.Video(decode=False))  # fmt: skip
    assert dataset.features["video"] == datasets.Video(decode=False) and dataset[0]["video"]["bytes"] is not None
    model, processor = build_vtok_model(list(dataset["question"]) + list(dataset["answer"]), num_frames=4)
    collator = VTokDataCollator(processor)
    from_dataset, from_files = collator(list(dataset)), collator(examples)
    assert torch.equal(from_dataset["pixel_values_videos"], from_files["pixel_values_videos"])
    assert from_dataset["video_lengths"].tolist() == [4] * 4

    args = TrainingArguments(tmp_path, max_steps=2, per_device_train_batch_size=2, report_to="none", use_cpu=True)
    assert args.remove_unused_columns
    trainer = VTokTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset, data_collator=collator)
    trainer.train()
    assert trainer.state.global_step == 2 and not has_identity_feature_statistics(model)
    assert "eval_loss" in trainer.evaluate()
    assert len(answer_questions(model, collator, dataset, max_new_tokens=2)) == 4


def test_the_bundled_processor_samples_the_frame_count_its_model_was_trained_on(tmp_path, caplog):
    model, processor = load_vtok_model(BUNDLED)
    assert processor.video_processor.num_frames == 8  # the model card's training clips and the quickstart's
    video = write_video(tmp_path / "long.mp4", patch_clip("left", seed=0, num_frames=12), fps=6)
    collator = VTokDataCollator(processor)
    batch = collator([{"video": video, "question": QUESTION, "answer": "left"}])
    assert batch["video_lengths"].tolist() == [8]
    assert int((batch["input_ids"] == model.config.video_token_id).sum()) == model.config.num_video_tokens(8) == 23
    assert collator.prompt_inputs([{"video": video, "question": QUESTION, "answer": "left"}])["video_lengths"].tolist() == [8]
    with caplog.at_level(logging.WARNING):
        VTokDataCollator(processor, fps=4)
    assert "sampling fps=4 differs from the processor's saved num_frames=8" in caplog.text


def test_vtok_shapes_written_as_your_own_data_loads_as_a_llava_video_file(tmp_path):
    path = write_instruction_file(tmp_path / "data", "test", num_samples=3, num_frames=4)
    rows = load_vtok_shapes("test", num_samples=3, num_frames=4)
    examples = load_instruction_data(path)
    assert path == tmp_path / "data" / "test.jsonl" and len(examples) == 3
    assert list(examples["question"]) == list(rows["question"]) and list(examples["category"]) == list(rows["category"])
    assert list(examples["answer"]) == list(rows["answer"])
    decoded = load_video(examples[1]["video"], num_frames=4)[0]
    assert decoded.shape == rows[1]["video"].shape == (4, 32, 32, 3)
    assert np.abs(decoded.astype(int) - rows[1]["video"]).mean() < 8  # the clip, through a lossy codec
